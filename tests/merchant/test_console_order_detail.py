"""The console's detail of a merchant (004) order (ConsoleService.GetOrderDetail): the
prepaid balance it moved, the membership it granted and its status callbacks, amounts
as 004 renders them (yuan numbers); re-query and close do not apply to it."""

from __future__ import annotations

import time

import grpc
import pytest
from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc

from tests.conftest import auth

from .conftest import ACCOUNT, PRICE_FEN


def test_a_merchant_order_shows_its_balance_entry_grant_and_callback(app, channel, token, merchant, client_for,
                                                                    receiver, only_server_dispatcher):
    created = client_for(merchant).vip_charge("87103", ACCOUNT, "detail-1", callback_url=receiver.url)["data"]
    receiver.wait_for(1)
    console = console_pb2_grpc.ConsoleServiceStub(channel)
    for _ in range(100):  # the dispatcher records the delivery just after the receiver has it
        d = console.GetOrderDetail(pb.GetOrderDetailRequest(order_number=created["orderCode"]),
                                   metadata=auth(token(1, "support")))
        if d.callbacks and d.callbacks[0].state == "delivered":
            break
        time.sleep(0.05)
    assert (d.order.family, d.order.state, d.order.amount_display) == ("004", "paid", "4.51")
    [entry] = d.merchant_balance_entries
    assert (entry.kind, entry.amount_fen, entry.amount_display) == ("charge", -PRICE_FEN, "-4.51")
    [grant] = d.grants
    assert (grant.level, grant.source) == ("middle", "merchant_order")
    [callback] = d.callbacks
    assert (callback.url, callback.state, callback.attempts) == (receiver.url, "delivered", 1)
    assert {f.name: f.value for f in d.payment_fields}["biz_code"] == "detail-1"
    assert not d.can_requery and not d.can_close and not d.notifications
    for call, request in ((console.RequeryOrder, pb.RequeryOrderRequest), (console.CloseOrder, pb.CloseOrderRequest)):
        with pytest.raises(grpc.RpcError) as refused:
            call(request(order_number=created["orderCode"], reason="try"), metadata=auth(token(2, "finance")))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
