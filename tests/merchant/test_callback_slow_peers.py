"""Slow or endless merchant answers (issue 9 §3): each attempt has a total deadline,
reads at most a few KB, and one slow merchant never delays another's reports; a
report signed for merchant A does not verify as merchant B; expired nonces are
purged without a dispatcher."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from clients.merchant_client import verify_callback
from server.merchant.charges import BALANCE_PATH, MerchantChargeService
from server.merchant.tables import MerchantCallbackRow, MerchantNonceRow
from server.platform.times import naive_now
from tests.conftest import _Loop

from .conftest import ACCOUNT, callback_json, make_merchant, nonce_count, scheduled
from .test_callbacks import callback_rows, run_rounds, wait_until


class Peer:
    """A merchant endpoint on a raw socket: `slowloris` answers a status line and then
    one byte every half second, never finishing; `endless` streams a body that never ends."""

    def __init__(self, mode: str):
        self.mode, self.sent, self.stop = mode, 0, threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/notify"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.recv(65536)
            if self.mode == "slowloris":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self.stop.is_set():
                    conn.sendall(b"S")
                    self.sent += 1
                    time.sleep(0.5)
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nSUCCESS")
                chunk = b"x" * 65536
                while not self.stop.is_set():
                    conn.sendall(chunk)
                    self.sent += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def peers(app):
    made = []
    assert app.openapi.addresses.allow_private  # local peers (tests/conftest.py openapi_settings)

    def make(mode):
        made.append(Peer(mode))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.fixture
def deadline(app):
    """A 3 s attempt deadline, as configuration for the dispatchers a test builds."""
    return replace(app.openapi.dispatch, timeout=3.0, interval=0.05, backoff=(60.0,))


def row_of(app, order_code: str) -> MerchantCallbackRow:
    with app.uow_factory() as uow:
        rows = uow.session.scalars(select(MerchantCallbackRow)).all()
        return next(r for r in rows if callback_json((None, r.body.encode()))["orderCode"] == order_code)


def test_an_endless_answer_is_cut_after_a_few_kb_at_once(app, merchant, client_for, peers, deadline,
                                                         dispatchers_paused):
    peer = peers("endless")
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-endless", callback_url=peer.url)
    started = time.monotonic()
    run_rounds(scheduled(app, deadline).dispatcher("endless"), 1)
    took = time.monotonic() - started
    row, = callback_rows(app)
    assert took < deadline.timeout  # it stopped reading; it did not wait for the deadline
    assert row.state == "pending" and row.last_error.startswith("HTTP 200: SUCCESSxxx")  # not exactly SUCCESS
    assert len(row.last_error) <= 255


def test_a_slow_loris_merchant_ends_at_the_deadline_and_never_delays_another(app, merchant, client_for, peers,
                                                                              receiver, deadline, dispatchers_paused):
    slow = peers("slowloris")
    other = make_merchant(app, "177", ["177"], callback_url=receiver.url)
    app.openapi.registry.link_account("acct-177", 77)
    slow_code = client_for(merchant).vip_charge("87103", ACCOUNT, "cb-slow", callback_url=slow.url)["data"]["orderCode"]
    loop = _Loop()
    dispatcher = scheduled(app, deadline).dispatcher("one-of-each")
    try:
        loop.run(dispatcher.start())
        wait_until(lambda: slow.sent > 0)  # the slow attempt is in flight
        started = time.monotonic()
        fast_code = client_for(other).vip_charge("87103", "acct-177", "cb-fast")["data"]["orderCode"]
        wait_until(lambda: row_of(app, fast_code).state == "delivered", timeout=deadline.timeout)
        fast_took = time.monotonic() - started
        assert row_of(app, slow_code).last_error is None  # still in flight
        wait_until(lambda: row_of(app, slow_code).last_error, timeout=deadline.timeout + 3)
        slow_row = row_of(app, slow_code)
    finally:
        loop.run(dispatcher.stop())
        loop.close()
    assert fast_took < 1.5, fast_took
    assert slow_row.state == "pending" and slow_row.last_error == "no answer within 3 s"
    assert len(receiver.received) == 1


def test_many_reports_to_one_slow_merchant_never_fill_every_slot(app, merchant, client_for, peers, receiver,
                                                                  deadline, dispatchers_paused):
    slow = peers("slowloris")
    fair = replace(deadline, concurrency=4, per_business=2)
    other = make_merchant(app, "177", ["177"], callback_url=receiver.url)
    app.openapi.registry.link_account("acct-177", 77)
    client = client_for(merchant)
    for i in range(6):  # more slow reports than there are slots
        client.vip_charge("87103", ACCOUNT, f"cb-slow-{i}", callback_url=slow.url)
    loop = _Loop()
    dispatcher = scheduled(app, fair).dispatcher("fair")
    try:
        loop.run(dispatcher.start())
        wait_until(lambda: slow.sent > 0)
        started = time.monotonic()
        fast_code = client_for(other).vip_charge("87103", "acct-177", "cb-fast")["data"]["orderCode"]
        wait_until(lambda: row_of(app, fast_code).state == "delivered", timeout=deadline.timeout)
        fast_took = time.monotonic() - started
        with app.uow_factory() as uow:
            in_flight = [r for r in uow.session.scalars(select(MerchantCallbackRow))
                         if r.business_id == "166" and r.attempts == 1 and r.last_error is None]
    finally:
        loop.run(dispatcher.stop())
        loop.close()
    assert fast_took < 1.5, fast_took
    assert len(in_flight) == 2  # the slow merchant held its two slots, not all four


def test_a_callback_for_merchant_a_does_not_verify_as_merchant_b(app, merchant, client_for, receiver, platform_key,
                                                                 only_server_dispatcher):
    other = make_merchant(app, "177", ["177"])
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-a", callback_url=receiver.url)
    (headers, body), = receiver.wait_for(1)
    assert headers["merchantId"] == "166"
    assert client_for(merchant).verify_callback(platform_key[1], headers, body)
    # Merchant A replays its report to merchant B: B verifies as itself and refuses it,
    # whatever headers A sets.
    assert not client_for(other).verify_callback(platform_key[1], headers, body)
    forged = dict(headers, merchantId="177", businessId="177")
    assert not verify_callback(platform_key[1], forged, body, merchant_id="177")


def test_expired_nonces_are_purged_without_a_dispatcher(app, merchant, client_for, dispatchers_paused):
    old = naive_now() - timedelta(hours=1)
    with app.uow_factory() as uow:
        uow.session.add_all([MerchantNonceRow(business_id="166", nonce=f"old-{i:05d}", created_at=old)
                             for i in range(1500)])
        uow.commit()
    now = [1000.0]  # the service's monotonic clock, moved by the test
    charges = MerchantChargeService(app.uow_factory, app.memberships.ledger, nonce_purge_every=60.0,
                                    monotonic=lambda: now[0])
    client = client_for(merchant)

    def balance() -> None:
        raw = json.dumps({"merchantId": merchant.merchant_id, "businessId": merchant.business_id}).encode()
        headers = client.signed_headers(BALANCE_PATH, raw)
        charges.balance({k.lower(): v for k, v in headers.items()}, raw)

    balance()
    assert nonce_count(app) == 1500 - 1000 + 1  # one bounded batch, plus the fresh nonce
    now[0] += 59.0
    balance()
    assert nonce_count(app) == 501 + 1  # not again within the interval
    now[0] += 1.0  # the interval has passed
    balance()
    assert nonce_count(app) == 3  # only the fresh ones remain


def test_one_of_many_concurrent_requests_purges(app):
    """The purge schedule is taken under a lock: of 16 threads arriving together once
    the interval has passed, exactly one purges."""
    def slow_clock() -> float:  # widens the window between reading the schedule and moving it
        time.sleep(0.01)
        return 1000.0

    charges = MerchantChargeService(app.uow_factory, app.memberships.ledger, nonce_purge_every=60.0,
                                    monotonic=slow_clock)
    start = threading.Barrier(16)
    due: list[bool] = []

    def arrive() -> None:
        start.wait()
        due.append(charges._purge_due())

    threads = [threading.Thread(target=arrive) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(due) == [False] * 15 + [True]
