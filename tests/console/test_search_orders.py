"""ConsoleService.SearchOrders: one search over every family, filtered, sorted and paged
by the server, money rendered as each family renders it (docs/console.md)."""

from __future__ import annotations

import grpc
import pytest
from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc

from server.recharge.rules import demo_catalog as demo_recharge_catalog
from tests.conftest import auth
from tests.payments.test_refunds_sandbox import paid_recharge, paid_vip_order


@pytest.fixture
def console(channel):
    return console_pb2_grpc.ConsoleServiceStub(channel)


def numbers(answer) -> list[str]:
    return [o.order_number for o in answer.orders]


def test_one_search_over_the_families(app, gateway, token, console):
    app.recharges.catalog.save(demo_recharge_catalog())
    vip = paid_vip_order(app, gateway, token, user=11)
    with gateway.client(token(12)) as c:
        unpaid = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "low",
                                                    "pay_method": "Alipay_AopApp"}).json()
    recharge = paid_recharge(app, gateway, user=11)
    cred = auth(token(1, "support"))

    everything = console.SearchOrders(pb.SearchOrdersRequest(), metadata=cred)
    assert everything.total_size == 3
    assert numbers(everything) == [recharge.order_number, unpaid["trade_no"], vip["trade_no"]]  # newest first

    by_user = console.SearchOrders(pb.SearchOrdersRequest(user_id=11, order_by="amount desc"), metadata=cred)
    assert numbers(by_user) == [recharge.order_number, vip["trade_no"]]  # 500.00 yuan before the VIP price
    [line] = console.SearchOrders(pb.SearchOrdersRequest(order_number=vip["trade_no"]), metadata=cred).orders
    assert (line.family, line.state, line.user_id, line.amount_fen) == ("001", "paid", 11, vip["pay_amount"])
    assert line.amount_display == str(vip["pay_amount"]) and line.description == "middle x3"  # 001: fen
    assert line.paid_time.seconds > 0
    [rc] = console.SearchOrders(pb.SearchOrdersRequest(family="003", state="paid"), metadata=cred).orders \
        if recharge.family == "center" else console.SearchOrders(
            pb.SearchOrdersRequest(family="002", state="paid"), metadata=cred).orders
    assert rc.amount_fen == 50000 and rc.amount_display in ("500", "500.00")
    unpaid_only = console.SearchOrders(pb.SearchOrdersRequest(state="unpaid"), metadata=cred)
    assert numbers(unpaid_only) == [unpaid["trade_no"]]

    first = console.SearchOrders(pb.SearchOrdersRequest(page_size=2, order_by="create_time"), metadata=cred)
    rest = console.SearchOrders(pb.SearchOrdersRequest(page_size=2, order_by="create_time",
                                                       page_token=first.next_page_token), metadata=cred)
    assert numbers(first) + numbers(rest) == [vip["trade_no"], unpaid["trade_no"], recharge.order_number]
    assert not rest.next_page_token


@pytest.mark.parametrize("request_fields", [{"family": "999"}, {"state": "weird"}, {"order_by": "user_id"},
                                            {"page_size": -1}, {"page_token": "!!"}])
def test_bad_filters_are_invalid_argument(console, token, request_fields):
    with pytest.raises(grpc.RpcError) as exc:
        console.SearchOrders(pb.SearchOrdersRequest(**request_fields), metadata=auth(token(1, "support")))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_only_operators_search(console, token):
    for cred in (auth(token(1)), auth(token(0, "service"))):
        with pytest.raises(grpc.RpcError) as exc:
            console.SearchOrders(pb.SearchOrdersRequest(), metadata=cred)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
