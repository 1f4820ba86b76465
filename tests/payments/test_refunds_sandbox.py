"""Operator refunds through the sandbox channel (docs/refunds.md): full and partial,
idempotent by refund number (also concurrently), what each kind takes back, and
ledger-check's proofs (the root conftest runs them after every test)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from server.recharge.tables import WalletEntryRow
from server.payments.refund_tables import RefundRow
from server.platform.errors import DomainError
from server.recharge.rules import demo_catalog

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True)
def _recharge_catalog(app):
    app.recharges.catalog.save(demo_catalog())


def paid_vip_order(app, gateway, token, user=1, **overrides):
    body = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
    body.update(overrides)
    with gateway.client(token(user)) as c:
        order = c.post("/api/v2/vip/orders", json=body).json()
    note = app.sandbox.notification_for(order["trade_no"], order["pay_amount"])
    r = httpx.post(f"{gateway.url}/api/v2/vip/orders/{order['id']}/sandbox-callback", content=note, headers=FORM)
    assert r.text == "success"
    return order


def paid_recharge(app, gateway, user=2, plan_id=10001, price="500.00"):
    order = app.recharges.order_recharge(user, plan_id=plan_id, price=price, pay_mode_id=2, goods_id=None,
                                         verify_code="", client_ip="").order
    note = app.sandbox.notification_for(order.order_number, order.amount)
    r = httpx.post(f"{gateway.url}/api/recharge/orders/{order.id}/sandbox-callback", content=note, headers=FORM)
    assert r.text == "success"
    return order


def expiry(app, user, level):
    view = app.memberships.ledger.status(user)
    return view.levels.get(level)


def test_partial_then_full_refund_of_a_vip_order(app, gateway, token):
    order = paid_vip_order(app, gateway, token)  # middle, 3 months, 5400 fen
    now = datetime.now(timezone.utc)
    granted = expiry(app, 1, "middle") - now
    first = app.refunds.refund(order["trade_no"], amount_fen=1800, reason="customer asked")
    assert (first.state, first.amount_fen, first.channel) == ("succeeded", 1800, "sandbox")
    left = expiry(app, 1, "middle") - now
    assert abs(left.total_seconds() - granted.total_seconds() * 2 / 3) < 120  # a third taken back
    rest = app.refunds.refund(order["trade_no"], amount_fen=None, reason="all of it")
    assert rest.amount_fen == 3600 and rest.refund_no == f"R{order['trade_no']}-ALL"
    assert app.memberships.ledger.status(1).current_level == ""
    with pytest.raises(DomainError) as refused:
        app.refunds.refund(order["trade_no"], amount_fen=100, reason="more")
    assert refused.value.reason == "ALREADY_REFUNDED"
    # The same refund again (same number) is the same refund: nothing more is taken.
    again = app.refunds.refund(order["trade_no"], amount_fen=1800, reason="customer asked")
    assert again.id == first.id
    assert len(app.refunds.for_order("vip_orders", order["id"])) == 2


def test_refund_number_reused_for_other_parameters_is_refused(app, gateway, token):
    order = paid_vip_order(app, gateway, token)
    app.refunds.refund(order["trade_no"], amount_fen=100, reason="x", refund_no="OPS-1")
    with pytest.raises(DomainError) as refused:
        app.refunds.refund(order["trade_no"], amount_fen=200, reason="x", refund_no="OPS-1")
    assert refused.value.reason == "REFUND_NO_REUSED"
    with pytest.raises(DomainError) as too_much:
        app.refunds.refund(order["trade_no"], amount_fen=5400, reason="x")
    assert too_much.value.reason == "REFUND_EXCEEDS_PAYMENT"


def test_unpaid_and_unknown_orders_are_not_refunded(app, gateway, token):
    with gateway.client(token(1)) as c:
        order = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                                   "pay_method": "Alipay_AopApp"}).json()
    for number, reason in ((order["trade_no"], "ORDER_NOT_PAID"), ("NOPE", "ORDER_NOT_FOUND")):
        with pytest.raises(DomainError) as refused:
            app.refunds.refund(number, amount_fen=None, reason="x")
        assert refused.value.reason == reason


def test_concurrent_refunds_refund_once(app, gateway, token):
    """20 concurrent copies of one refund (same number) and 10 full refunds under other
    numbers: one refund, one take-back."""
    order = paid_recharge(app, gateway)

    def same(_):
        return app.refunds.refund(order.order_number, amount_fen=None, reason="dup").refund_no

    def other(i):
        try:
            return app.refunds.refund(order.order_number, amount_fen=50000, reason="race", refund_no=f"X{i}").state
        except DomainError as err:
            return err.reason

    with ThreadPoolExecutor(15) as pool:
        numbers = set(pool.map(same, range(20)))
        others = list(pool.map(other, range(10)))
    assert numbers == {f"R{order.order_number}-ALL"}
    assert set(others) == {"ALREADY_REFUNDED"}
    with app.uow_factory() as uow:
        rows = uow.session.scalars(select(RefundRow)).all()
        entries = uow.session.scalars(select(WalletEntryRow.amount).where(WalletEntryRow.reason == "refund")).all()
    assert len(rows) == 1 and entries == [-55000]  # 500.00 + its 50.00 gift
    assert app.recharges.wallet.balance(2) == 0


def test_recharge_refund_takes_amount_and_gift_share_and_never_goes_below_zero(app, gateway):
    order = paid_recharge(app, gateway)  # 500.00 + 50.00 gift
    app.refunds.refund(order.order_number, amount_fen=10000, reason="part")  # a fifth: 100 + 10
    assert app.recharges.wallet.balance(2) == 55000 - 11000
    app.recharges.wallet.move(2, 0, 40000, "shop:1", "spend-1", debit=True)  # the user spends 400
    with pytest.raises(DomainError) as refused:
        app.refunds.refund(order.order_number, amount_fen=None, reason="rest")
    assert refused.value.reason == "REFUND_EXCEEDS_BALANCE"
    assert app.recharges.wallet.balance(2) == 4000  # nothing moved
    assert [r.state for r in app.refunds.for_order("recharge_orders", order.id)] == ["succeeded"]


def test_package_refund_takes_the_membership_back(app, gateway, token):
    created = app.recharges.order_package(3, package_id=2, pay_type="ALIPAYCASH").order  # 30.00 + 1 month low
    note = app.sandbox.notification_for(created.order_number, created.amount)
    assert httpx.post(f"{gateway.url}/api/recharge/orders/{created.id}/sandbox-callback", content=note,
                      headers=FORM).text == "success"
    assert app.memberships.ledger.status(3).current_level == "low"
    app.refunds.refund(created.order_number, amount_fen=None, reason="package")
    assert app.memberships.ledger.status(3).current_level == "" and app.recharges.wallet.balance(3) == 0


def test_operator_refund_after_an_exchange_takes_from_the_level_the_days_became(app, gateway, token):
    order = paid_vip_order(app, gateway, token, user=7, level="low", duration=3)
    with gateway.client(token(7)) as c:
        converted = c.patch("/api/v2/vip/exchange-vip", json={"level": "high"}).json()["converted_days"]
    assert converted > 0 and app.memberships.ledger.status(7).current_level == "high"
    now = datetime.now(timezone.utc)
    high_before = expiry(app, 7, "high") - now
    app.refunds.refund(order["trade_no"], amount_fen=order["pay_amount"] // 2, reason="half")
    high_after = expiry(app, 7, "high") - now
    assert abs(high_after.total_seconds() - high_before.total_seconds() / 2) < 120  # half of what it became
    app.refunds.refund(order["trade_no"], amount_fen=None, reason="rest")
    assert app.memberships.ledger.status(7).current_level == ""
