"""MembershipService over gRPC (in-process server on port 0): rich errors, paging,
internal and operator RPCs, health and reflection, and exactly-once fulfilment."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy import func, select
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.membership.tables import MembershipGrantRow, MembershipRow, VipOrderRow
from tests.conftest import auth


@pytest.fixture
def stub(channel):
    return membership_pb2_grpc.MembershipServiceStub(channel)


def new_order(stub, tok, **overrides):
    fields = dict(timezone="Asia/Shanghai", duration=3, level="middle", pay_method="Alipay_AopApp")
    fields.update(overrides)
    return stub.CreateVipOrder(pb.CreateVipOrderRequest(**fields), metadata=auth(tok))


def details(err: grpc.RpcError):
    status = rpc_status.from_call(err)
    infos, bad = [], []
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            infos.append(info)
        elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            bad.append(br)
    return infos, bad


def test_invalid_argument_carries_one_error_info_and_all_violations(stub, token):
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateVipOrder(pb.CreateVipOrderRequest(duration=7, level="x"), metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    infos, bad = details(exc.value)
    assert [i.reason for i in infos] == ["INVALID_ARGUMENT"] and infos[0].domain
    assert {v.field for v in bad[0].field_violations} == {"timezone", "duration", "level", "pay_method"}


def test_not_found_and_unauthenticated_codes(stub, token):
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetVipOrder(pb.GetVipOrderRequest(order=424242), metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(exc.value)[0][0].reason == "ORDER_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListVipOrders(pb.ListVipOrdersRequest())
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_page_tokens_walk_every_order_once(stub, token):
    tok = token(3)
    made = {new_order(stub, tok).id for _ in range(5)}
    seen, page_token = [], ""
    while True:
        page = stub.ListVipOrders(pb.ListVipOrdersRequest(page_size=2, page_token=page_token), metadata=auth(tok))
        seen += [o.id for o in page.vip_orders]
        page_token = page.next_page_token
        if not page_token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5


def test_request_id_makes_create_idempotent(stub, token):
    tok = token(4)
    first = new_order(stub, tok, request_id="r-1")
    again = new_order(stub, tok, request_id="r-1")
    other = new_order(stub, tok, request_id="r-2")
    assert first.id == again.id != other.id


def test_membership_status_is_internal_only(stub, token, app):
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetMembershipStatus(pb.GetMembershipStatusRequest(user_id=1), metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    order = new_order(stub, token(9))
    settle(app, order.id)
    status = stub.GetMembershipStatus(pb.GetMembershipStatusRequest(user_id=9), metadata=auth(token(0, "service")))
    assert status.is_vip and status.current_level == "middle" and status.levels[0].active
    # gRPC-only answers use idiomatic types: int64 id, Timestamp expiry (about three months ahead).
    assert status.user_id == 9 and status.levels[0].level == "middle"
    days = (status.levels[0].expire_time.ToDatetime(timezone.utc) - datetime.now(timezone.utc)).days
    assert 85 <= days <= 93
    big = stub.GetMembershipStatus(pb.GetMembershipStatusRequest(user_id=2**40), metadata=auth(token(0, "service")))
    assert big.user_id == 2**40 and not big.is_vip and not big.levels


def test_operator_updates_catalog_and_every_reader_sees_it(stub, token):
    configs = stub.GetVipConfigs(pb.GetVipConfigsRequest())
    configs.config.middle.setting[0].enable = True
    configs.config.middle.setting[0].price = 17.5
    update = pb.UpdateVipCatalogRequest(switch=True, exchange=2, config=configs.config)
    with pytest.raises(grpc.RpcError) as exc:
        stub.UpdateVipCatalog(update, metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    version = stub.UpdateVipCatalog(update, metadata=auth(token(0, "admin"))).version
    assert version >= 2
    after = stub.GetVipConfigs(pb.GetVipConfigsRequest())
    assert after.exchange == 2 and after.config.middle.setting[0].price == 17.5
    order = new_order(stub, token(1), duration=1)
    assert order.total_amount == 1750


def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service="vipay.membership.v1.MembershipService")).status \
        == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "vipay.membership.v1.MembershipService" in names


def settle(app, order_id):
    with app.uow_factory() as uow:
        order = uow.session.get(VipOrderRow, order_id)
    body = app.sandbox.notification_for(order.trade_no, order.pay_amount)
    reply = app.memberships.orders.handle_notification(order_id, "sandbox", body, "application/x-www-form-urlencoded", {})
    assert reply.body == b"success"


def test_fifty_concurrent_duplicate_notifications_grant_once(stub, token, app):
    """The money test: one paid order, 50 simultaneous copies of its notification
    through the gRPC server -> one payment, one grant, one 3-month extension."""
    order = new_order(stub, token(77))
    body = app.sandbox.notification_for(order.trade_no, order.pay_amount)
    request = pb.HandlePaymentNotificationRequest(order=order.id, callback="sandbox-callback")
    request.http_body.content_type = "application/x-www-form-urlencoded"
    request.http_body.data = body
    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(lambda _: stub.HandlePaymentNotification(request), range(50)))
    assert {r.data for r in replies} == {b"success"}
    with app.uow_factory() as uow:
        grants = uow.session.scalar(select(func.count()).select_from(MembershipGrantRow)
                                    .where(MembershipGrantRow.user_id == 77))
        membership = uow.session.scalars(select(MembershipRow).where(MembershipRow.user_id == 77)).one()
        paid = uow.session.get(VipOrderRow, order.id)
    assert grants == 1
    assert paid.pay_status == 1
    months = (membership.expires_at.year - paid.paid_at.year) * 12 + membership.expires_at.month - paid.paid_at.month
    assert months == 3


def test_concurrent_different_orders_for_one_user_all_stack(stub, token, app):
    tok = token(78)
    orders = [new_order(stub, tok, duration=3) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda o: settle(app, o.id), orders))
    with app.uow_factory() as uow:
        membership = uow.session.scalars(select(MembershipRow).where(MembershipRow.user_id == 78)).one()
        first_paid = min(uow.session.get(VipOrderRow, o.id).paid_at for o in orders)
    months = (membership.expires_at.year - first_paid.year) * 12 + membership.expires_at.month - first_paid.month
    assert months == 12
