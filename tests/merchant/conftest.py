"""Fixtures of the merchant OpenAPI tests: two merchants made through the operator
registry, the reference client pointed at the real Envoy, a platform callback key,
and a local HTTP receiver standing in for the merchant's callbackUrl."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from clients.merchant_client import MerchantClient
from server.membership.tables import MembershipGrantRow
from server.merchant.callbacks import CallbackDispatcher
from server.merchant.service import OpenApi
from server.merchant.tables import (
    MerchantCallbackRow,
    MerchantNonceRow,
    MerchantOrderRow,
    MerchantRow,
)

PRICE_FEN = 451  # product 87103: 3 months of `middle`, settlement price 4.51 yuan
USER_ID = 42
ACCOUNT = "w23b52"


@dataclass
class Merchant:
    merchant_id: str
    business_id: str
    private_key: str
    md5_secret: str


def make_merchant(app, merchant_id: str, business_ids: list[str], balance_fen: int = 10_000,
                  callback_url: str | None = None) -> Merchant:
    reg = app.openapi.registry
    keys = reg.create(merchant_id, f"merchant {merchant_id}", business_ids, callback_url=callback_url, rsa=True, md5=True)
    reg.set_product(merchant_id, "87103", "middle", 3, PRICE_FEN)
    if balance_fen:
        reg.top_up(merchant_id, balance_fen)
    return Merchant(merchant_id, business_ids[0], keys.rsa_private_key, keys.md5_secret)


@pytest.fixture
def merchant(app) -> Merchant:
    m = make_merchant(app, "166", ["166", "1661"])
    app.openapi.registry.link_account(ACCOUNT, USER_ID, "15012616978")
    return m


@pytest.fixture
def other_merchant(app) -> Merchant:
    return make_merchant(app, "177", ["177"])


@pytest.fixture
def client_for(gateway):
    clients = []

    def make(m: Merchant, *, md5: bool = False, business_id: str | None = None) -> MerchantClient:
        c = MerchantClient(gateway.url, m.merchant_id, business_id or m.business_id,
                           private_key_pem=None if md5 else m.private_key, md5_secret=m.md5_secret if md5 else None)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.http.close()


@dataclass(frozen=True)
class Snapshot:
    balances: dict
    orders: int
    grants: int
    callbacks: int


def snapshot(app) -> Snapshot:
    with app.uow_factory() as uow:
        s = uow.session
        return Snapshot(
            dict(s.execute(select(MerchantRow.merchant_id, MerchantRow.balance_fen)).all()),
            s.scalar(select(func.count()).select_from(MerchantOrderRow)),
            s.scalar(select(func.count()).select_from(MembershipGrantRow)),
            s.scalar(select(func.count()).select_from(MerchantCallbackRow)),
        )


def nonce_count(app) -> int:
    with app.uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(MerchantNonceRow))


# ---- a merchant's callback endpoint ------------------------------------------------


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, body) (or what a scripted
    callable answers), then `SUCCESS`."""

    script: list = field(default_factory=list)
    received: list = field(default_factory=list)
    arrived: list = field(default_factory=list)  # time.monotonic() of each POST, as received
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} callbacks, got {len(self.received)}")


@pytest.fixture
def receiver(app):
    """A merchant endpoint on loopback: only reachable with the address policy's
    private networks allowed (OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS), as in development
    (and in the session's app: tests/conftest.py openapi_settings)."""
    assert app.openapi.addresses.allow_private
    with serving_receiver() as state:
        yield state


@contextmanager
def serving_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.arrived.append(time.monotonic())
                state.received.append((dict(self.headers), body))
                step = state.script.pop(0) if state.script else (200, "SUCCESS")
            status, text = step() if callable(step) else step  # a callable: something happens first
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # many dispatchers connect at once

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def callback_json(entry) -> dict:
    return json.loads(entry[1])


def _server_dispatchers(server) -> list[CallbackDispatcher]:
    return [job for job in server.background if isinstance(job, CallbackDispatcher)]


def _pause(dispatchers):
    paused = []
    for job in dispatchers:
        if job.running:
            loop = job._task.get_loop()
            asyncio.run_coroutine_threadsafe(job.stop(), loop).result(10)
            paused.append((job, loop))
    return paused


def _resume(paused):
    for job, loop in paused:
        asyncio.run_coroutine_threadsafe(job.start(), loop).result(10)


@pytest.fixture
def dispatchers_paused(grpc_server):
    """Stops the session gRPC server's dispatcher (the only one started on this test
    database), for tests that drive dispatchers by hand."""
    paused = _pause(_server_dispatchers(grpc_server))
    yield
    _resume(paused)


@pytest.fixture
def only_server_dispatcher(grpc_server):
    """The session gRPC server's own dispatcher runs (it signs with our test key); the
    dispatchers tests make by hand are never started, only driven round by round."""
    assert any(job.running for job in _server_dispatchers(grpc_server)), \
        "the gRPC server should run a callback dispatcher"
    yield


@pytest.fixture
def short_schedule(app):
    """A shortened backoff, as configuration for the dispatchers a test builds
    (scheduled(app, short_schedule))."""
    return replace(app.openapi.dispatch, backoff=(0.2, 0.2, 0.2), interval=0.1, lease=2.0)


def scheduled(app, dispatch) -> OpenApi:
    """The app's merchant area with another dispatch configuration (nothing shared is changed)."""
    return replace(app.openapi, dispatch=dispatch)
