"""Public catalogs served from Envoy's cache (issue 18 §5; docs/edge.md: Catalogs at the
edge): anonymous reads of the catalogs are cached for at most the refresh time, answers
to a caller with a credential never are, and a catalog change shows within that time."""

import dataclasses
import time

import httpx
import pytest

from server.membership.catalog import demo_catalog
from server.platform.envoy import EdgeConfig, Envoy
from tests.conftest import free_port

MAX_AGE = 2
CATALOGS = ["/api/v2/vip/configs", "/api/v2/bootstrappers", "/charge/index", "/api/recharge"]


@pytest.fixture(scope="module")
def cached(grpc_server, tmp_path_factory):
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-cache"),
                  edge=EdgeConfig(catalog_max_age=MAX_AGE))
    envoy.start()
    yield envoy
    envoy.stop()


def _fills(envoy: Envoy) -> int:
    """Requests the cache sent on to the server (its misses)."""
    stats = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/stats?filter=^http.catalog_fill.downstream_rq_total$",
                      timeout=5).text
    return int(stats.split(":")[1]) if ":" in stats else 0


def _client(envoy: Envoy, **headers) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{envoy.http_port}", headers=headers, timeout=10)


@pytest.mark.db
@pytest.mark.parametrize("path", CATALOGS)
def test_anonymous_catalog_reads_are_served_from_the_edge(cached, path):
    time.sleep(MAX_AGE + 0.1)  # what an earlier test left has gone stale
    with _client(cached) as c:
        first = c.get(path)
        before = _fills(cached)
        # Cache-busting parameters, other hosts: the same entry (clients cannot grow the cache).
        again = [c.get(path + f"?_t={i}", headers={"host": f"h{i}.example"}) for i in range(20)]
    assert first.status_code == 200 and first.headers["cache-control"] == f"max-age={MAX_AGE}"
    assert all(a.status_code == 200 and a.content == first.content for a in again)
    assert all("age" in a.headers for a in again)
    assert _fills(cached) == before  # none reached the server
    assert len({a.headers["x-request-id"] for a in again}) == len(again)  # each answer its own id


@pytest.mark.db
def test_answers_to_a_credential_are_never_cached_and_users_never_see_each_other(app, cached, token):
    app.recharges.wallet.move(1, 0, 12300, "seed", "seed-1", debit=False)
    app.recharges.wallet.move(2, 0, 4500, "seed", "seed-2", debit=False)
    with _client(cached) as c:
        anonymous = c.get("/api/recharge")
        answers = []
        for _ in range(3):
            for user, balance in ((1, "123"), (2, "45")):
                for header in ({"Authorization": f"Bearer {token(user)}"}, {"Access-Token": token(user)}):
                    r = c.get("/api/recharge", headers=header)
                    answers.append((r, balance))
        anonymous_after = c.get("/api/recharge")
    assert "balance" not in anonymous.json()["data"] and "balance" not in anonymous_after.json()["data"]
    for r, balance in answers:
        assert r.status_code == 200 and r.json()["data"]["balance"] == balance, r.text
        assert r.headers["cache-control"] == "private, no-store" and "age" not in r.headers


@pytest.mark.db
def test_a_bad_token_is_still_401_on_a_cached_catalog(cached):
    with _client(cached) as c:
        assert c.get("/api/v2/vip/configs").status_code == 200  # warm
        for header in ({"Authorization": "Bearer garbage"}, {"Access-Token": "garbage"}):
            r = c.get("/api/v2/vip/configs", headers=header)
            assert r.status_code == 401, (header, r.text)


@pytest.mark.db
def test_a_catalog_change_is_visible_within_the_refresh_time(app, cached):
    with _client(cached) as c:
        time.sleep(MAX_AGE + 0.1)
        assert c.get("/api/v2/vip/configs").json()["exchange"] == 1
        changed_at = time.monotonic()
        app.save_catalog(dataclasses.replace(demo_catalog(), exchange=0))
        app.memberships.catalog.invalidate()
        seen = c.get("/api/v2/vip/configs").json()["exchange"]
        while seen != 0 and time.monotonic() - changed_at < MAX_AGE + 3:
            time.sleep(0.1)
            seen = c.get("/api/v2/vip/configs").json()["exchange"]
        took = time.monotonic() - changed_at
    # max-age, plus up to a second: HTTP dates and ages count whole seconds (edge_config sets
    # max-age to CATALOG_REFRESH_SECONDS - 1 for that).
    assert seen == 0 and took <= MAX_AGE + 1.2, took


@pytest.mark.db
def test_the_default_gateway_caches_nothing(gateway):
    # tests.conftest: CATALOG_REFRESH_SECONDS=0, so no edge cache at all.
    with gateway.client() as c:
        answers = [c.get("/api/v2/vip/configs") for _ in range(3)]
    assert all("age" not in a.headers and "cache-control" not in a.headers for a in answers)


def _same_headers(response: httpx.Response) -> dict:
    """What an answer says but for what differs per answer or per cache state."""
    return {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id", "age", "cache-control")}


@pytest.mark.db
@pytest.mark.parametrize("path", CATALOGS)
def test_a_cached_answer_is_the_answer_the_server_path_gives(cached, gateway, path):
    """Anonymous catalog reads take a route that runs only a two-line Lua script (the cache
    key's form), not legacy_http.lua (server/platform/envoy.py _catalog_hit_route): the
    answer it serves from the cache is byte for byte the one served without any cache."""
    for _ in range(3):
        # The catalog itself may change between the fill and the uncached read (an earlier
        # test's change reaching the server's refresh): a different catalog differs in its
        # values, once; a difference the hit route made would differ on every try.
        time.sleep(MAX_AGE + 0.1)  # what an earlier test left has gone stale
        with _client(cached) as c:
            c.get(path)
            hit = c.get(path)
        uncached = httpx.get(gateway.url + path, timeout=10)
        if hit.content == uncached.content:
            break
    assert "age" in hit.headers and "age" not in uncached.headers
    assert hit.status_code == uncached.status_code == 200
    assert hit.content == uncached.content
    assert _same_headers(hit) == _same_headers(uncached)


def test_anonymous_catalog_gets_skip_the_legacy_filter_and_nothing_else_does():
    """The route a plain anonymous catalog GET takes replaces legacy_http.lua by the cache
    key's normalisation; a read with a credential, a body, a gRPC content type or another
    method matches it not (the whole filter decides on those: 401, 415, envelopes)."""
    import json

    from server.platform.envoy import render_config

    config = json.loads(render_config(1, 2, 3, edge=EdgeConfig(catalog_max_age=MAX_AGE)))
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    light = [r for r in routes if "envoy.filters.http.lua" in r.get("typed_per_filter_config", {})]
    assert sorted(r["match"]["path"] for r in light) == sorted(CATALOGS)
    for route in light:
        script = route["typed_per_filter_config"]["envoy.filters.http.lua"]["source_code"]["inline_string"]
        assert f'":path", "{route["match"]["path"]}"' in script and '":authority", "catalog"' in script
        names = {h["name"] for h in route["match"]["headers"]}
        assert {"authorization", "access-token", ":method", "content-length", "transfer-encoding",
                "content-type"} <= names
        assert route["route"]["cluster"] == "edge_self"


@pytest.mark.db
def test_catalog_reads_that_are_not_plain_still_get_the_legacy_filter(cached):
    with _client(cached) as c:
        c.get("/api/v2/vip/configs")  # cached
        grpc = c.get("/api/v2/vip/configs", headers={"content-type": "application/grpc"})
        bad = c.get("/api/v2/vip/configs", headers={"Access-Token": "garbage"})
    assert grpc.status_code == 415 and grpc.text == "gRPC is not served on this port\n"
    assert bad.status_code == 401 and "message" in bad.json()


@pytest.mark.db
def test_cached_answers_with_cors_headers_vary_on_origin(grpc_server, tmp_path_factory):
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-cache-cors"),
                  edge=EdgeConfig(catalog_max_age=MAX_AGE, cors_allowed_origins=("https://h5.example.com",)))
    envoy.start()
    try:
        with _client(envoy) as c:
            answers = [c.get("/api/v2/vip/configs", headers={"Origin": "https://h5.example.com"}) for _ in range(3)]
            plain = c.get("/api/v2/vip/configs")
    finally:
        envoy.stop()
    assert "age" in answers[-1].headers
    for r in answers:
        assert r.headers["access-control-allow-origin"] == "https://h5.example.com" and r.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in plain.headers
