"""Issue 17 §3: retries run at their configured backoff, on a running dispatcher (its
loop, not rounds driven by hand). A single process was seen retrying 25-82 s after a
15 s backoff; here the backoffs are short and each retry must arrive at its time within
about one dispatch interval."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from clients.merchant_client import MerchantClient
from server.app import build_app
from server.membership.catalog import demo_catalog
from server.merchant.tables import MerchantCallbackAttemptRow
from server.platform.database import make_engine
from server.platform.envoy import Envoy
from server.platform.migrate import upgrade
from server.platform.settings import Settings
from tests.conftest import TEST_SECRET, TEST_SERVICE_SECRET, _Loop, _make_server, free_port, local_resolver
from tests.pg_cluster import PgCluster

from .conftest import ACCOUNT, make_merchant, scheduled, serving_receiver
from .test_callbacks import callback_rows, wait_until

BACKOFF = (2.0, 4.0, 2.0)
INTERVAL = 1.0  # the dispatcher's longest pause between claims (OPENAPI_DISPATCH_INTERVAL_SECONDS default)
SLACK = INTERVAL + 1.0  # one interval, plus a busy CI host
BACKLOG = 200
LEASE = 30.0


def assert_on_schedule(arrived: list[float]) -> None:
    gaps = [round(b - a, 2) for a, b in zip(arrived, arrived[1:])]
    assert len(gaps) == len(BACKOFF)
    for gap, backoff in zip(gaps, BACKOFF):
        assert backoff - 0.5 <= gap <= backoff + SLACK, f"attempts {gaps} s apart, backoff {BACKOFF}"


def run_dispatcher(app, dispatch, name: str):
    loop = _Loop()
    dispatcher = scheduled(app, dispatch).dispatcher(name)
    loop.run(dispatcher.start())
    return loop, dispatcher


def stop(loop, dispatcher):
    loop.run(dispatcher.stop())
    loop.close()


def test_a_failing_receiver_is_retried_at_each_backoff(app, merchant, client_for, receiver, dispatchers_paused):
    receiver.script = [(500, "down")] * len(BACKOFF)  # then SUCCESS
    client_for(merchant).vip_charge("87103", ACCOUNT, "late-1", callback_url=receiver.url)
    dispatch = replace(app.openapi.dispatch, backoff=BACKOFF, interval=INTERVAL)
    loop, dispatcher = run_dispatcher(app, dispatch, "on-time")
    try:
        receiver.wait_for(len(BACKOFF) + 1, timeout=sum(BACKOFF) + 30)
        wait_until(lambda: callback_rows(app)[0].state == "delivered")
    finally:
        stop(loop, dispatcher)
    assert_on_schedule(receiver.arrived)


def test_retries_stay_on_time_while_another_merchants_backlog_drains(app, merchant, client_for, receiver,
                                                                     dispatchers_paused):
    """One merchant's failing receiver is retried on time while the same process drains
    another merchant's backlog to a fast receiver."""
    busy = make_merchant(app, "501", ["501"], balance_fen=1_000_000)
    busy_client = client_for(busy)
    for i in range(BACKLOG):
        busy_client.vip_charge("87103", ACCOUNT, f"backlog-{i}", callback_url=receiver.url)
    receiver.delay = 0.25  # 16 in flight / 0.25 s: the backlog lasts through the failing one's retries
    with serving_receiver() as failing:
        failing.script = [(500, "down")] * len(BACKOFF)
        client_for(merchant).vip_charge("87103", ACCOUNT, "late-2", callback_url=failing.url)
        dispatch = replace(app.openapi.dispatch, backoff=BACKOFF, interval=INTERVAL)
        loop, dispatcher = run_dispatcher(app, dispatch, "on-time-backlog")
        try:
            failing.wait_for(len(BACKOFF) + 1, timeout=sum(BACKOFF) + 30)
            receiver.wait_for(BACKLOG, timeout=60)
            wait_until(lambda: all(row.state == "delivered" for row in callback_rows(app)), timeout=30)
        finally:
            stop(loop, dispatcher)
    assert_on_schedule(failing.arrived)


@pytest.fixture
def pg_stack(tmp_path, openapi_settings):
    """A server and Envoy on a throwaway PostgreSQL cluster (tests/pg_cluster.py), which
    the test stops and starts again; the server's own dispatcher is off."""
    try:
        cluster = PgCluster()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    cluster.start()
    cluster.wait_ready()
    loop = server = envoy = app = None
    try:
        settings = Settings(database_url=cluster.url, jwt_secret=TEST_SECRET, service_jwt_secret=TEST_SERVICE_SECRET,
                            sandbox_secret=TEST_SECRET, public_base_url="http://gateway.invalid", _env_file=None)
        upgrade(settings.sqlalchemy_url)
        app = build_app(settings, make_engine(settings.sqlalchemy_url), announce_channels=False,
                        openapi_settings=openapi_settings.model_copy(update={"dispatcher_enabled": False}),
                        callback_resolver=local_resolver)
        app.save_catalog(demo_catalog())
        loop = _Loop()
        server = loop.run(_make_server(app))
        envoy = Envoy(free_port(), free_port(), server.port, tmp_path / "envoy", log_path=tmp_path / "envoy.log")
        envoy.start()
        envoy.wait_healthy(1)
        yield cluster, app, f"http://127.0.0.1:{envoy.http_port}"
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


def test_an_attempt_that_ended_during_a_database_outage_is_retried_at_its_backoff(pg_stack, database_url):
    """The attempt fails while the database is down, so the round that records it fails
    too: its outcome must be recorded by a later round (then the retry follows the
    backoff), not dropped (then the report waited for its lease to end)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("stops a throwaway PostgreSQL cluster: once, in the PostgreSQL run")
    cluster, app, gateway = pg_stack
    m = make_merchant(app, "166", ["166"])
    app.openapi.registry.link_account(ACCOUNT, 42, "15012616978")
    outage = 2.0
    with serving_receiver() as receiver:
        def down_then_fail():  # the first attempt: the database goes away before the answer
            cluster.stop("immediate")
            threading.Timer(outage, cluster.start).start()
            return 500, "down"

        receiver.script = [down_then_fail]
        client = MerchantClient(gateway, m.merchant_id, m.business_id, private_key_pem=m.private_key)
        assert client.vip_charge("87103", ACCOUNT, "outage-1", callback_url=receiver.url)["status"] == 200
        client.http.close()
        dispatch = replace(app.openapi.dispatch, backoff=(2.0,), interval=0.5, lease=LEASE)
        loop, dispatcher = run_dispatcher(app, dispatch, "outage")
        try:
            receiver.wait_for(2, timeout=LEASE + 15)
        finally:
            stop(loop, dispatcher)
    late = receiver.arrived[1] - receiver.arrived[0]
    # Back after `outage` (+ its start-up), then recorded within an interval, then the backoff.
    assert late < outage + 2.0 + SLACK + 3.0 < LEASE, f"retried {late:.1f} s after the failed attempt"
    with app.uow_factory() as uow:
        outcomes = [row.outcome for row in uow.session.scalars(
            select(MerchantCallbackAttemptRow).order_by(MerchantCallbackAttemptRow.attempt))]
    assert outcomes == ["HTTP 500: down", "SUCCESS"]  # the first attempt's outcome was written too
