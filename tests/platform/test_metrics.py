"""The Prometheus endpoint: after a few real calls through the gRPC server, a scrape
shows the RPC counts and latencies by method and outcome, the payment notifications
by channel and result, the orders created and paid, and the database gauges."""

from __future__ import annotations

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.app import start_metrics
from tests.conftest import auth

SVC = "/vipay.membership.v1.MembershipService/"


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def delta(after, before, name, **labels) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_a_scrape_after_a_few_calls_shows_them(app, channel, token):
    endpoint = start_metrics(app, port=0)
    try:
        stub = membership_pb2_grpc.MembershipServiceStub(channel)
        md = auth(token(4101))
        before = scrape(endpoint.port)

        order = stub.CreateVipOrder(pb.CreateVipOrderRequest(timezone="Asia/Shanghai", duration=3, level="middle",
                                                             pay_method="Alipay_AopApp"), metadata=md)
        assert stub.CheckVipOrder(pb.CheckVipOrderRequest(order_id=order.id), metadata=md).status is False
        with pytest.raises(grpc.RpcError):
            stub.GetVipOrder(pb.GetVipOrderRequest(order=order.id + 10**6), metadata=md)
        paid = pb.HandlePaymentNotificationRequest(order=order.id, callback="sandbox-callback")
        paid.http_body.content_type = "application/x-www-form-urlencoded"
        paid.http_body.data = app.sandbox.notification_for(order.trade_no, order.pay_amount)
        assert stub.HandlePaymentNotification(paid).data == b"success"
        forged = pb.HandlePaymentNotificationRequest(order=order.id, callback="sandbox-callback")
        forged.http_body.content_type = "application/x-www-form-urlencoded"
        forged.http_body.data = b"trade_no=x&amount=1&sign=forged"
        stub.HandlePaymentNotification(forged)

        after = scrape(endpoint.port)
    finally:
        endpoint.stop()

    assert delta(after, before, "vipay_rpc_requests_total", method=SVC + "CreateVipOrder", outcome="OK") == 1
    assert delta(after, before, "vipay_rpc_requests_total", method=SVC + "CheckVipOrder", outcome="OK") == 1
    assert delta(after, before, "vipay_rpc_requests_total", method=SVC + "GetVipOrder",
                 outcome="ORDER_NOT_FOUND") == 1
    assert delta(after, before, "vipay_rpc_duration_seconds_count", method=SVC + "CheckVipOrder", outcome="OK") == 1
    assert delta(after, before, "vipay_rpc_duration_seconds_bucket", method=SVC + "CheckVipOrder", outcome="OK",
                 le="+Inf") == 1
    assert delta(after, before, "vipay_payment_notifications_total", channel="sandbox", result="acked") == 1
    assert delta(after, before, "vipay_payment_notifications_total", channel="sandbox", result="rejected") == 1
    assert delta(after, before, "vipay_orders_created_total", area="membership") == 1
    assert delta(after, before, "vipay_orders_paid_total", area="membership") == 1
    assert ("vipay_merchant_callbacks_pending", frozenset()) in after
    assert after[("vipay_merchant_callbacks_oldest_pending_seconds", frozenset())] >= 0
    assert after[("vipay_settlement_lag_seconds", frozenset({("book", "vip_orders")}))] >= 0


def test_the_endpoint_listens_on_loopback_only(app):
    endpoint = start_metrics(app, port=0)
    try:
        assert endpoint._httpd.server_address[0] == "127.0.0.1"
    finally:
        endpoint.stop()
