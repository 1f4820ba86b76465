"""Status callbacks from the outbox to a local HTTP receiver: signed and verified,
retried on the (shortened) schedule, undelivered at the end, surviving a
dispatcher restart, never sent twice by competing dispatchers, re-sent by an operator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
import json
import time

import httpx
import pytest
from sqlalchemy import func, select

from clients.merchant_client import verify_callback
from server.merchant.callbacks import CallbackDispatcher
from server.merchant.tables import MerchantCallbackAttemptRow, MerchantCallbackRow
from server.platform.errors import DomainError

from .conftest import ACCOUNT, callback_json, make_merchant, scheduled


def callback_rows(app) -> list[MerchantCallbackRow]:
    with app.uow_factory() as uow:
        return list(uow.session.scalars(select(MerchantCallbackRow).order_by(MerchantCallbackRow.id)))


def attempt_count(app) -> int:
    with app.uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(MerchantCallbackAttemptRow))


def wait_until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def run_rounds(dispatcher, rounds: int, pause: float = 0.0) -> None:
    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(rounds):
                await dispatcher.run_once(client)
                await asyncio.sleep(pause)

    asyncio.run(go())


def test_final_state_is_pushed_signed_and_verifiable(app, merchant, client_for, receiver, platform_key,
                                                     only_server_dispatcher):
    client = client_for(merchant)
    created = client.vip_charge("87103", ACCOUNT, "cb-1", callback_url=receiver.url)["data"]
    (headers, body), = receiver.wait_for(1)
    assert client.verify_callback(platform_key[1], headers, body)
    assert not client.verify_callback(platform_key[1], headers, body.replace(b"success", b"failed"))
    report = callback_json((headers, body))
    assert report["orderCode"] == created["orderCode"] and report["bizCode"] == "cb-1"
    assert (report["state"], report["status"], report["settlementPrice"]) == ("success", 200, 4.51)
    assert headers["signType"] == "SHA256-RSA" and headers["businessId"] == "166"
    wait_until(lambda: callback_rows(app)[0].state == "delivered")
    assert client.query_order(biz_code="cb-1")["data"]["callbackState"] == "delivered"


def test_failed_order_reports_failed_to_the_merchant_default_url(app, client_for, receiver, platform_key,
                                                                only_server_dispatcher):
    m = make_merchant(app, "301", ["301"], callback_url=receiver.url)
    client_for(m).vip_charge("87103", "unknown-account", "cb-f")
    (headers, body), = receiver.wait_for(1)
    assert verify_callback(platform_key[1], headers, body, merchant_id="301")
    assert callback_json((headers, body))["state"] == "failed"


def test_receiver_failing_then_recovering_is_retried(app, merchant, client_for, receiver, short_schedule,
                                                     dispatchers_paused):
    receiver.script = [(500, "oops"), (200, "FAIL")]  # then SUCCESS
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-r", callback_url=receiver.url)
    dispatcher = scheduled(app, short_schedule).dispatcher("test-a")
    run_rounds(dispatcher, 12, pause=0.1)
    received = receiver.wait_for(3)
    assert len(received) == 3 and len({b for _, b in received}) == 1  # the same report each time
    assert len({h["nonce"] for h, _ in received}) == 3  # freshly signed each time
    row, = callback_rows(app)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, None)


def test_undelivered_after_the_last_retry(app, merchant, client_for, receiver, short_schedule, dispatchers_paused):
    receiver.script = [(503, "busy")] * 10
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-u", callback_url=receiver.url)
    run_rounds(scheduled(app, short_schedule).dispatcher("test-u"), 12, pause=0.1)
    row, = callback_rows(app)
    assert (row.state, row.attempts) == ("undelivered", 1 + len(short_schedule.backoff))
    assert row.last_error.startswith("HTTP 503")
    assert len(receiver.received) == 4
    # an operator re-sends it once the merchant is fixed
    app.openapi.registry.resend(row.id)
    receiver.script = []
    run_rounds(scheduled(app, short_schedule).dispatcher("test-u2"), 1)
    assert callback_rows(app)[0].state == "delivered" and len(receiver.received) == 5
    assert [c["state"] for c in app.openapi.registry.callbacks()] == ["delivered"]


def test_backoff_follows_the_schedule(app, merchant, client_for, receiver, dispatchers_paused):
    receiver.script = [(500, "no")]
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-s", callback_url=receiver.url)
    run_rounds(app.openapi.dispatcher("test-s"), 1)
    row, = callback_rows(app)
    delay = (row.next_attempt_at - row.updated_at).total_seconds()
    assert row.state == "pending" and row.attempts == 1 and abs(delay - 15) < 1  # the first of 15s, 30s, 3m ...
    run_rounds(app.openapi.dispatcher("test-s2"), 1)
    assert len(receiver.received) == 1  # not due yet


def test_dispatcher_restarted_mid_schedule_still_delivers(app, merchant, client_for, receiver, short_schedule,
                                                         dispatchers_paused):
    receiver.script = [(500, "down")]
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-x", callback_url=receiver.url)
    first = scheduled(app, short_schedule).dispatcher("before-restart")
    run_rounds(first, 1)
    assert callback_rows(app)[0].attempts == 1
    del first  # the process is gone; the schedule is in the database
    time.sleep(0.3)
    run_rounds(scheduled(app, short_schedule).dispatcher("after-restart"), 1)
    row, = callback_rows(app)
    assert (row.state, row.attempts) == ("delivered", 2)
    assert len(receiver.received) == 2


def test_attempt_of_a_dispatcher_that_died_mid_send_is_retried_after_its_lease(
        app, merchant, client_for, receiver, short_schedule, dispatchers_paused):
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-d", callback_url=receiver.url)
    crashed = scheduled(app, short_schedule).dispatcher("crashed")
    assert len(crashed.claim()) == 1  # claimed, then died before sending
    survivor = scheduled(app, short_schedule).dispatcher("survivor")
    run_rounds(survivor, 1)
    assert receiver.received == []  # still leased to the crashed one
    time.sleep(short_schedule.lease + 0.1)
    run_rounds(survivor, 1)
    row, = callback_rows(app)
    assert (row.state, row.attempts, len(receiver.received)) == ("delivered", 2, 1)


def test_competing_dispatchers_never_send_an_attempt_twice(app, client_for, receiver, dispatchers_paused):
    m = make_merchant(app, "401", ["401"], balance_fen=100_000, callback_url=receiver.url)
    app.openapi.registry.link_account(ACCOUNT, 42)
    client = client_for(m)
    codes = {client.vip_charge("87103", ACCOUNT, f"cc-{i}")["data"]["orderCode"] for i in range(24)}
    receiver.delay = 0.05
    dispatchers = [app.openapi.dispatcher(f"replica-{i}") for i in range(4)]

    async def compete():
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(6):
                await asyncio.gather(*(d.run_once(http) for d in dispatchers))

    asyncio.run(compete())
    sent = [callback_json(entry)["orderCode"] for entry in receiver.received]
    assert sorted(sent) == sorted(codes)  # every report exactly once
    assert attempt_count(app) == 24
    assert all(r.state == "delivered" and r.attempts == 1 for r in callback_rows(app))


def test_grpc_server_restarted_mid_schedule_still_delivers(app, merchant, client_for, receiver, short_schedule,
                                                          dispatchers_paused, platform_key):
    """The dispatcher the gRPC server process starts: stop that server after a failed
    attempt, start another one, and the report still arrives (the schedule is in the database)."""
    from tests.conftest import _Loop, _make_server

    receiver.script = [(500, "down")]
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-srv", callback_url=receiver.url)
    loop = _Loop()
    try:
        first = loop.run(_make_server(replace(app, openapi=scheduled(app, short_schedule))))
        wait_until(lambda: callback_rows(app)[0].attempts == 1 and callback_rows(app)[0].last_error)
        loop.run(first.stop(0))
        assert callback_rows(app)[0].state == "pending"
        second = loop.run(_make_server(replace(app, openapi=scheduled(app, short_schedule))))
        try:
            wait_until(lambda: callback_rows(app)[0].state == "delivered")
        finally:
            loop.run(second.stop(0))
    finally:
        loop.close()
    row, = callback_rows(app)
    assert row.attempts == 2 and len(receiver.received) == 2
    assert all(verify_callback(platform_key[1], h, b, merchant_id=merchant.merchant_id) for h, b in receiver.received)


def test_unreadable_platform_key_spends_no_attempt(app, merchant, client_for, receiver, dispatchers_paused):
    """A missing key is our misconfiguration: the reports wait in the outbox instead of
    burning through the merchant's retry schedule."""
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-k", callback_url=receiver.url)

    def missing():
        raise FileNotFoundError("var/openapi_platform_key.pem")

    keyless = CallbackDispatcher(app.uow_factory, missing, app.openapi.dispatch, name="keyless")
    run_rounds(keyless, 3)
    row, = callback_rows(app)
    assert (row.state, row.attempts, attempt_count(app), receiver.received) == ("pending", 0, 0, [])
    run_rounds(app.openapi.dispatcher("keyed"), 1)  # once the key is readable, it goes out
    assert callback_rows(app)[0].state == "delivered" and len(receiver.received) == 1


def test_operator_callback_urls_must_be_http(app):
    reg = app.openapi.registry
    with pytest.raises(DomainError):
        reg.create("601", "no scheme", ["601"], callback_url="www.example.com/notify")
    reg.create("601", "ok", ["601"], callback_url="https://merchant.example.com/notify")
    with pytest.raises(DomainError):
        reg.set_callback_url("601", "ftp://merchant.example.com/notify")
    reg.set_callback_url("601", None)  # clearing it is fine
    assert reg.list()[0]["callbackUrl"] is None


def test_operator_lists_and_resends_an_undelivered_report_with_the_cli(app, settings, merchant, client_for, receiver,
                                                                       short_schedule, dispatchers_paused):
    from .test_cli_and_grpc import cli

    receiver.script = [(503, "busy")] * 4
    code = client_for(merchant).vip_charge("87103", ACCOUNT, "cb-op", callback_url=receiver.url)["data"]["orderCode"]
    run_rounds(scheduled(app, short_schedule).dispatcher("test-op"), 8, pause=0.1)
    listed = json.loads(cli(settings, "callbacks", "--state", "undelivered").stdout)
    assert [(c["orderCode"], c["state"], c["attempts"]) for c in listed] == [(code, "undelivered", 4)]
    assert cli(settings, "resend", str(listed[0]["id"])).stdout.strip() == f"callback {listed[0]['id']} queued"
    run_rounds(scheduled(app, short_schedule).dispatcher("test-op2"), 1)
    assert json.loads(cli(settings, "callbacks", "--state", "undelivered").stdout) == []
    assert callback_rows(app)[0].state == "delivered" and len(receiver.received) == 5
    assert cli(settings, "resend", "999999", check=False).returncode != 0
