from datetime import datetime, timedelta, timezone

import pytest

from server.membership import rules
from server.membership.catalog import demo_catalog
from server.platform import money
from server.platform.errors import DomainError, Kind

UTC = timezone.utc


def quote(**overrides):
    args = dict(level="middle", duration=3, quantity=1, pay_method="Alipay_AopApp", timezone_name="Asia/Shanghai")
    args.update(overrides)
    return rules.quote_order(demo_catalog(), **args)


def test_quote_prices_in_fen_from_catalog():
    q = quote()
    assert (q.unit_price_fen, q.total_fen) == (5400, 5400)
    assert q.vip_info == {"level": "middle", "name": "钻石会员", "duration": 3, "price": 5400,
                          "timezone": "Asia/Shanghai", "iap": "203", "iap_price_fen": 6000}


def test_quote_multiplies_quantity_and_charges_iap_price_for_iap():
    assert quote(quantity=2).total_fen == 10800
    assert quote(pay_method="Iap", level="high").total_fen == 9000  # iap_price 90, as in the document


def test_quote_reports_every_bad_field_at_once():
    with pytest.raises(DomainError) as err:
        quote(level="gold", duration=5, pay_method="Cash", timezone_name="Mars/Base", quantity=99)
    assert err.value.kind is Kind.INVALID
    assert {v.field for v in err.value.violations} == {"level", "duration", "pay_method", "timezone", "quantity"}


def test_disabled_duration_is_not_on_sale():
    with pytest.raises(DomainError) as err:
        quote(duration=1)
    assert [v.field for v in err.value.violations] == ["duration"]


def test_add_months_clamps_to_month_end():
    assert rules.add_months(datetime(2024, 1, 31), 1) == datetime(2024, 2, 29)
    assert rules.add_months(datetime(2023, 11, 30), 3) == datetime(2024, 2, 29)
    assert rules.add_months(datetime(2024, 5, 15), 12) == datetime(2025, 5, 15)


def test_extend_expiry_uses_calendar_months_in_the_order_zone():
    # 2024-01-31 20:00 UTC is already 2024-02-01 04:00 in Shanghai: one month later is 03-01 04:00 local.
    now = datetime(2024, 1, 31, 20, 0, tzinfo=UTC)
    assert rules.extend_expiry(None, now, 1, "Asia/Shanghai") == datetime(2024, 2, 29, 20, 0, tzinfo=UTC)
    # In UTC the same instant is Jan 31: one month later clamps to Feb 29.
    assert rules.extend_expiry(None, now, 1, "UTC") == datetime(2024, 2, 29, 20, 0, tzinfo=UTC)


def test_renewals_stack_on_an_active_membership_but_not_a_lapsed_one():
    now = datetime(2024, 3, 1, tzinfo=UTC)
    active = datetime(2024, 4, 10, tzinfo=UTC)
    assert rules.extend_expiry(active, now, 3, "UTC") == datetime(2024, 7, 10, tzinfo=UTC)
    lapsed = datetime(2024, 2, 1, tzinfo=UTC)
    assert rules.extend_expiry(lapsed, now, 1, "UTC") == datetime(2024, 4, 1, tzinfo=UTC)


def test_exchange_converts_whole_remaining_days_of_lower_levels():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    held = {"low": now + timedelta(days=10, hours=5), "middle": now + timedelta(days=4)}
    plan = rules.plan_exchange(held, "high", exchange=2, now=now)
    # low is two levels below: 10 // 2**2 = 2; middle one level: 4 // 2 = 2.
    assert plan.converted_days == 4
    assert plan.consumed_levels == ("low", "middle")
    assert plan.new_target_expiry == now + timedelta(days=4)


def test_exchange_extends_an_active_target_from_its_expiry():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    held = {"low": now + timedelta(days=30), "high": now + timedelta(days=5)}
    plan = rules.plan_exchange(held, "high", exchange=1, now=now)
    assert plan.new_target_expiry == now + timedelta(days=35)


@pytest.mark.parametrize("held,target", [
    ({}, "high"),
    ({"high": "active"}, "middle"),  # not higher than what is held
    ({"low": "active"}, "low"),
])
def test_exchange_refused_when_nothing_converts(held, target):
    now = datetime(2024, 1, 1, tzinfo=UTC)
    held = {level: now + timedelta(days=20) for level in held}
    with pytest.raises(DomainError) as err:
        rules.plan_exchange(held, target, exchange=1, now=now)
    assert err.value.reason == "EXCHANGE_REFUSED" and err.value.kind is Kind.PERMISSION_DENIED


def test_exchange_refused_when_remaining_days_round_to_zero():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(DomainError):
        rules.plan_exchange({"low": now + timedelta(days=3)}, "high", exchange=2, now=now)  # 3 // 4 == 0


def test_trade_no_matches_the_legacy_format():
    local = datetime(2019, 12, 24, 11, 56, 40, 878000)
    assert rules.trade_no(local, 11) == "20191224115640878MOB"
    assert rules.trade_no(local, 6).endswith("MO6")


def test_money_rendering():
    assert money.yuan_number(5400) == 54
    assert money.yuan_number(990) == 9.9
    assert money.yuan_string_trimmed(1520) == "15.2"
    assert money.yuan_string_trimmed(2800) == "28"
    assert money.yuan_string_2dp(50000) == "500.00"
    assert money.parse_yuan("0.01") == 1
    assert money.parse_yuan(9.9) == 990
    with pytest.raises(ValueError):
        money.parse_yuan("1.001")
    with pytest.raises(ValueError):
        money.parse_yuan("abc")
