"""Issue 17 §1: a PostgreSQL outage under a running server (a throwaway cluster, stopped
and started again). During it: UNAVAILABLE in each family's envelope with Retry-After,
providers' notifications refused with a non-2xx (they retry), the catalogs served from
memory, health NOT_SERVING but alive, one log line; after it: everything works again,
without a restart, and nothing fails."""

from __future__ import annotations

import logging
import time
import traceback
from functools import partial

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import build_app, build_grpc_server
from server.membership.catalog import demo_catalog
from server.platform.auth import issue_token
from server.platform.database import make_engine
from server.platform.envoy import Envoy
from server.platform.migrate import upgrade
from server.platform.settings import Settings
from server.recharge.cli import seed as seed_recharge
from tests.conftest import TEST_SECRET, TEST_SERVICE_SECRET, _Loop, free_port
from tests.pg_cluster import PgCluster


@pytest.fixture
def stack(tmp_path):
    try:
        cluster = PgCluster()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    cluster.start()
    cluster.wait_ready()
    loop = server = envoy = app = None
    try:
        settings = Settings(database_url=cluster.url, jwt_secret=TEST_SECRET, service_jwt_secret=TEST_SERVICE_SECRET,
                            sandbox_secret=TEST_SECRET, catalog_refresh_seconds=0, readiness_interval_seconds=0.5,
                            public_base_url="http://gateway.invalid", _env_file=None)
        upgrade(settings.sqlalchemy_url)
        app = build_app(settings, make_engine(settings.sqlalchemy_url))
        app.save_catalog(demo_catalog())
        seed_recharge(app)
        loop = _Loop()

        async def start():
            s = build_grpc_server(app, "127.0.0.1", 0)
            await s.start()
            return s

        server = loop.run(start())
        envoy = Envoy(free_port(), free_port(), server.port, tmp_path / "envoy", log_path=tmp_path / "envoy.log")
        envoy.start()
        envoy.wait_healthy(1)
        yield cluster, app, server, f"http://127.0.0.1:{envoy.http_port}"
    finally:
        if envoy:
            envoy.stop()
        if server:
            loop.run(server.stop(0))
        if loop:
            loop.close()
        if app:
            app.engine.dispose()
        cluster.destroy()


def health(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_a_database_outage_is_answered_503_and_survived_without_restart(stack, caplog):
    cluster, app, server, url = stack
    token = partial(issue_token, TEST_SECRET, app.settings.jwt_issuer, app.settings.jwt_audience)
    caplog.set_level(logging.INFO)
    user = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token(7)}"}, timeout=20)
    anonymous = httpx.Client(base_url=url, timeout=20)
    body = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
    order = user.post("/api/v2/vip/orders", json=body)
    assert order.status_code == 201, order.text
    order = order.json()
    # Reads keep a connection per read thread: fill several, which the outage then breaks.
    # (the one-row reads: GET /api/v2/vip/orders/{id}).
    assert {user.get(f"/api/v2/vip/orders/{order['id']}").status_code for _ in range(40)} == {200}
    plans = anonymous.get("/api/recharge").json()
    configs = anonymous.get("/api/v2/vip/configs").json()
    assert health(server.port, "") == health_pb2.HealthCheckResponse.SERVING

    cluster.stop()
    try:
        # 001: HTTP 503 + Retry-After, its envelope.
        refused = user.post("/api/v2/vip/orders", json=body)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert refused.json() == {"message": "The service is temporarily unavailable; retry later.", "errors": {}}
        listed = user.get("/api/v2/vip/orders")
        assert listed.status_code == 503 and listed.headers["retry-after"] == "5"
        # 002: HTTP 200 and the code in the body (that family's convention), Retry-After too.
        recharge = user.post("/api/recharge/order", json={"id": 1, "price": "28", "payModeId": 2})
        assert recharge.status_code == 200 and recharge.headers["retry-after"] == "5"
        assert (recharge.json()["success"], recharge.json()["code"]) == (False, 503)
        # A provider's notification: non-2xx, so the provider sends it again.
        note = app.sandbox.notification_for(order["trade_no"], order["pay_amount"], "PAID")
        notified = anonymous.post(f"/api/v2/vip/orders/{order['id']}/sandbox-callback", content=note,
                                  headers={"content-type": "application/x-www-form-urlencoded"})
        assert notified.status_code == 503
        # The catalogs come from memory.
        assert anonymous.get("/api/v2/vip/configs").json() == configs
        assert anonymous.get("/api/recharge").json() == plans
        # Alive, not ready.
        deadline = time.monotonic() + 10
        while health(server.port, "") != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline, "readiness did not notice the outage"
            time.sleep(0.2)
        assert health(server.port, "vipay.liveness") == health_pb2.HealthCheckResponse.SERVING
    finally:
        cluster.start()
        cluster.wait_ready()

    # Back without a restart: the first try may still meet the outage, then everything works.
    deadline = time.monotonic() + 20
    while (created := user.post("/api/v2/vip/orders", json=body)).status_code != 201:
        assert time.monotonic() < deadline, created.text
        time.sleep(0.5)
    failures = [r.status_code for path in ("/api/v2/vip/orders", f"/api/v2/vip/orders/{order['id']}")
                for r in (user.get(path) for _ in range(20)) if r.status_code != 200]
    assert failures == []
    assert anonymous.post(f"/api/v2/vip/orders/{order['id']}/sandbox-callback", content=note,
                          headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    deadline = time.monotonic() + 10
    while health(server.port, "") != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "readiness did not notice the return"
        time.sleep(0.2)

    went = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    came = [r for r in caplog.records if r.getMessage().startswith("database reachable again")]
    assert (len(went), len(came)) == (1, 1)
    assert not [r for r in caplog.records if r.exc_info], [traceback.format_exception(*r.exc_info)[-1]
                                                           for r in caplog.records if r.exc_info]
