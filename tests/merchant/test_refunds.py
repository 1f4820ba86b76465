"""Operator refunds of merchant (004) orders through the admin RPC: the settlement
price back to the prepaid balance, the membership taken back, the order's state
`refunded` on the query, and a signed `refunded` status callback."""

from __future__ import annotations

import json

import grpc
import pytest
from vipay.payments.v1 import refunds_pb2 as pb
from vipay.payments.v1 import refunds_pb2_grpc

from tests.conftest import auth

from .conftest import ACCOUNT, PRICE_FEN, USER_ID, callback_json


def balance(app, merchant_id="166") -> int:
    from sqlalchemy import select

    from server.merchant.tables import MerchantRow

    with app.uow_factory() as uow:
        return uow.session.scalar(select(MerchantRow.balance_fen).where(MerchantRow.merchant_id == merchant_id))


def test_admin_refund_of_a_merchant_order(app, channel, token, merchant, client_for, receiver, platform_key,
                                          only_server_dispatcher):
    client = client_for(merchant)
    created = client.vip_charge("87103", ACCOUNT, "rf-1", callback_url=receiver.url)["data"]
    receiver.wait_for(1)
    assert app.memberships.ledger.status(USER_ID).current_level == "middle"
    before = balance(app)
    stub = refunds_pb2_grpc.RefundServiceStub(channel)
    request = pb.RefundOrderRequest(order_number=created["orderCode"], reason="merchant complaint")
    with pytest.raises(grpc.RpcError) as denied:
        stub.RefundOrder(request, metadata=auth(token(1)))  # a user is not an operator
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as partial:
        stub.RefundOrder(pb.RefundOrderRequest(order_number=created["orderCode"], amount_fen=100, reason="x"),
                         metadata=auth(token(1, "admin")))
    assert partial.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # 004 orders are refunded in full
    refund = stub.RefundOrder(request, metadata=auth(token(1, "admin"))).refund
    assert (refund.state, refund.amount_fen, refund.channel, refund.order_kind) == (
        "succeeded", PRICE_FEN, "merchant_balance", "merchant_orders")
    assert refund.create_time.seconds > 0 and refund.finish_time.seconds >= refund.create_time.seconds
    again = stub.RefundOrder(request, metadata=auth(token(1, "admin"))).refund  # a retry: the same refund
    assert again.refund_id == refund.refund_id
    assert balance(app) == before + PRICE_FEN
    assert app.memberships.ledger.status(USER_ID).current_level == ""
    (_, first), (headers, body) = receiver.wait_for(2)
    assert client.verify_callback(platform_key[1], headers, body)
    report = callback_json((headers, body))
    assert (report["state"], report["status"], report["message"], report["orderCode"]) == (
        "refunded", 200, "refunded", created["orderCode"])
    assert client.query_order(biz_code="rf-1")["data"]["state"] == "refunded"
    listed = stub.ListOrderRefunds(pb.ListOrderRefundsRequest(order_number=created["orderCode"]),
                                   metadata=auth(token(1, "admin"))).refunds
    assert [r.refund_id for r in listed] == [refund.refund_id]
    assert json.loads(listed[0].take_back_json)["merchant_balance"] == PRICE_FEN
