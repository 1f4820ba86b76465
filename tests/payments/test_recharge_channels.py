"""The recharge families (api-docs/000) paid through the real Alipay and WeChat Pay
channels: the same adapters, the recharge notify path /api/recharge/orders/{id}/…"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import select

from server.recharge.rules import demo_catalog
from server.recharge.tables import RechargeOrderRow

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
        assert wrong.text != "success" and real_app.recharges.wallet.balance(5) == 0
        body = providers.alipay.notification(d["payOrderId"], "30.00")
        assert alipay.post(url, content=body, headers=form).text == "success"
        assert alipay.post(url, content=body, headers=form).text == "success"
    assert real_app.recharges.wallet.balance(5) == 3000
    assert real_app.memberships.ledger.status(5).current_level == "low"


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
    assert real_app.recharges.wallet.balance(5) == order.amount


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
    assert real_app.recharges.wallet.balance(6) == 3000
    assert real_app.settlement.run_once().queried == 0  # neither is open any more

    url = f"/api/recharge/orders/{unpaid_row.id}/alipay-callback"
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = providers.alipay.notification(unpaid, "30.00")
    with real_gateway.client() as alipay:
        assert alipay.post(url, content=body, headers=form).text == "success"
        assert alipay.post(url, content=body, headers=form).text == "success"
    assert order_by_number(real_app, unpaid).state == "SUCCESSFUL_PAYMENT"
    assert real_app.recharges.wallet.balance(6) == 6000


def test_provider_refusal_is_503_in_the_family_envelope(real_gateway, token, real_app):
    """002 pay mode 1 is WeChat JSAPI, which needs the payer's openid: without it the
    real channel cannot open the payment, and the client gets a retryable 503 code."""
    with real_gateway.client(token(7)) as c:
        r = c.post("/api/recharge/order", json={"id": 1, "price": "28", "payModeId": 1})
    assert r.status_code == 200
    body = r.json()
    assert (body["success"], body["code"]) == (False, 503) and body["message"]
    with real_app.uow_factory() as uow:
        states = [o.state for o in uow.session.scalars(select(RechargeOrderRow).where(RechargeOrderRow.user_id == 7))]
    assert states == ["WAITING_FOR_PAYMENT"]  # nothing credited; settlement fails it after the time-out


def test_002_wechat_jsapi_with_openid_pays_once(real_gateway, token, providers, real_app):
    """With the payer's openid, 002's WeChat mode opens a JSAPI payment whose signed
    parameters the client hands to WeixinJSBridge; WeChat's notification credits once."""
    from urllib.parse import parse_qsl

    with real_gateway.client(token(8)) as c:
        data = c.post("/api/recharge/order", json={"id": 1, "price": "28", "payModeId": 1,
                                                    "openid": "o_payer_8"}).json()["data"]
    assert data["method"] == "jsapi"
    params = dict(parse_qsl(data["body"]))
    sent = providers.wechat.orders[data["orderNumber"]]
    assert sent["payer"] == {"openid": "o_payer_8"} and params["package"] == f"prepay_id={sent['prepay_id']}"
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert keys.rsa_verify(providers.wechat_merchant_key.public_key(), message, params["paySign"])
    order = order_by_number(real_app, data["orderNumber"])
    providers.wechat.paid[data["orderNumber"]] = "4200000000202611210000000088"
    body, headers = providers.wechat.notification(providers.wechat.transaction(data["orderNumber"]))
    url = f"/api/recharge/orders/{order.id}/wechat-callback"
    with real_gateway.client() as wechat:
        assert wechat.post(url, content=body, headers=headers).status_code == 204
        assert wechat.post(url, content=body, headers=headers).status_code == 204
    assert order_by_number(real_app, data["orderNumber"]).state == "SUCCESSFUL_PAYMENT"
    assert real_app.recharges.wallet.balance(8) == 2800


# ---- the test matrix on the recharge path, per family and channel -------------------

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _order_000(c, pay_type):
    d = c.post("/charge/pay", json={"id": 2, "payType": pay_type}).json()["d"]
    return d["payOrderId"], d["callPayInfo"]


def _verified_client_params(providers, channel, pay_info):
    """The client parameters / order string as the client gets them, checked
    against the test merchant key (what the provider's cashier would check)."""
    from urllib.parse import parse_qsl

    if channel == "wechat":
        params = json.loads(pay_info)
        message = f"{params['appid']}\n{params['timestamp']}\n{params['noncestr']}\n{params['prepayid']}\n"
        assert keys.rsa_verify(providers.wechat_merchant_key.public_key(), message, params["sign"])
        return params
    fields = dict(parse_qsl(pay_info))
    assert providers.alipay.verify_request(fields)
    return fields


FAMILIES = [
    # (family, how the order is made, channel)
    ("000", "ALIPAYCASH", "alipay"),
    ("000", "WX_APP", "wechat"),
    ("002", 2, "alipay"),  # pay mode 2: h5 / alipay -> Alipay_AopWap, a form posted to the gateway
]


def _create(c, family, mode, providers):
    if family == "000":
        number, info = _order_000(c, mode)
        return number, _verified_client_params(providers, "wechat" if mode == "WX_APP" else "alipay", info)
    data = c.post("/api/recharge/order", json={"id": 10001, "price": "500.00", "payModeId": mode}).json()["data"]
    assert data["url"] == providers.alipay.gateway and data["method"] == "post"
    return data["orderNumber"], _verified_client_params(providers, "alipay", data["body"])


def _signed(providers, channel, number, amount_fen, **overrides):
    """(body, headers) of an authentic paid notification from the provider."""
    from server.platform.money import yuan_string_2dp

    if channel == "alipay":
        return providers.alipay.notification(number, yuan_string_2dp(amount_fen), **overrides), FORM
    w = providers.wechat
    w.paid.setdefault(number, "42000000002026112100" + number[-8:])
    timestamp = overrides.pop("timestamp", None)
    return w.notification(w.transaction(number, **overrides), timestamp=timestamp)


def _post(gateway, order_id, channel, body, headers):
    with gateway.client() as provider:
        return provider.post(f"/api/recharge/orders/{order_id}/{channel}-callback", content=body, headers=headers)


def _acked(channel, reply) -> bool:
    if channel == "alipay":
        return (reply.status_code, reply.text) == (200, "success")
    return reply.status_code == 204 and reply.content == b""


def _refused(channel, reply) -> bool:
    if channel == "alipay":
        return reply.text != "success"  # anything but `success`: Alipay retries
    return reply.status_code >= 400 and reply.json()["code"] == "FAIL" and reply.json()["message"]


@pytest.mark.parametrize("family,mode,channel", FAMILIES, ids=[f"{f}-{c}" for f, _, c in FAMILIES])
def test_each_family_pays_through_each_real_channel_once(real_gateway, token, providers, real_app, family, mode,
                                                         channel):
    with real_gateway.client(token(21)) as c:
        number, _ = _create(c, family, mode, providers)
    order = order_by_number(real_app, number)
    assert order.channel == channel
    body, headers = _signed(providers, channel, number, order.amount)
    assert _acked(channel, _post(real_gateway, order.id, channel, body, headers))
    assert _acked(channel, _post(real_gateway, order.id, channel, body, headers))  # re-sent: acknowledged only
    assert order_by_number(real_app, number).state == "SUCCESSFUL_PAYMENT"
    assert real_app.recharges.wallet.balance(21) == order.amount + order.gift_amount


BAD = {
    "alipay": ["tampered", "amount", "app_id", "seller_id", "other_order"],
    "wechat": ["tampered", "amount", "app_id", "mchid", "stale", "other_order"],
}


@pytest.mark.parametrize("family,mode,channel,case",
                         [(f, m, ch, case) for f, m, ch in FAMILIES for case in BAD[ch]],
                         ids=lambda v: str(v))
def test_bad_recharge_notifications_change_nothing(real_gateway, token, providers, real_app, family, mode, channel,
                                                   case):
    with real_gateway.client(token(22)) as c:
        number, _ = _create(c, family, mode, providers)
        other_number, _ = _create(c, family, mode, providers)
    order = order_by_number(real_app, number)
    amount = order.amount
    if case == "tampered":  # signed for one fen, then the amount edited to the order's
        body, headers = _signed(providers, channel, number, 1)
        if channel == "alipay":
            body = body.replace(b"total_amount=0.01", b"total_amount=" + f"{amount / 100:.2f}".encode())
        else:
            body = body.replace(b'"summary": "', b'"summary": "X')
    elif case == "amount":  # authentic, but not what the order costs
        if channel == "alipay":
            body, headers = _signed(providers, channel, number, amount - 1)
        else:
            body, headers = _signed(providers, channel, number, amount, amount={"total": amount - 1,
                                                                               "currency": "CNY"})
    elif case == "app_id":
        body, headers = _signed(providers, channel, number, amount,
                                **({"app_id": "2021999999999999"} if channel == "alipay" else {"appid": "wx_other"}))
    elif case == "seller_id":
        body, headers = _signed(providers, channel, number, amount, seller_id="2088999999999999")
    elif case == "mchid":
        body, headers = _signed(providers, channel, number, amount, mchid="1900009999")
    elif case == "stale":  # authentic, signed 6 minutes ago: a replay
        body, headers = _signed(providers, channel, number, amount, timestamp=int(__import__("time").time()) - 360)
    else:  # other_order: an authentic paid notification for another order replayed to this one
        body, headers = _signed(providers, channel, other_number, amount)
    assert _refused(channel, _post(real_gateway, order.id, channel, body, headers))
    assert order_by_number(real_app, number).state == "WAITING_FOR_PAYMENT"
    assert order_by_number(real_app, other_number).state == "WAITING_FOR_PAYMENT"
    assert real_app.recharges.wallet.balance(22) == 0


def test_a_not_yet_paid_statement_leaves_the_recharge_order_waiting(real_gateway, token, providers, real_app):
    """WAIT_BUYER_PAY (Alipay) and NOTPAY (WeChat Pay re-query) mean "not paid yet",
    not "failed": the buyer may still pay before the order time-out. Only a closed
    trade fails the order early."""
    from .providers import AlipayTrade

    with real_gateway.client(token(23)) as c:
        alipay_no, _ = _order_000(c, "ALIPAYCASH")
        wechat_no, _ = _order_000(c, "WX_APP")
    alipay_order = order_by_number(real_app, alipay_no)
    waiting = providers.alipay.notification(alipay_no, "30.00", "WAIT_BUYER_PAY")
    assert _acked("alipay", _post(real_gateway, alipay_order.id, "alipay", waiting, FORM))
    assert order_by_number(real_app, alipay_no).state == "WAITING_FOR_PAYMENT"

    # A re-query 5 minutes in: WeChat Pay knows the order (prepay) but it is NOTPAY.
    _age_recharge(real_app, order_by_number(real_app, wechat_no).id, 5)
    providers.alipay.trades[alipay_no] = AlipayTrade(alipay_no, "30.00", "WAIT_BUYER_PAY")
    _age_recharge(real_app, alipay_order.id, 5)
    report = real_app.settlement.run_once()
    assert (report.queried, report.failed, report.closed) == (2, 0, 0)
    assert order_by_number(real_app, wechat_no).state == "WAITING_FOR_PAYMENT"
    assert order_by_number(real_app, alipay_no).state == "WAITING_FOR_PAYMENT"

    closed = providers.alipay.notification(alipay_no, "30.00", "TRADE_CLOSED")
    assert _acked("alipay", _post(real_gateway, alipay_order.id, "alipay", closed, FORM))
    assert order_by_number(real_app, alipay_no).state == "FAILURE_TO_PAY"
    assert real_app.recharges.wallet.balance(23) == 0
