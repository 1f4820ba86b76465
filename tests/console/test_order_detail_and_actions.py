"""ConsoleService's one-order RPCs (docs/console.md: Order detail and actions): the detail
of any family (payment data, every provider statement, what it granted or credited,
refunds), re-query settling exactly once through the notification's own path, closing
only unpaid orders (and what a late payment then does), roles and the audit log."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import httpx
import pytest
from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc
from vipay.operators.v1 import operators_pb2 as opb
from vipay.operators.v1 import operators_pb2_grpc

from server.payments import notes
from server.payments.channels import Notification
from server.payments.settlement import SettlementService
from server.recharge.rules import demo_catalog as demo_recharge_catalog
from tests.conftest import auth
from tests.membership.test_grpc import details
from tests.payments.test_refunds_sandbox import FORM, paid_recharge, paid_vip_order

VIP = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}


@pytest.fixture
def console(channel):
    return console_pb2_grpc.ConsoleServiceStub(channel)


@pytest.fixture
def audit(channel, token):
    stub = operators_pb2_grpc.OperatorServiceStub(channel)

    def entries(action: str) -> list:
        return list(stub.ListAuditEntries(opb.ListAuditEntriesRequest(action=action),
                                          metadata=auth(token(1, "support"))).entries)
    return entries


def refusal(call, request, cred) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        call(request, metadata=cred)
    infos = details(exc.value)[0]
    return exc.value.code(), infos[0].reason if infos else ""


def unpaid_vip_order(gateway, token, user=1) -> dict:
    with gateway.client(token(user)) as c:
        return c.post("/api/v2/vip/orders", json=VIP).json()


def notify(app, gateway, order) -> str:
    body = app.sandbox.notification_for(order["trade_no"], order["pay_amount"])
    return httpx.post(f"{gateway.url}/api/v2/vip/orders/{order['id']}/sandbox-callback", content=body,
                      headers=FORM).text


def grants_of(detail, source="vip_order") -> list:
    return [g for g in detail.grants if g.source == source]


def test_detail_of_a_vip_order_shows_every_notification_its_grant_and_refund(app, gateway, token, console):
    order = paid_vip_order(app, gateway, token, user=5)  # one notification through Envoy
    assert notify(app, gateway, order) == "success"  # the provider sends it again: kept, grants nothing
    app.refunds.refund(order["trade_no"], amount_fen=1800, reason="customer asked")
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]),
                               metadata=auth(token(1, "support")))
    assert (d.order.family, d.order.state, d.order.amount_display) == ("001", "paid", str(order["pay_amount"]))
    fields = {f.name: f.value for f in d.payment_fields}
    assert fields["pay_method"] == "Alipay_AopApp" and fields["provider_txn_id"].startswith("sbx_")
    assert [(n.source, n.outcome, n.paid, n.amount_fen, n.amount_display) for n in d.notifications] == [
        ("notification", "settled", True, order["pay_amount"], str(order["pay_amount"])),
        ("notification", "already_paid", True, order["pay_amount"], str(order["pay_amount"]))]
    assert d.notifications[0].receive_time.seconds > 0 and d.notifications[0].channel == "sandbox"
    [grant] = grants_of(d)
    assert (grant.level, grant.source_ref) == ("middle", str(order["id"]))
    assert grant.expire_time.seconds > grant.create_time.seconds + 80 * 86400  # three months
    [take_back] = grants_of(d, "order_refund")  # the partial refund took a third back
    assert take_back.expire_time.seconds < grant.expire_time.seconds
    [refund] = d.refunds
    assert (refund.amount_fen, refund.amount_display, refund.state, refund.reason) == (
        1800, "1800", "succeeded", "customer asked")
    assert d.can_requery and not d.can_close and not d.wallet_entries and not d.callbacks


def test_detail_of_a_recharge_order_shows_its_wallet_credits_as_the_family_renders_money(
        app, gateway, token, console):
    app.recharges.catalog.save(demo_recharge_catalog())
    order = paid_recharge(app, gateway, user=6)
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order.order_number),
                               metadata=auth(token(1, "support")))
    credits = [(e.reason, e.amount_fen, e.amount_display) for e in d.wallet_entries]
    assert credits[0][:2] == ("recharge", 50000)
    assert credits[0][2] == d.order.amount_display and d.order.amount_display in ("500", "500.00")
    assert sum(e.amount_fen for e in d.wallet_entries) == d.wallet_entries[-1].balance_after_fen  # a fresh wallet
    [note] = d.notifications
    assert (note.source, note.outcome, note.amount_display) == ("notification", "settled", d.order.amount_display)


def test_requery_settles_once_however_often_asked_and_a_late_notification_grants_nothing(
        app, gateway, token, console, audit):
    order = unpaid_vip_order(gateway, token, user=7)
    finance = auth(token(2, "finance"))
    request = pb.RequeryOrderRequest(order_number=order["trade_no"], reason="customer says paid")

    unknown = console.RequeryOrder(request, metadata=finance).result  # nothing at the provider yet
    assert (unknown.provider_answer, unknown.state_before, unknown.state_after, unknown.settled) == (
        "unknown_trade", "unpaid", "unpaid", False)
    app.sandbox.pay(order["trade_no"], order["pay_amount"])  # paid at the provider; the notification is lost

    first = console.RequeryOrder(request, metadata=finance).result
    assert (first.provider_answer, first.state_before, first.state_after, first.settled) == (
        "paid", "unpaid", "paid", True)
    expires = app.memberships.ledger.status(7).levels["middle"]
    second = console.RequeryOrder(request, metadata=auth(token(3, "admin"))).result
    assert (second.provider_answer, second.state_before, second.state_after, second.settled) == (
        "paid", "paid", "paid", False)
    assert notify(app, gateway, order) == "success"  # the notification arrives after all
    assert app.memberships.ledger.status(7).levels["middle"] == expires  # granted exactly once

    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]), metadata=finance)
    assert len(grants_of(d)) == 1
    assert [(n.source, n.outcome) for n in d.notifications] == [
        ("query", "settled"), ("query", "already_paid"), ("notification", "already_paid")]
    entries = audit("order.requery")
    assert len(entries) == 3 and {e.target for e in entries} == {order["trade_no"]}
    newest = entries[0]
    assert (newest.operator_role, newest.reason) == ("admin", "customer says paid")
    assert json.loads(newest.before_json) == {"state": "paid"}
    assert json.loads(entries[1].after_json) == {"state": "paid", "provider": "paid", "settled": True}


def test_requery_of_a_recharge_order_credits_the_wallet_once(app, gateway, token, console):
    app.recharges.catalog.save(demo_recharge_catalog())
    order = app.recharges.order_recharge(8, plan_id=10001, price="500.00", pay_mode_id=2, goods_id=None,
                                         verify_code="", client_ip="").order
    app.sandbox.pay(order.order_number, order.amount)
    request = pb.RequeryOrderRequest(order_number=order.order_number, reason="lost notification")
    for _ in range(2):
        console.RequeryOrder(request, metadata=auth(token(2, "finance")))
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order.order_number),
                               metadata=auth(token(2, "finance")))
    assert d.order.state == "paid"
    assert [e.reason for e in d.wallet_entries].count("recharge") == 1


def test_close_only_unpaid_orders_and_a_payment_after_the_close_is_honoured(
        app, gateway, token, console, audit):
    order = unpaid_vip_order(gateway, token, user=9)
    finance = auth(token(2, "finance"))
    close = pb.CloseOrderRequest(order_number=order["trade_no"], reason="customer gave up")
    closed = console.CloseOrder(close, metadata=finance).result
    assert (closed.state_before, closed.state_after, closed.provider_answer, closed.settled) == (
        "unpaid", "closed", "unknown_trade", False)
    assert app.sandbox.query(order["trade_no"]).closed  # the sandbox provider was told to close it too
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]), metadata=finance)
    assert d.order.state == "closed" and not d.can_close
    assert {f.name: f.value for f in d.payment_fields}["closed_at"]
    assert refusal(console.CloseOrder, close, finance) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_NOT_OPEN")
    [entry] = audit("order.close")  # the refused second close changed nothing and is not an entry
    assert (json.loads(entry.before_json), json.loads(entry.after_json)["state"], entry.reason) == (
        {"state": "unpaid"}, "closed", "customer gave up")

    # A payment that lands after the close was taken: the settlement path honours it.
    assert notify(app, gateway, order) == "success"
    assert app.memberships.ledger.status(9).levels["middle"] is not None
    paid = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]), metadata=finance)
    assert paid.order.state == "paid" and len(grants_of(paid)) == 1
    assert refusal(console.CloseOrder, close, finance) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_NOT_OPEN")


def test_close_of_an_order_the_provider_saw_paid_settles_it_instead(app, gateway, token, console):
    order = unpaid_vip_order(gateway, token, user=10)
    app.sandbox.pay(order["trade_no"], order["pay_amount"])
    result = console.CloseOrder(pb.CloseOrderRequest(order_number=order["trade_no"], reason="stale"),
                                metadata=auth(token(3, "admin"))).result
    assert (result.state_before, result.state_after, result.provider_answer, result.settled) == (
        "unpaid", "paid", "paid", True)
    assert app.memberships.ledger.status(10).levels["middle"] is not None


def test_roles_reasons_and_unknown_orders_are_refused_by_the_server(app, gateway, token, console):
    order = unpaid_vip_order(gateway, token, user=11)
    requery = pb.RequeryOrderRequest(order_number=order["trade_no"], reason="why not")
    close = pb.CloseOrderRequest(order_number=order["trade_no"], reason="why not")
    for cred in (auth(token(1, "support")), auth(token(11)), auth(token(0, "service"))):
        assert refusal(console.RequeryOrder, requery, cred)[0] == grpc.StatusCode.PERMISSION_DENIED
        assert refusal(console.CloseOrder, close, cred)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert refusal(console.CloseOrder, close, ())[0] == grpc.StatusCode.UNAUTHENTICATED
    # Support reads the detail; the order is still unpaid and nothing was asked.
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]),
                               metadata=auth(token(1, "support")))
    assert d.order.state == "unpaid" and d.can_close and not d.notifications
    finance = auth(token(2, "finance"))
    for bad in (pb.CloseOrderRequest(order_number=order["trade_no"]),
                pb.CloseOrderRequest(order_number=order["trade_no"], reason="   "),
                pb.CloseOrderRequest(order_number=order["trade_no"], reason="x" * 501)):
        assert refusal(console.CloseOrder, bad, finance)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(console.RequeryOrder, pb.RequeryOrderRequest(order_number="MO404", reason="r"),
                   finance)[0] == grpc.StatusCode.NOT_FOUND
    assert refusal(console.GetOrderDetail, pb.GetOrderDetailRequest(order_number="x" * 65),
                   finance)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(console.GetOrderDetail, pb.GetOrderDetailRequest(), finance)[0] == grpc.StatusCode.INVALID_ARGUMENT
    for finance_or_admin in (finance, auth(token(3, "admin"))):
        assert console.RequeryOrder(requery, metadata=finance_or_admin).result.state_after == "unpaid"


def test_the_statements_kept_per_order_are_bounded(app, gateway, token):
    order = unpaid_vip_order(gateway, token, user=12)
    waiting = Notification(order["trade_no"], order["pay_amount"], False, "")
    for _ in range(notes.MAX_PER_ORDER + 5):
        app.memberships.orders.settle(order["id"], app.sandbox, waiting)
    with app.uow_factory() as uow:
        kept = notes.notes_of(uow, "vip_orders", order["id"])
    assert len(kept) == notes.MAX_PER_ORDER and {n.outcome for n in kept} == {"waiting"}


def test_the_settlement_loop_finds_a_lost_notification_through_the_sandbox_and_keeps_its_answer(
        app, gateway, token, console):
    order = unpaid_vip_order(gateway, token, user=13)
    app.sandbox.pay(order["trade_no"], order["pay_amount"])
    loop = SettlementService(app.uow_factory, app.channels, app.settlement.books, close_after=timedelta(hours=1),
                             requery_after=timedelta(0), requery_every=timedelta(0))
    assert loop.run_once().settled_paid == 1
    assert loop.run_once().settled_paid == 0  # no longer open: not asked again
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]),
                               metadata=auth(token(1, "support")))
    assert [(n.source, n.outcome) for n in d.notifications] == [("query", "settled")] and len(grants_of(d)) == 1


def test_concurrent_requeries_and_notifications_grant_once(app, gateway, token, console):
    order = unpaid_vip_order(gateway, token, user=14)
    app.sandbox.pay(order["trade_no"], order["pay_amount"])
    request = pb.RequeryOrderRequest(order_number=order["trade_no"], reason="many operators at once")

    def requery(_):
        return console.RequeryOrder(request, metadata=auth(token(2, "finance"))).result.settled

    with ThreadPoolExecutor(12) as pool:
        asked = [pool.submit(requery, i) for i in range(8)]
        told = [pool.submit(notify, app, gateway, order) for _ in range(4)]
        settled = [f.result() for f in asked]
        assert {f.result() for f in told} == {"success"}
    assert settled.count(True) <= 1  # a notification may have won instead
    d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=order["trade_no"]),
                               metadata=auth(token(1, "support")))
    assert d.order.state == "paid" and len(grants_of(d)) == 1
    assert [n.outcome for n in d.notifications].count("settled") == 1 and len(d.notifications) == 12
    # Each re-query reports what its own settle() did: at most the one whose statement settled it.
    assert settled.count(True) == [(n.source, n.outcome) for n in d.notifications].count(("query", "settled"))
