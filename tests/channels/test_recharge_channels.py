"""The recharge families (api-docs/000) paid through the real Alipay and WeChat Pay
channels: the same adapters, the recharge notify path /api/recharge/orders/{id}/…"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import select

from server.adapters.recharge_tables import RechargeOrderRow
from server.domain.recharge import demo_catalog

from . import keys
from .providers import alipay_content


@pytest.fixture(autouse=True)
def _recharge_catalog(real_app):
    real_app.recharges.catalog.save(demo_catalog())
    real_app.recharges.catalog.invalidate()


def order_by_number(app, number) -> RechargeOrderRow:
    with app.uow_factory() as uow:
        return uow.session.scalar(select(RechargeOrderRow).where(RechargeOrderRow.order_number == number))


def test_charge_paid_with_alipay_credits_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(5)) as c:
        d = c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH"}).json()["d"]
    fields = {k: unquote_plus(v) for k, v in (p.split("=", 1) for p in d["callPayInfo"].split("&"))}
    assert keys.rsa_verify(providers.alipay_app_key.public_key(), alipay_content(fields), fields["sign"])
    biz = json.loads(fields["biz_content"])
    assert biz["out_trade_no"] == d["payOrderId"] and biz["total_amount"] == "30.00"
    order = order_by_number(real_app, d["payOrderId"])
    assert fields["notify_url"].endswith(f"/api/recharge/orders/{order.id}/alipay-callback")
    url = f"/api/recharge/orders/{order.id}/alipay-callback"
    form = {"content-type": "application/x-www-form-urlencoded"}
    with real_gateway.client() as alipay:
        wrong = alipay.post(url, content=providers.alipay.notification(d["payOrderId"], "0.30"), headers=form)
        assert wrong.text != "success" and real_app.recharges.balance(5) == 0
        body = providers.alipay.notification(d["payOrderId"], "30.00")
        assert alipay.post(url, content=body, headers=form).text == "success"
        assert alipay.post(url, content=body, headers=form).text == "success"
    assert real_app.recharges.balance(5) == 3000
    assert real_app.memberships.status(5).current_level == "low"


def test_charge_paid_with_wechat_credits_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(5)) as c:
        d = c.post("/charge/pay", json={"id": 1, "payType": "WX_APP"}).json()["d"]
    params = json.loads(d["callPayInfo"])
    message = f"{params['appid']}\n{params['timestamp']}\n{params['noncestr']}\n{params['prepayid']}\n"
    assert keys.rsa_verify(providers.wechat_merchant_key.public_key(), message, params["sign"])
    order = order_by_number(real_app, d["payOrderId"])
    providers.wechat.paid[d["payOrderId"]] = "4200000000202611210000000099"
    url = f"/api/recharge/orders/{order.id}/wechat-callback"
    with real_gateway.client() as wechat:
        stale, stale_headers = providers.wechat.notification(providers.wechat.transaction(d["payOrderId"]),
                                                             timestamp=1_700_000_000)
        refused = wechat.post(url, content=stale, headers=stale_headers)
        assert refused.status_code == 400 and refused.json()["code"] == "FAIL"
        body, headers = providers.wechat.notification(providers.wechat.transaction(d["payOrderId"]))
        assert wechat.post(url, content=body, headers=headers).status_code == 204
        assert wechat.post(url, content=body, headers=headers).status_code == 204
    assert real_app.recharges.balance(5) == order.amount


def _age_recharge(app, order_id, minutes):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    with app.uow_factory() as uow:
        uow.session.execute(update(RechargeOrderRow).where(RechargeOrderRow.id == order_id).values(
            created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=minutes)))
        uow.commit()


def test_recharge_orders_are_requeried_closed_and_late_payments_honoured(real_gateway, token, providers, real_app):
    """Settlement covers recharge orders too: a missed notification is recovered
    by alipay.trade.query through the same settle() path, an unpaid order fails
    after the order time-out, and a payment that still lands afterwards is credited once."""
    from .providers import AlipayTrade

    with real_gateway.client(token(6)) as c:
        paid = c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH"}).json()["d"]["payOrderId"]
        unpaid = c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH"}).json()["d"]["payOrderId"]
    paid_row, unpaid_row = order_by_number(real_app, paid), order_by_number(real_app, unpaid)
    _age_recharge(real_app, paid_row.id, 5)
    _age_recharge(real_app, unpaid_row.id, real_app.settings.order_close_minutes + 1)
    providers.alipay.trades[paid] = AlipayTrade(paid, "30.00", "TRADE_SUCCESS")

    report = real_app.settlement.run_once()
    assert (report.queried, report.settled_paid, report.closed) == (2, 1, 1)
    assert providers.alipay.rejected == []
    assert order_by_number(real_app, paid).state == "SUCCESSFUL_PAYMENT"
    assert order_by_number(real_app, unpaid).state == "FAILURE_TO_PAY"
    assert real_app.recharges.balance(6) == 3000
    assert real_app.settlement.run_once().queried == 0  # neither is open any more

    url = f"/api/recharge/orders/{unpaid_row.id}/alipay-callback"
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = providers.alipay.notification(unpaid, "30.00")
    with real_gateway.client() as alipay:
        assert alipay.post(url, content=body, headers=form).text == "success"
        assert alipay.post(url, content=body, headers=form).text == "success"
    assert order_by_number(real_app, unpaid).state == "SUCCESSFUL_PAYMENT"
    assert real_app.recharges.balance(6) == 6000


def test_provider_refusal_is_503_in_the_family_envelope(real_gateway, token, real_app):
    """002 pay mode 1 is WeChat JSAPI, which needs the payer's openid: the real
    channel cannot open the payment, and the client gets a retryable 503 code."""
    with real_gateway.client(token(7)) as c:
        r = c.post("/api/recharge/order", json={"id": 1, "price": "28", "payModeId": 1})
    assert r.status_code == 200
    body = r.json()
    assert (body["success"], body["code"]) == (False, 503) and body["message"]
    with real_app.uow_factory() as uow:
        states = [o.state for o in uow.session.scalars(select(RechargeOrderRow).where(RechargeOrderRow.user_id == 7))]
    assert states == ["WAITING_FOR_PAYMENT"]  # nothing credited; settlement fails it after the time-out
