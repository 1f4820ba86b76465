"""Issue 17 §2: past its in-flight budget the gateway refuses at once (503 + Retry-After
in the family's envelope) instead of queueing, and payment-provider notifications and
merchant charges have a budget of their own, so they are never refused before reads.

The calls are held in flight for real: the test holds SQLite's writer lock, so order
creations wait for their group commit."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from server.platform.envoy import Envoy
from tests.conftest import free_port

ORDER = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}


@pytest.fixture
def small_gateway(grpc_server, tmp_path):
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path, log_path=tmp_path / "envoy.log",
                  max_requests=2)
    envoy.start()
    envoy.wait_healthy(1)
    yield f"http://127.0.0.1:{envoy.http_port}"
    envoy.stop()


def test_past_the_budget_reads_are_refused_fast_and_notifications_still_pass(app, small_gateway, token):
    if app.engine.dialect.name != "sqlite":
        pytest.skip("holds SQLite's writer lock to keep calls in flight")
    user = httpx.Client(base_url=small_gateway, headers={"Authorization": f"Bearer {token(5)}"}, timeout=30)
    order = user.post("/api/v2/vip/orders", json=ORDER).json()
    results: list[int] = []
    with app.uow_factory() as uow:  # BEGIN IMMEDIATE: every write now waits for this
        uow.session.connection()
        blocked = [threading.Thread(target=lambda: results.append(user.post("/api/v2/vip/orders", json=ORDER)
                                                                  .status_code)) for _ in range(2)]
        for t in blocked:
            t.start()
        time.sleep(1.0)  # both creations are in flight, waiting for the lock: the budget is full
        started = time.monotonic()
        refused = user.get(f"/api/v2/vip/orders/{order['id']}")
        took = time.monotonic() - started
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert set(refused.json()) == {"message", "errors"}  # 001's envelope
        assert took < 0.5
        # 002: a gateway refusal keeps its HTTP status (as 413 does), in 002's body.
        shed_002 = user.get("/api/recharge")
        assert shed_002.status_code == 503 and shed_002.headers["retry-after"] == "1"
        assert (shed_002.json()["success"], shed_002.json()["code"]) == (False, 503)
        # A provider's notification is admitted (HIGH priority) and waits for the lock like the orders.
        note = app.sandbox.notification_for(order["trade_no"], order["pay_amount"], "PAID")
        notified: list[int] = []
        t = threading.Thread(target=lambda: notified.append(httpx.post(
            f"{small_gateway}/api/v2/vip/orders/{order['id']}/sandbox-callback", content=note, timeout=30,
            headers={"content-type": "application/x-www-form-urlencoded"}).status_code))
        t.start()
        time.sleep(0.5)
        assert notified == []  # not refused: in flight
    for thread in (*blocked, t):
        thread.join(30)
    assert results == [201, 201] and notified == [200]
    assert user.get(f"/api/v2/vip/orders/{order['id']}").json()["pay_status"] == 1
