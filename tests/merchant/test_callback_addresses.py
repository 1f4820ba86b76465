"""The callback address policy (issue 9 §3): which addresses our servers may send a
merchant's status callback to, checked at charge time (4001, through Envoy) and
again before every attempt."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import httpx
import pytest

from clients.merchant_client import CHARGE_PATH, MerchantClient
from server.app import build_app
from server.merchant.addresses import AddressPolicy, AddressRefused, refusal_reason
from server.merchant.config import OpenApiSettings
from server.platform.database import make_engine
from server.platform.envoy import Envoy
from tests.conftest import TEST_HOSTS, Gateway, _Loop, _make_server, free_port

from .conftest import ACCOUNT, snapshot
from .test_callbacks import callback_rows, run_rounds
from .test_charge_http import body_of

REFUSED_ALWAYS = ["169.254.169.254", "fe80::1", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "ff02::1",
                  "240.0.0.1", "255.255.255.255", "::ffff:169.254.169.254", "2002:a9fe:a9fe::1"]
PRIVATE = ["127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1",
           "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "64:ff9b::7f00:1", "64:ff9b::a00:1",
           "2001:0:4136:e378:8000:63bf:80ff:fffe"]  # Teredo whose client is 127.0.0.1
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_link_local_multicast_unspecified_reserved_are_always_refused(address):
    ip = ipaddress.ip_address(address)
    assert refusal_reason(ip, allow_private=False) and refusal_reason(ip, allow_private=True)


@pytest.mark.parametrize("address", PRIVATE)
def test_loopback_and_private_only_with_the_setting(address):
    ip = ipaddress.ip_address(address)
    assert refusal_reason(ip, allow_private=False)
    assert refusal_reason(ip, allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert refusal_reason(ipaddress.ip_address(address), allow_private=False) is None


def test_every_resolved_address_must_pass():
    answers = {"mixed.test": ["93.184.216.34", "127.0.0.1"], "public.test": ["93.184.216.34"]}
    policy = AddressPolicy(resolver=lambda host, port: answers[host])
    with pytest.raises(AddressRefused, match="loopback"):
        policy.check("https://mixed.test/notify")
    target = policy.check("https://public.test:8443/notify")
    assert (target.address, target.host, target.port) == ("93.184.216.34", "public.test", 8443)
    for url in ("ftp://public.test/", "http://user:pw@public.test/", "http://public.test:99999/", "http:///x"):
        with pytest.raises(AddressRefused):
            policy.check(url)


def test_an_unresolvable_host_is_refused():
    with pytest.raises(AddressRefused, match="does not resolve"):
        AddressPolicy().check("http://no-such-host.invalid/notify")


def charge(client, callback_url: str, biz_code: str = "cb") -> dict:
    raw = httpx.Request("POST", "http://x", json=body_of(client, biz_code, callbackUrl=callback_url)).content
    reply = client.http.post(client.base_url + CHARGE_PATH, content=raw,
                             headers=client.signed_headers(CHARGE_PATH, raw))
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def production_gateway(settings, grpc_server, tmp_path_factory):
    """A second server and Envoy on the same database, configured as in production:
    OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS off (the default), no dispatcher. The
    session's own stack allows local receivers (tests/conftest.py openapi_settings)."""
    strict = build_app(settings, make_engine(settings.sqlalchemy_url),
                       openapi_settings=OpenApiSettings(dispatcher_enabled=False, _env_file=None))
    assert strict.openapi.addresses.allow_private is False
    loop = _Loop()
    server = loop.run(_make_server(strict))
    envoy = Envoy(free_port(), free_port(), server.port, tmp_path_factory.mktemp("envoy-production"),
                  log_path=tmp_path_factory.getbasetemp() / "envoy-production.log")
    envoy.start()
    try:
        yield Gateway(f"http://127.0.0.1:{envoy.http_port}", envoy)
    finally:
        envoy.stop()
        loop.run(server.stop(0))
        loop.close()
        strict.engine.dispose()


@pytest.fixture
def production_client_for(production_gateway):
    clients = []

    def make(m) -> MerchantClient:
        clients.append(MerchantClient(production_gateway.url, m.merchant_id, m.business_id,
                                      private_key_pem=m.private_key))
        return clients[-1]

    yield make
    for c in clients:
        c.http.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:{admin}/quitquitquit", "http://localhost:{admin}/quitquitquit",
                                 "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/notify",
                                 "http://[::1]:{admin}/quitquitquit", "http://[::ffff:127.0.0.1]:{admin}/quitquitquit",
                                 "http://0.0.0.0:{admin}/quitquitquit", "http://2130706433:{admin}/quitquitquit",
                                 "http://no-such-host.invalid/notify"])
def test_charge_with_a_non_public_callback_url_is_4001_and_envoy_lives(app, merchant, production_client_for,
                                                                      production_gateway, url):
    gateway = production_gateway
    url = url.format(admin=gateway.envoy.admin_port)
    client = production_client_for(merchant)
    before = snapshot(app)
    reply = charge(client, url)
    assert reply["status"] == 4001 and "callbackUrl" in reply["message"], reply
    assert snapshot(app) == before
    assert httpx.get(f"http://127.0.0.1:{gateway.envoy.admin_port}/ready").status_code == 200


def test_the_setting_allows_loopback_but_never_link_local(app, merchant, client_for, dispatchers_paused):
    client = client_for(merchant)
    assert app.openapi.addresses.allow_private  # the session's configuration (tests/conftest.py)
    assert charge(client, "http://127.0.0.1:9/notify", "ok-1")["status"] == 200
    assert charge(client, "http://169.254.169.254/", "no-1")["status"] == 4001


def test_the_address_is_checked_again_before_each_attempt(app, merchant, client_for, receiver, dispatchers_paused):
    """Allowed at charge time, refused at send time: the report is not sent."""
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-later", callback_url=receiver.url)
    # e.g. the DNS answer changed since: the sender's policy now refuses the address
    production = replace(app.openapi, addresses=replace(app.openapi.addresses, allow_private=False))
    run_rounds(production.dispatcher("recheck"), 1)
    row, = callback_rows(app)
    assert receiver.received == [] and row.attempts == 1 and row.state == "pending"
    assert row.last_error == "refused: callbackUrl resolves to a loopback address"


def test_the_attempt_connects_to_the_checked_address(app, merchant, client_for, receiver, dispatchers_paused):
    """A name only our resolver knows reaches the receiver: the attempt connects to the
    address the policy resolved and checked (no second lookup), Host stays the name."""
    port = httpx.URL(receiver.url).port
    assert TEST_HOSTS["merchant.test"] == ["127.0.0.1"]  # the session's resolver (tests/conftest.py)
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-name", callback_url=f"http://merchant.test:{port}/n")
    run_rounds(app.openapi.dispatcher("by-address"), 1)
    (headers, _), = receiver.wait_for(1)
    assert {k.lower(): v for k, v in headers.items()}["host"] == f"merchant.test:{port}"
    assert callback_rows(app)[0].state == "delivered"


def test_redirects_are_not_followed(app, merchant, client_for, receiver, dispatchers_paused):
    receiver.script = [(302, "moved")]
    client_for(merchant).vip_charge("87103", ACCOUNT, "cb-302", callback_url=receiver.url)
    run_rounds(app.openapi.dispatcher("redirect"), 1)
    row, = callback_rows(app)
    assert len(receiver.received) == 1 and row.state == "pending" and row.last_error.startswith("HTTP 302")


def test_the_setting_is_off_by_default_and_read_from_the_environment(monkeypatch):
    from server.merchant.config import OpenApiSettings
    from server.merchant.service import build_openapi

    assert build_openapi(None, None, OpenApiSettings(_env_file=None)).addresses.allow_private is False
    monkeypatch.setenv("OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS", "true")
    openapi = build_openapi(None, None, OpenApiSettings(_env_file=None))
    assert openapi.addresses.allow_private is True
    assert openapi.dispatcher("x").addresses is openapi.addresses  # charge time and send time share it


@pytest.mark.parametrize("url", ["http://[::1/", "http://[zz]/notify", "http://[127.0.0.1]/notify",
                                 "http://a]b/notify"])
def test_a_malformed_callback_url_is_4001_not_500(app, merchant, client_for, url):
    """issue 18 §3: urlsplit's ValueError was a 500 {"status": 5000}."""
    client = client_for(merchant)
    before = snapshot(app)
    reply = charge(client, url)
    assert reply["status"] == 4001 and "callbackUrl" in reply["message"], reply
    assert snapshot(app) == before


def test_the_stacks_own_ports_are_refused_even_with_private_networks_allowed(app, merchant, client_for, settings,
                                                                             dispatchers_paused):
    client = client_for(merchant)
    assert app.openapi.addresses.allow_private  # the session's configuration (tests/conftest.py)
    for n, port in enumerate((settings.envoy_admin_port, settings.grpc_port, settings.http_port)):
        for host in ("127.0.0.1", "localhost", "[::1]"):
            reply = charge(client, f"http://{host}:{port}/quitquitquit", f"own-{n}-{host}")
            assert reply["status"] == 4001 and "own ports" in reply["message"], (host, port, reply)
    assert charge(client, "http://127.0.0.1:9/notify", "other-port")["status"] == 200


def test_own_ports_apply_to_loopback_and_private_addresses_only():
    policy = AddressPolicy(allow_private=True, own_ports=frozenset({9901}),
                           resolver=lambda host, port: {"public.example": ["93.184.216.34"]}[host])
    for url in ("http://127.0.0.1:9901/", "http://10.1.2.3:9901/", "http://[::ffff:127.0.0.1]:9901/"):
        with pytest.raises(AddressRefused, match="own ports"):
            policy.check(url)
    assert policy.check("http://public.example:9901/").address == "93.184.216.34"
    assert policy.check("http://127.0.0.1:9902/").port == 9902
