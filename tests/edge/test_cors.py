"""CORS on the public door (issue 18 §4; docs/edge.md: CORS): no Access-Control-* header
unless the origin is in CORS_ALLOWED_ORIGINS (default none); an allowed page in a real
browser (headless Chromium) can call the API cross-origin and read x-request-id."""

import http.server
import shutil
import threading

import httpx
import pytest
from playwright.sync_api import sync_playwright

from server.platform.envoy import EdgeConfig, Envoy
from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def cors_gateway(grpc_server, tmp_path_factory):
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-cors"),
                  edge=EdgeConfig(cors_allowed_origins=("http://localhost:*", "https://h5.example.com")))
    envoy.start()
    yield f"http://127.0.0.1:{envoy.http_port}"
    envoy.stop()


def _preflight(base: str, origin: str, path: str = "/api/v2/vip/orders") -> httpx.Response:
    return httpx.options(base + path, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "authorization"}, timeout=5)


@pytest.mark.db
def test_by_default_no_origin_is_allowed(gateway):
    r = _preflight(gateway.url, "http://localhost:3000")
    assert not [h for h in r.headers if h.startswith("access-control-")], dict(r.headers)
    real = httpx.get(gateway.url + "/api/v2/vip/configs", headers={"Origin": "http://localhost:3000"}, timeout=5)
    assert real.status_code == 200 and "access-control-allow-origin" not in real.headers


@pytest.mark.db
@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://localhost", "https://h5.example.com"])
def test_preflight_from_an_allowed_origin(cors_gateway, origin):
    r = _preflight(cors_gateway, origin)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == origin
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"]


@pytest.mark.db
@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost.evil.example", "https://h5.example.com.evil",
                                    "http://127.0.0.1:3000"])
def test_other_origins_get_no_cors_headers(cors_gateway, origin):
    r = _preflight(cors_gateway, origin)
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.db
def test_undocumented_paths_get_no_preflight_answer(cors_gateway):
    r = _preflight(cors_gateway, "http://localhost:3000", "/admin")
    assert r.status_code == 404 and "access-control-allow-origin" not in r.headers


class _Page(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


FETCH = """<!doctype html><script>
window.result = fetch(API + "/api/v2/vip/orders?offset=0&limit=15&_t=1733380000",
                      {headers: {"Authorization": "Bearer " + TOKEN}})
  .then(async r => ({status: r.status, requestId: r.headers.get("x-request-id"), body: await r.json()}))
  .catch(e => ({error: String(e)}));
</script>"""


@pytest.mark.db
def test_a_page_on_an_allowed_origin_calls_the_api_from_headless_chromium(cors_gateway, token):
    page_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), _Page)
    _Page.html = (f'<script>const API = "{cors_gateway}"; const TOKEN = "{token(1)}";</script>' + FETCH).encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"http://localhost:{page_port}/")  # allowed: http://localhost:*
                allowed = page.evaluate("window.result")
                page.goto(f"http://127.0.0.1:{page_port}/")  # not allowed
                refused = page.evaluate("window.result")
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert allowed["status"] == 200, allowed
    assert allowed["body"] == [] and allowed["requestId"], allowed  # user 1 has no orders yet
    assert "error" in refused and "Failed to fetch" in refused["error"], refused
