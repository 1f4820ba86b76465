"""Refunds through the real Alipay and WeChat Pay channels against the local
stand-ins, with notifications through the real Envoy: operator refunds (full and
partial), refunds started in the provider's console, unknown outcomes settled by
the settlement loop, duplicates and concurrency, and a refund that overtakes the
payment notification. The root conftest runs ledger-check's proofs after each test."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from server.recharge.tables import RechargeOrderRow, WalletEntryRow
from server.payments.refund_tables import RefundRow
from server.recharge.rules import demo_catalog

from .providers import AlipayTrade
from .test_alipay import create, notify, state

WECHAT_TXN = "4200000000202611220000000001"


@pytest.fixture(autouse=True)
def _recharge_catalog(real_app):
    real_app.recharges.catalog.save(demo_catalog())
    real_app.recharges.catalog.invalidate()


def alipay_paid_vip(real_gateway, token, providers, user=1):
    with real_gateway.client(token(user)) as c:
        order = create(c)  # middle, 3 months, 54.00
    providers.alipay.trades[order["trade_no"]] = AlipayTrade(order["trade_no"], "54.00", "TRADE_SUCCESS")
    body = providers.alipay.notification(order["trade_no"], "54.00")
    assert notify(real_gateway, order["id"], body).text == "success"
    return order


def wechat_recharge(real_gateway, token, providers, real_app, user=5, pay=True):
    with real_gateway.client(token(user)) as c:
        d = c.post("/charge/pay", json={"id": 1, "payType": "WX_APP"}).json()["d"]  # 100.00
    with real_app.uow_factory() as uow:
        order = uow.session.scalar(select(RechargeOrderRow).where(RechargeOrderRow.order_number == d["payOrderId"]))
    providers.wechat.paid[order.order_number] = WECHAT_TXN
    if pay:
        body, headers = providers.wechat.notification(providers.wechat.transaction(order.order_number))
        with real_gateway.client() as wechat:
            assert wechat.post(f"/api/recharge/orders/{order.id}/wechat-callback", content=body,
                               headers=headers).status_code == 204
    return order


def wechat_vip(real_gateway, token, providers, user=1):
    with real_gateway.client(token(user)) as c:
        order = create(c, pay_method="WechatPay_App")
    providers.wechat.paid[order["trade_no"]] = WECHAT_TXN
    return order


def post_refund_notification(real_gateway, body, headers):
    with real_gateway.client() as wechat:
        return wechat.post("/api/refunds/wechat-callback", content=body, headers=headers)


def refunds(real_app):
    with real_app.uow_factory() as uow:
        return list(uow.session.scalars(select(RefundRow).order_by(RefundRow.id)))


def age_refunds(real_app, minutes=10):
    with real_app.uow_factory() as uow:
        uow.session.execute(update(RefundRow).values(
            created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=minutes)))
        uow.commit()


# ---------------------------------------------------------------- Alipay ----


def test_alipay_partial_then_full_refund_of_a_vip_order(real_gateway, token, providers, real_app):
    order = alipay_paid_vip(real_gateway, token, providers)
    part = real_app.refunds.refund(order["trade_no"], amount_fen=1800, reason="partial")
    assert part.state == "succeeded" and providers.alipay.refunds[part.refund_no] == (order["trade_no"], 1800)
    with real_gateway.client(token(1)) as c:
        assert state(c, order["id"])[1]["current_level"] == "middle"
    rest = real_app.refunds.refund(order["trade_no"], amount_fen=None, reason="rest")
    assert rest.state == "succeeded" and rest.amount_fen == 3600
    assert providers.alipay.refunded_fen(order["trade_no"]) == 5400 and providers.alipay.rejected == []
    with real_gateway.client(token(1)) as c:
        paid, me = state(c, order["id"])
        shown = c.get(f"/api/v2/vip/orders/{order['id']}").json()
    assert paid is True and me["is_vip"] is False  # paid once, refunded in full (docs/refunds.md)
    assert (shown["pay_status"], shown["refund_status"], shown["refunded_amount"]) == (1, 2, 5400)
    # Alipay's own refund notification (to the payment's notify_url) for our refund: applied once, no change.
    body = providers.alipay.notification(order["trade_no"], "54.00", "TRADE_CLOSED", refund_fee="54.00",
                                         out_biz_no=rest.refund_no, gmt_refund="2026-11-22 10:00:00")
    assert notify(real_gateway, order["id"], body).text == "success"
    assert [r.state for r in refunds(real_app)] == ["succeeded", "succeeded"]


def test_alipay_unknown_outcome_is_settled_by_the_settlement_loop(real_gateway, token, providers, real_app):
    order = alipay_paid_vip(real_gateway, token, providers)
    providers.alipay.down = True
    pending = real_app.refunds.refund(order["trade_no"], amount_fen=None, reason="provider down")
    assert pending.state == "pending"
    with real_gateway.client(token(1)) as c:
        assert state(c, order["id"])[1]["is_vip"] is False  # taken back at once (given back if it fails)
    providers.alipay.down = False
    assert real_app.settlement.run_once().refunds_queried == 0  # too young to ask about
    age_refunds(real_app)
    report = real_app.settlement.run_once()
    assert (report.refunds_queried, report.refunds_finished) == (1, 1)
    # The query found nothing (the request never arrived), so it was sent again: refunded once.
    assert real_app.refunds.get(pending.refund_no).state == "succeeded"
    assert providers.alipay.refunds == {pending.refund_no: (order["trade_no"], 5400)}
    methods = [m for _, m in providers.alipay.requests]
    assert methods.count("alipay.trade.fastpay.refund.query") == 1 and methods.count("alipay.trade.refund") == 1


def test_alipay_refusal_gives_the_take_back_back(real_gateway, token, providers, real_app):
    order = alipay_paid_vip(real_gateway, token, providers)
    with real_gateway.client(token(1)) as c:
        before = state(c, order["id"])[1]["levels"]
    del providers.alipay.trades[order["trade_no"]]  # Alipay: ACQ.TRADE_NOT_EXIST
    failed = real_app.refunds.refund(order["trade_no"], amount_fen=None, reason="refused")
    assert failed.state == "failed"
    with real_gateway.client(token(1)) as c:
        after = state(c, order["id"])[1]["levels"]
    assert after[0]["level"] == before[0]["level"] == "middle"
    assert abs(datetime.fromisoformat(after[0]["expires_at"]) - datetime.fromisoformat(before[0]["expires_at"])
               ) < timedelta(seconds=5)


def test_alipay_console_refund_notification_is_applied_once(real_gateway, token, providers, real_app):
    order = alipay_paid_vip(real_gateway, token, providers)
    body = providers.alipay.notification(order["trade_no"], "54.00", "TRADE_CLOSED", refund_fee="54.00",
                                         out_biz_no="HZ01RF001", gmt_refund="2026-11-22 10:00:00")
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: notify(real_gateway, order["id"], body).text, range(10)))
    assert replies == ["success"] * 10
    [row] = refunds(real_app)
    assert (row.refund_no, row.origin, row.amount_fen, row.state) == ("HZ01RF001", "provider", 5400, "succeeded")
    with real_gateway.client(token(1)) as c:
        assert state(c, order["id"])[1]["is_vip"] is False
    # A forged refund notification changes nothing.
    forged = body.replace(b"HZ01RF001", b"HZ01RF002")
    assert notify(real_gateway, order["id"], forged).text == "fail"
    assert len(refunds(real_app)) == 1


# ----------------------------------------------------------- WeChat Pay ----


def test_wechat_refund_processing_then_notified_success(real_gateway, token, providers, real_app):
    order = wechat_recharge(real_gateway, token, providers, real_app)
    assert real_app.recharges.wallet.balance(5) == 10000
    providers.wechat.refund_status = "PROCESSING"
    row = real_app.refunds.refund(order.order_number, amount_fen=4000, reason="partial")
    assert row.state == "processing" and real_app.recharges.wallet.balance(5) == 6000
    sent = providers.wechat.refunds[row.refund_no]
    assert sent["notify_url"].endswith("/api/refunds/wechat-callback") and sent["amount"]["refund"] == 4000
    body, headers = providers.wechat.refund_notification(sent, "SUCCESS")
    with ThreadPoolExecutor(8) as pool:  # duplicate, concurrent deliveries
        codes = list(pool.map(lambda _: post_refund_notification(real_gateway, body, headers).status_code, range(8)))
    assert codes == [204] * 8
    assert real_app.refunds.get(row.refund_no).state == "succeeded" and real_app.recharges.wallet.balance(5) == 6000
    full = real_app.refunds.refund(order.order_number, amount_fen=None, reason="rest")
    assert full.state == "processing" and real_app.recharges.wallet.balance(5) == 0
    with real_gateway.client(token(5)) as c:
        rows = c.get("/api/recharge/history").json()["data"]["rows"]
    assert rows[0]["state"] == "SUCCESSFUL_PAYMENT" and rows[0]["refundedAmount"] == "40"  # 60 still processing


def test_wechat_refund_closed_gives_the_wallet_back(real_gateway, token, providers, real_app):
    order = wechat_recharge(real_gateway, token, providers, real_app)
    providers.wechat.refund_status = "PROCESSING"
    row = real_app.refunds.refund(order.order_number, amount_fen=None, reason="closed later")
    assert real_app.recharges.wallet.balance(5) == 0
    body, headers = providers.wechat.refund_notification(providers.wechat.refunds[row.refund_no], "CLOSED")
    assert post_refund_notification(real_gateway, body, headers).status_code == 204
    assert real_app.refunds.get(row.refund_no).state == "failed" and real_app.recharges.wallet.balance(5) == 10000
    with real_app.uow_factory() as uow:
        reasons = sorted(uow.session.scalars(select(WalletEntryRow.reason)))
    assert reasons == ["recharge", "refund", "refund_undo"]


def test_wechat_console_refund_takes_back_what_is_there(real_gateway, token, providers, real_app):
    order = wechat_recharge(real_gateway, token, providers, real_app)
    real_app.recharges.wallet.move(5, 0, 7000, "shop:9", "spend-9", debit=True)  # 30.00 left
    console = providers.wechat.refund_record(order.order_number, "503000000012026112200001", 10000, "SUCCESS")
    body, headers = providers.wechat.refund_notification(console)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: post_refund_notification(real_gateway, body, headers).status_code, range(6)))
    assert codes == [204] * 6
    [row] = refunds(real_app)
    assert (row.origin, row.amount_fen) == ("provider", 10000)
    assert json.loads(row.take_back) == {"wallet": 3000, "shortfall": 7000}  # never below zero
    assert real_app.recharges.wallet.balance(5) == 0


def test_refund_overtaking_the_payment_notification(real_gateway, token, providers, real_app):
    """A REFUND.SUCCESS arrives before TRANSACTION.SUCCESS: the refund proves the
    payment, so the order is paid and refunded at once; the late payment grants nothing."""
    order = wechat_vip(real_gateway, token, providers)
    providers.wechat.refunds["C1"] = refund = providers.wechat.refund_record(order["trade_no"], "C1", 5400, "SUCCESS")
    body, headers = providers.wechat.refund_notification(refund)
    late, late_headers = providers.wechat.notification(providers.wechat.transaction(order["trade_no"]))
    assert post_refund_notification(real_gateway, body, headers).status_code == 204
    with real_gateway.client() as wechat:
        assert wechat.post(f"/api/v2/vip/orders/{order['id']}/wechat-callback", content=late,
                           headers=late_headers).status_code == 204
    with real_gateway.client(token(1)) as c:
        paid, me = state(c, order["id"])
    assert paid is True and me["is_vip"] is False
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1  # granted once (then taken back)
    assert [r.state for r in refunds(real_app)] == ["succeeded"]


def test_refund_racing_a_late_payment_notification(real_gateway, token, providers, real_app):
    for round_ in range(4):
        user = 40 + round_
        order = wechat_vip(real_gateway, token, providers, user)
        refund = providers.wechat.refund_record(order["trade_no"], f"RACE{round_}", 5400, "SUCCESS")
        body, headers = providers.wechat.refund_notification(refund)
        pay, pay_headers = providers.wechat.notification(providers.wechat.transaction(order["trade_no"]))

        def send(which):
            with real_gateway.client() as wechat:
                if which == "refund":
                    return wechat.post("/api/refunds/wechat-callback", content=body, headers=headers).status_code
                return wechat.post(f"/api/v2/vip/orders/{order['id']}/wechat-callback", content=pay,
                                   headers=pay_headers).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(send, ["refund", "pay", "refund", "pay"]))
        assert codes == [204] * 4
        with real_gateway.client(token(user)) as c:
            assert state(c, order["id"])[1]["is_vip"] is False, round_
        assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1


def test_wechat_unknown_outcome_settled_and_forged_notification_refused(real_gateway, token, providers, real_app):
    order = wechat_recharge(real_gateway, token, providers, real_app)
    providers.wechat.down = True
    row = real_app.refunds.refund(order.order_number, amount_fen=2500, reason="down")
    assert row.state == "pending"
    providers.wechat.down = False
    age_refunds(real_app)
    assert real_app.settlement.run_once().refunds_finished == 1
    assert real_app.refunds.get(row.refund_no).state == "succeeded"
    assert list(providers.wechat.refunds) == [row.refund_no]
    body, headers = providers.wechat.refund_notification(providers.wechat.refunds[row.refund_no], "CLOSED")
    forged = dict(headers, **{"Wechatpay-Signature": headers["Wechatpay-Signature"][::-1]})
    r = post_refund_notification(real_gateway, body, forged)
    assert r.status_code == 400 and r.json()["code"] == "FAIL"
    assert real_app.refunds.get(row.refund_no).state == "succeeded" and real_app.recharges.wallet.balance(5) == 7500


# ------------------------------------------------ every kind x every channel ----


def pay_through_envoy(real_gateway, token, providers, real_app, kind, channel, user):
    """Creates and pays one order of `kind` through Envoy; returns (number, id, fen)."""
    with real_gateway.client(token(user)) as c:
        if kind == "vip":
            order = create(c, pay_method="Alipay_AopApp" if channel == "alipay" else "WechatPay_App")
            number, order_id, fen, path = order["trade_no"], order["id"], 5400, "/api/v2/vip/orders"
        elif kind == "package":  # 000: 30.00 + 1 month low
            number = c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH" if channel == "alipay"
                                                 else "WX_APP"}).json()["d"]["payOrderId"]
            fen, path = 3000, "/api/recharge/orders"
        else:  # 002 plan 10001: 500.00 + 50.00 gift (WAP Alipay or JSAPI WeChat)
            body = {"id": 10001, "price": "500.00", "payModeId": 2 if channel == "alipay" else 1, "openid": "o_1"}
            data = c.post("/api/recharge/order", json=body).json()["data"]
            number, fen, path = data["orderNumber"], 50000, "/api/recharge/orders"
    if kind != "vip":
        with real_app.uow_factory() as uow:
            order_id = uow.session.scalar(select(RechargeOrderRow.id).where(RechargeOrderRow.order_number == number))
    with real_gateway.client() as provider:
        if channel == "alipay":
            yuan = "%.2f" % (fen / 100)
            providers.alipay.trades[number] = AlipayTrade(number, yuan, "TRADE_SUCCESS")
            r = provider.post(f"{path}/{order_id}/alipay-callback", content=providers.alipay.notification(number, yuan),
                              headers={"content-type": "application/x-www-form-urlencoded"})
            assert r.text == "success"
        else:
            providers.wechat.paid[number] = WECHAT_TXN
            body, headers = providers.wechat.notification(providers.wechat.transaction(number))
            assert provider.post(f"{path}/{order_id}/wechat-callback", content=body,
                                 headers=headers).status_code == 204
    return number, order_id, fen


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
@pytest.mark.parametrize("kind", ["vip", "package", "plan"])
def test_every_kind_refunded_through_every_channel(real_gateway, token, providers, real_app, kind, channel):
    user = 60
    number, order_id, fen = pay_through_envoy(real_gateway, token, providers, real_app, kind, channel, user)
    with real_gateway.client(token(user)) as c:
        assert c.get("/api/v2/vip/membership").json()["is_vip"] is (kind != "plan")
    part = real_app.refunds.refund(number, amount_fen=fen // 3, reason="part")
    rest = real_app.refunds.refund(number, amount_fen=None, reason="rest")
    assert (part.state, rest.state, part.amount_fen + rest.amount_fen) == ("succeeded", "succeeded", fen)
    received = (providers.alipay.refunded_fen(number) if channel == "alipay" else
                sum(r["amount"]["refund"] for r in providers.wechat.refunds.values()))
    assert received == fen  # what reached the provider, under our refund numbers
    with real_gateway.client(token(user)) as c:
        assert c.get("/api/v2/vip/membership").json()["is_vip"] is False
        if kind == "vip":
            shown = c.get(f"/api/v2/vip/orders/{order_id}").json()
            assert (shown["pay_status"], shown["refund_status"], shown["refunded_amount"]) == (1, 2, fen)
        else:
            assert c.get("/api/recharge").json()["data"]["balance"] == "0"
        if kind == "plan":
            [row] = c.get("/api/recharge/history").json()["data"]["rows"]
            assert (row["state"], row["refundedAmount"]) == ("SUCCESSFUL_PAYMENT", "500")


def test_alipay_console_refunds_without_a_number_use_the_refunded_total(real_gateway, token, providers, real_app):
    """Alipay states the trade's refunded total: two console refunds (10.00, then 20.00
    more) are recorded as two refunds of the difference, each once."""
    order = alipay_paid_vip(real_gateway, token, providers)
    for total in ("10.00", "10.00", "30.00", "30.00"):  # each notification delivered twice
        body = providers.alipay.notification(order["trade_no"], "54.00", "TRADE_SUCCESS", refund_fee=total,
                                             gmt_refund="2026-11-22 10:00:00")
        assert notify(real_gateway, order["id"], body).text == "success"
    rows = refunds(real_app)
    assert [(r.refund_no, r.amount_fen, r.origin) for r in rows] == [
        (f"ALIPAY-{order['trade_no']}-1000", 1000, "provider"), (f"ALIPAY-{order['trade_no']}-3000", 2000, "provider")]
    with real_gateway.client(token(1)) as c:
        shown = c.get(f"/api/v2/vip/orders/{order['id']}").json()
        assert state(c, order["id"])[1]["current_level"] == "middle"  # 24 of 54 refunded: the rest stays
    assert (shown["refund_status"], shown["refunded_amount"]) == (1, 3000)
    # The operator can refund only what is left.
    rest = real_app.refunds.refund(order["trade_no"], amount_fen=None, reason="rest")
    assert rest.amount_fen == 2400 and rest.state == "succeeded"


def test_two_replicas_ask_about_each_open_refund_once(real_gateway, token, providers, real_app):
    """Two refund services (as on two replicas, each with its own engine) racing over
    the same open refunds: each is asked about once and finished once."""
    from server.app import build_app
    from server.platform.database import make_engine

    orders = [wechat_recharge(real_gateway, token, providers, real_app, user=70 + i) for i in range(4)]
    providers.wechat.refund_status = "PROCESSING"
    opened = [real_app.refunds.refund(o.order_number, amount_fen=None, reason="replicas") for o in orders]
    for row in opened:  # the results are known at WeChat Pay, but the notifications were lost
        providers.wechat.refunds[row.refund_no]["status"] = "SUCCESS"
    age_refunds(real_app)
    other = build_app(real_app.settings, make_engine(real_app.settings.sqlalchemy_url))
    try:
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda svc: [svc.run_once(), svc.run_once()], [real_app.refunds, other.refunds]))
    finally:
        other.engine.dispose()
    flat = [r for pair in reports for r in pair]
    assert sum(r.queried for r in flat) == 4 and sum(r.finished for r in flat) == 4
    asked = [p for m, p in providers.wechat.requests if m == "GET" and p.startswith("/v3/refund/domestic/refunds/")]
    assert sorted(asked) == sorted(f"/v3/refund/domestic/refunds/{r.refund_no}" for r in opened)
    assert {real_app.refunds.get(r.refund_no).state for r in opened} == {"succeeded"}


@pytest.mark.parametrize("body", [b"", b"not json", b"{}", b'{"resource":{"algorithm":"AEAD_AES_256_GCM"}}', b"\xff" * 64])
def test_malformed_refund_notifications_are_refused_never_5xx(real_gateway, body):
    with real_gateway.client() as anyone:
        r = anyone.post("/api/refunds/wechat-callback", content=body, headers={"content-type": "application/json"})
        unknown = anyone.post("/api/refunds/paypal-callback", content=body)
    assert r.status_code == 400 and r.json()["code"] == "FAIL"
    assert unknown.status_code == 404


def test_refund_rpc_refuses_bad_input_with_field_errors(channel, token):
    import grpc
    from vipay.payments.v1 import refunds_pb2 as pb
    from vipay.payments.v1 import refunds_pb2_grpc

    from tests.conftest import auth

    stub = refunds_pb2_grpc.RefundServiceStub(channel)
    for request in (pb.RefundOrderRequest(), pb.RefundOrderRequest(order_number="X", reason="r", refund_id="a b"),
                    pb.RefundOrderRequest(order_number="X", reason="r", amount_fen=-5)):
        with pytest.raises(grpc.RpcError) as refused:
            stub.RefundOrder(request, metadata=auth(token(1, "admin")))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        stub.RefundOrder(pb.RefundOrderRequest(order_number="NOPE", reason="r"), metadata=auth(token(1, "admin")))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.RefundOrder(pb.RefundOrderRequest(order_number="NOPE", reason="r"))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
