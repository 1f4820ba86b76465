"""Issue 17 §2, the internal door: the server bounds its own calls in flight
(platform/admission.py), so gRPC callers that Envoy does not shed are refused at once
(UNAVAILABLE, OVERLOADED, retry after 1 s) instead of queueing without bound; payment
notifications have a reserve beyond the reads' budget; health is never refused; through
Envoy a refusal is the family's envelope with Retry-After.

The calls are held in flight for real: the test holds the order table's writes (SQLite's
writer lock, PostgreSQL's table lock), so order creations wait for their commit."""

from __future__ import annotations

import contextlib
import threading
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.app import build_app
from server.platform.envoy import Envoy
from tests.conftest import _Loop, _make_server, auth, free_port, local_resolver
from tests.membership.test_grpc import details

ORDER = dict(timezone="Asia/Shanghai", duration=3, level="middle", pay_method="Alipay_AopApp")
LIMIT, RESERVE = 2, 1


@pytest.fixture
def small_server(app, settings, openapi_settings, tmp_path):
    """A server of its own taking LIMIT calls (+ RESERVE for notifications), behind an
    Envoy whose own budget is larger (so the server is the one refusing)."""
    own = build_app(settings.model_copy(update={"grpc_max_in_flight": LIMIT, "grpc_priority_reserve": RESERVE}),
                    app.engine, announce_channels=False,
                    openapi_settings=openapi_settings.model_copy(update={"dispatcher_enabled": False}),
                    callback_resolver=local_resolver)
    loop = _Loop()
    server = loop.run(_make_server(own))
    envoy = Envoy(free_port(), free_port(), server.port, tmp_path, log_path=tmp_path / "envoy.log")
    envoy.start()
    envoy.wait_healthy(1)
    try:
        yield server, f"http://127.0.0.1:{envoy.http_port}"
    finally:
        envoy.stop()
        loop.run(server.stop(0))
        loop.close()


@contextlib.contextmanager
def writes_held(app):
    """Order writes wait until the block ends; reads go on."""
    with app.uow_factory() as uow:
        if app.engine.dialect.name == "sqlite":
            uow.session.connection()  # BEGIN IMMEDIATE: the writer lock
        else:
            uow.session.execute(text("LOCK TABLE vip_orders IN EXCLUSIVE MODE"))
        yield


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_past_its_limit_the_server_refuses_at_once_but_not_notifications_or_health(app, small_server, token):
    server, gateway = small_server
    tok = token(5)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = membership_pb2_grpc.MembershipServiceStub(channel)
        order = stub.CreateVipOrder(pb.CreateVipOrderRequest(**ORDER), metadata=auth(tok))
        created, notified = [], []
        with writes_held(app):
            creations = [threading.Thread(target=lambda: created.append(
                stub.CreateVipOrder(pb.CreateVipOrderRequest(**ORDER), metadata=auth(tok), timeout=30)))
                for _ in range(LIMIT)]
            for t in creations:
                t.start()
            wait_for(lambda: server.admission.in_flight == LIMIT)  # both wait for the writes: the budget is full

            # A read over the internal door: refused at once, with when to come back.
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetVipOrder(pb.GetVipOrderRequest(order=order.id), metadata=auth(tok), timeout=10)
            took = time.monotonic() - started
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            info = details(refused.value)[0][0]
            assert info.reason == "OVERLOADED" and info.metadata["retry_after_seconds"] == "1"
            assert took < 0.5

            # Health (Envoy's probe, the operators') is never refused.
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING

            # Through Envoy (whose own budget is not full): the family's envelope + Retry-After.
            user = httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {tok}"}, timeout=10)
            shed_001 = user.get(f"/api/v2/vip/orders/{order.id}")
            assert shed_001.status_code == 503 and shed_001.headers["retry-after"] == "1"
            assert set(shed_001.json()) == {"message", "errors"}
            shed_002 = user.get("/api/recharge")  # 002 answers HTTP 200 with its code (docs/operations.md)
            assert shed_002.headers["retry-after"] == "1"
            assert (shed_002.json()["success"], shed_002.json()["code"]) == (False, 503)

            # A provider's notification is admitted into the reserve and waits for the writes.
            note = app.sandbox.notification_for(order.trade_no, order.pay_amount, "PAID")
            notify = threading.Thread(target=lambda: notified.append(httpx.post(
                f"{gateway}/api/v2/vip/orders/{order.id}/sandbox-callback", content=note, timeout=30,
                headers={"content-type": "application/x-www-form-urlencoded"}).status_code))
            notify.start()
            wait_for(lambda: server.admission.in_flight == LIMIT + RESERVE)
            assert notified == []  # in flight, not refused
            # The reserve is bounded too: one more is refused, non-2xx, so the provider sends it again.
            again = httpx.post(f"{gateway}/api/v2/vip/orders/{order.id}/sandbox-callback", content=note, timeout=10,
                               headers={"content-type": "application/x-www-form-urlencoded"})
            assert again.status_code == 503 and again.headers["retry-after"] == "1"
        for t in (*creations, notify):
            t.join(30)
        assert len(created) == LIMIT and notified == [200]
        assert server.admission.in_flight == 0
        # Admitted again once the calls ended.
        assert stub.GetVipOrder(pb.GetVipOrderRequest(order=order.id), metadata=auth(tok)).id == order.id
