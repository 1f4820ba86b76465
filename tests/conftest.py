"""Shared fixtures.

Database tests run once per backend: SQLite always, PostgreSQL too when
TEST_DATABASE_URL is set (each test run gets its own fresh database there, so
parallel runs never collide). Per backend the session starts one migrated
database, one in-process gRPC server on port 0 and one real Envoy in front of it;
each test starts from empty tables and the demo catalog."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.app import App, build_app, build_grpc_server
from server.merchant.addresses import system_resolver
from server.merchant.config import OpenApiSettings
from server.merchant.signing import generate_rsa_keypair
from server.membership.catalog import demo_catalog
from server.platform.auth import TokenKey, issue_service_token, issue_token
from server.platform.database import Base, make_engine
from server.platform.envoy import Envoy
from server.platform.grpc_server import GrpcServer
from server.platform.migrate import upgrade
from server.platform.settings import ROOT, Settings

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
TEST_SECRET = "test-secret-" + uuid.uuid4().hex
TEST_SERVICE_SECRET = "test-service-secret-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    base = make_url(Settings(database_url=os.environ["TEST_DATABASE_URL"]).sqlalchemy_url)
    name = f"vipay_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def settings(database_url) -> Settings:
    upgrade(database_url)
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        service_jwt_secret=TEST_SERVICE_SECRET,
        sandbox_secret=TEST_SECRET,
        catalog_refresh_seconds=0,
        public_base_url="http://gateway.invalid",
        _env_file=None,
    )


# Host names of the tests' local callback receivers (only these resolve differently).
TEST_HOSTS = {"merchant.test": ["127.0.0.1"]}


def local_resolver(host: str, port: int) -> list[str]:
    return TEST_HOSTS[host] if host in TEST_HOSTS else system_resolver(host, port)


@pytest.fixture(scope="session")
def platform_key() -> tuple[str, str]:
    """(private, public) PEM: the OpenAPI callback signing key of this session."""
    return generate_rsa_keypair()


@pytest.fixture(scope="session")
def openapi_settings(platform_key, tmp_path_factory) -> OpenApiSettings:
    """The merchant area as in development: callbacks may go to local receivers (the
    production policy has its own stack in tests/merchant/test_callback_addresses.py),
    signed with this session's key."""
    key_file = tmp_path_factory.mktemp("openapi") / "platform_key.pem"
    key_file.write_text(platform_key[0])
    key_file.chmod(0o600)
    return OpenApiSettings(platform_key_file=str(key_file), callback_allow_private_networks=True, _env_file=None)


@pytest.fixture(scope="session")
def app(settings, openapi_settings) -> Iterator[App]:
    application = build_app(settings, make_engine(settings.sqlalchemy_url), openapi_settings=openapi_settings,
                            callback_resolver=local_resolver)
    yield application
    application.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Empties every table and re-seeds the catalog before each database test."""
    if "app" not in request.fixturenames:
        yield
        return
    application: App = request.getfixturevalue("app")
    with application.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    application.save_catalog(demo_catalog())
    application.memberships.catalog.invalidate()
    yield
    # The wallet ledger invariant (docs/recharge.md) must hold after every database test.
    from server.recharge.ledger import check_ledger

    with application.uow_factory() as uow:
        problems = [str(p) for p in check_ledger(uow)] + application.refunds.check(uow)
    assert not problems, "ledger broken: " + "; ".join(problems)


class _Loop:
    """An asyncio loop in a thread, for the grpc.aio server."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def grpc_server(app) -> Iterator[GrpcServer]:
    loop = _Loop()
    server = loop.run(_make_server(app))
    yield server
    loop.run(server.stop(0))
    loop.close()


async def _make_server(app) -> GrpcServer:
    server = build_grpc_server(app, "127.0.0.1", 0)
    await server.start()
    return server


@pytest.fixture(scope="session")
def channel(grpc_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as ch:
        yield ch


@dataclass
class Gateway:
    url: str
    envoy: Envoy

    def client(self, token: str | None = None, **headers) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(scope="session")
def gateway(grpc_server, tmp_path_factory) -> Iterator[Gateway]:
    assert (ROOT / "gateway" / "api.binpb").exists(), "run `make protos` first"
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy"),
                  log_path=tmp_path_factory.getbasetemp() / "envoy.log")
    envoy.start()
    yield Gateway(f"http://127.0.0.1:{envoy.http_port}", envoy)
    envoy.stop()


@pytest.fixture
def own_gateway(app, settings, openapi_settings, tmp_path):
    """own_gateway(settings={...}, recharge_settings={...}) -> a Gateway in front of a gRPC
    server of its own, whose app build_app composes on the test database from the
    session's configuration with these changes (e.g. tighter limits). Nothing is changed
    on the shared app: configuration is handed in when an app is built."""
    from server.recharge.settings import RechargeSettings

    started = []

    def start(*, settings: dict | None = None, recharge_settings: dict | None = None) -> Gateway:
        own = build_app(base_settings.model_copy(update=settings or {}), app.engine, announce_channels=False,
                        recharge_settings=RechargeSettings().model_copy(update=recharge_settings or {}),
                        openapi_settings=openapi_settings.model_copy(update={"dispatcher_enabled": False}),
                        callback_resolver=local_resolver)
        loop = _Loop()
        server = loop.run(_make_server(own))
        envoy = Envoy(free_port(), free_port(), server.port, tmp_path / f"envoy-{len(started)}",
                      log_path=tmp_path / f"envoy-{len(started)}.log")
        started.append((loop, server, envoy))
        envoy.start()
        return Gateway(f"http://127.0.0.1:{envoy.http_port}", envoy)

    base_settings = settings
    yield start
    for loop, server, envoy in started:
        envoy.stop()
        loop.run(server.stop(0))
        loop.close()


@pytest.fixture
def token(settings):
    """token(user_id, role='user') -> a signed bearer token: a user token, or for role
    service/admin a short-lived service credential (SERVICE_JWT_SECRET)."""

    def make(user_id: int, role: str = "user") -> str:
        if role == "user":
            return issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, user_id)
        key = TokenKey(settings.service_jwt_secret, settings.service_jwt_issuer, settings.service_jwt_audience)
        return issue_service_token(key, user_id, role)

    return make


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
