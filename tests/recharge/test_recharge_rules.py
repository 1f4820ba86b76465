"""Plan matching, gift and price rules (pure domain, no database)."""

from dataclasses import replace
from datetime import datetime

import pytest

from server.platform.errors import DomainError
from server.recharge.rules import (
    Package,
    Plan,
    catalog_from_document,
    catalog_to_document,
    demo_catalog,
    matched_gift,
    order_number,
    parse_price,
    quote_package,
    quote_plan,
)

CATALOG = demo_catalog()


def reason(fn, *args):
    with pytest.raises(DomainError) as exc:
        fn(*args)
    return exc.value.reason


def test_a_plan_charges_its_money_and_gives_its_gift():
    q = quote_plan(CATALOG, 10001, 50000)
    assert (q.kind, q.amount_fen, q.gift_fen, q.plan_id) == ("plan", 50000, 5000, 10001)
    assert q.snapshot() == {"title": "套餐A", "price": "500", "gift": "50"}


def test_a_price_that_is_not_the_plans_is_refused():
    assert reason(quote_plan, CATALOG, 10001, 49999) == "PRICE_MISMATCH"
    assert reason(quote_plan, CATALOG, 1, 2800 + 1) == "PRICE_MISMATCH"
    assert reason(quote_plan, CATALOG, 424242, 2800) == "PLAN_NOT_FOUND"


@pytest.mark.parametrize("amount, gift, plan", [
    (2799, 0, None),  # below every plan: no gift
    (2800, 0, 1),  # exactly the 28 plan (which gives nothing)
    (49999, 0, 1),
    (50000, 5000, 10001),  # exactly 套餐A
    (99999, 5000, 10001),  # the largest plan NOT above the amount
    (100000, 15000, 10002),
    (500000, 15000, 10002),
])
def test_custom_amounts_get_the_gift_of_the_largest_plan_not_above(amount, gift, plan):
    q = quote_plan(CATALOG, 0, amount)
    assert (q.kind, q.amount_fen, q.gift_fen, q.plan_id) == ("custom", amount, gift, plan)


def test_custom_amount_without_matching_gets_no_gift():
    catalog = replace(CATALOG, setting=replace(CATALOG.setting, is_match_plan=False))
    assert quote_plan(catalog, 0, 100000).gift_fen == 0


def test_custom_amounts_respect_is_custom_lowest_money_and_the_entrance():
    low = replace(CATALOG, setting=replace(CATALOG.setting, lowest_money_fen=1000))
    assert reason(quote_plan, low, 0, 999) == "AMOUNT_TOO_LOW"
    assert quote_plan(low, 0, 1000).amount_fen == 1000
    no_custom = replace(CATALOG, setting=replace(CATALOG.setting, is_custom=False))
    assert reason(quote_plan, no_custom, 0, 5000) == "CUSTOM_AMOUNT_DISABLED"
    assert quote_plan(no_custom, 1, 2800).amount_fen == 2800  # plans still work
    closed = replace(CATALOG, setting=replace(CATALOG.setting, is_entrance=False))
    assert reason(quote_plan, closed, 1, 2800) == "RECHARGE_CLOSED"
    assert reason(quote_package, closed, 1) == "RECHARGE_CLOSED"


def test_matched_gift_prefers_the_biggest_gift_among_equal_money():
    plans = (Plan(1, "a", 1000, 10), Plan(2, "b", 1000, 30), Plan(3, "c", 5000, 99))
    assert matched_gift(plans, 4999).id == 2
    assert matched_gift(plans, 999) is None


def test_packages_quote_their_amount_and_vip():
    q = quote_package(CATALOG, 2)
    assert (q.amount_fen, q.gift_fen, q.vip_level, q.vip_months) == (3000, 0, "low", 1)
    assert quote_package(CATALOG, 1).vip_months == 0
    assert reason(quote_package, CATALOG, 2, 2999) == "PRICE_MISMATCH"
    assert reason(quote_package, CATALOG, 99) == "PACKAGE_NOT_FOUND"
    assert Package(9, 100, giving_vip=True, time_type="YEAR", time_len=2).vip_months == 24


@pytest.mark.parametrize("text", ["", "abc", "0", "-1", "1.234", "NaN", "1000000.01"])
def test_bad_prices_are_field_violations(text):
    with pytest.raises(DomainError) as exc:
        parse_price(text)
    assert exc.value.reason == "INVALID_ARGUMENT" and exc.value.violations[0].field == "price"


def test_prices_parse_to_fen():
    assert parse_price("15.2") == 1520 and parse_price("28") == 2800 and parse_price("0.01") == 1


def test_catalog_document_round_trips_and_validates():
    assert catalog_from_document(catalog_to_document(CATALOG)) == CATALOG
    doc = catalog_to_document(CATALOG)
    doc["plans"].append({"id": 1, "name": "dup", "money_fen": 0})
    doc["packages"].append({"id": 7, "amount_fen": 100, "giving_vip": True, "time_type": "WEEK", "time_len": 1})
    doc["pay_modes"].append({"id": 9, "code": "h5", "name": "x", "pay_type_id": 77, "pay_method": "Alipay_AopWap"})
    with pytest.raises(DomainError) as exc:
        catalog_from_document(doc)
    fields = {v.field for v in exc.value.violations}
    assert {"plans", "plans[1]", "packages[7]", "pay_modes[9]"} <= fields


def test_order_numbers_carry_local_time_and_id():
    assert order_number(datetime(2020, 8, 1, 16, 50, 14), 12) == "RC2020080116501400000012"
