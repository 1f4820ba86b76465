"""Property-based fuzzing through the real Envoy over every documented path
(api-docs 000-004, /ping, our 001 additions, the notification paths): whatever the
body, query, path parameter or token, the answer is never a 5xx (except the 500s the
documents specify), always the family's envelope, and the server is healthy afterwards.

The example count is bounded (EXAMPLES_PER_PATH for each documented path) and derandomized
so `make test` stays fast and repeatable; FUZZ_EXAMPLES=1000 runs a longer campaign."""

import json
import os
from urllib.parse import quote, urlencode

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.platform.auth import issue_token

EXAMPLES_PER_PATH = int(os.environ.get("FUZZ_EXAMPLES", "50"))

TRICKY = ["", " ", "0", "-1", "1", "2147483647", "2147483648", "9223372036854775808", "1e30", "-1e308",
          "9" * 24, "0001-01-01", "9999-12-31", "2024-02-30", "Asia/Shanghai", "Mars/Olympus", "low", "middle",
          "high", "Iap", "Alipay_AopApp", "WechatPay_Js", "ALIPAYCASH", "WX_APP", "28", "28.00", "abc",
          "\u0000", "\ud800", "é中文", "%00", "../../etc", "a" * 300, "null", "true"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(TRICKY) | st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
path_params = st.one_of(st.integers(min_value=-(2**40), max_value=2**70).map(str), st.sampled_from(TRICKY),
                        st.text(min_size=1, max_size=12)).map(lambda v: quote(v, safe="", errors="surrogatepass") or "x")

# Values that probe each kind of field's edges, drawn half of the time.
DATES = ["0001-01-01", "9999-12-31", "2024-02-30", "2024-05-01", "20240501", "abc", ""]
INTS = ["0", "-1", "1", "3", "12", "100", "2147483647", "2147483648", "-2147483649", "9223372036854775808",
        "1e3", "1.5", "abc", ""]
AMOUNTS = ["28", "28.00", "0", "-1", "0.001", "1e30", "-1e308", "9" * 24, "NaN", "Infinity", "abc", ""]
KIND = {"s": DATES, "d": DATES, "startDate": DATES, "endDate": DATES, "price": AMOUNTS}
for name in ("quantity", "duration", "id", "offset", "limit", "page", "rows", "page_size", "payModeId",
             "goodsId"):
    KIND[name] = INTS


def value_for(name, text_only=False):
    edges = st.sampled_from(KIND.get(name, TRICKY))
    if text_only:
        return edges | st.sampled_from(TRICKY) | st.text(max_size=12)
    return edges | edges.map(lambda v: int(v) if v.lstrip("-").isdigit() else v) | values


DROP = object()


def mutated(base, names, text_only=False):
    """A valid request (base) with one to three fields changed, dropped or added: each
    field's edge reaches the server's own checks instead of hiding behind another's 422."""
    change = st.sampled_from(names).flatmap(lambda n: st.tuples(st.just(n), value_for(n, text_only) | st.just(DROP)))
    extra = st.just({}) if text_only else st.dictionaries(st.text(max_size=8), values, max_size=1)

    def apply(args):
        changes, added = args
        result = {**added, **base}
        for name, value in changes:
            if value is DROP:
                result.pop(name, None)
            else:
                result[name] = value
        return result

    return st.tuples(st.lists(change, min_size=1, max_size=3), extra).map(apply)


ORDER_FIELDS = ["quantity", "timezone", "duration", "level", "pay_method", "request_id", "openid"]
ORDER = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
LIST_QUERY = ["offset", "limit", "s", "d", "timezone", "page_size", "page_token"]
LIST = {"offset": "0", "limit": "15", "s": "2024-01-01", "d": "2024-12-31"}
RECHARGE_FIELDS = ["id", "price", "payModeId", "goodsId", "_verifyCode", "openid"]
RECHARGE = {"id": 1, "price": "28", "payModeId": 2}
HISTORY_QUERY = ["page", "rows", "startDate", "endDate", "orderState"]
HISTORY = {"page": "1", "rows": "10", "startDate": "2024-01-01", "endDate": "2024-12-31"}

# (family, method, path strategy, query strategy or None, body kind, body fields or None)
ENDPOINTS = [
    ("ping", "GET", st.just("/ping"), None, None, None),
    ("001", "GET", st.just("/api/v2/bootstrappers"), None, None, None),
    ("001", "GET", st.just("/api/v2/vip/configs"), None, None, None),
    ("001", "POST", st.just("/api/v2/vip/orders"), None, "json|form", mutated(ORDER, ORDER_FIELDS)),
    ("001", "GET", st.just("/api/v2/vip/orders"), mutated(LIST, LIST_QUERY, text_only=True), None, None),
    ("001", "GET", path_params.map("/api/v2/vip/orders/{}".format), None, None, None),
    ("001", "DELETE", path_params.map("/api/v2/vip/orders/{}".format), None, None, None),
    ("001", "PATCH", st.just("/api/v2/vip/exchange-vip"), None, "json|form", mutated({"level": "high"}, ["level"])),
    ("001", "POST", path_params.map("/api/v2/vip/check-iap-result/{}".format), None, "json|form", mutated({"receipt": "r"}, ["receipt"])),
    ("001", "GET", st.just("/api/v2/vip/protocol"), None, None, None),
    ("001", "GET", path_params.map("/api/v2/vip/check-order/{}".format), None, None, None),
    ("001", "GET", st.just("/api/v2/vip/membership"), None, None, None),
    ("notify", "POST", st.tuples(path_params, st.sampled_from(["sandbox", "alipay", "wechatpay", "x"]))
     .map(lambda t: f"/api/v2/vip/orders/{t[0]}/{t[1]}-callback"), None, "raw", None),
    ("notify", "POST", st.just("/api/v2/vip/app-store-notifications"), None, "raw", None),
    ("000", "GET", st.just("/charge/index"), None, None, None),
    ("000", "POST", st.just("/charge/pay"), None, "json|form", mutated({"id": 2, "payType": "ALIPAYCASH"}, ["id", "payType"])),
    ("002", "GET", st.just("/api/recharge"), None, None, None),
    ("002", "POST", st.just("/api/recharge/order"), None, "json|form", mutated(RECHARGE, RECHARGE_FIELDS)),
    ("002", "GET", st.just("/api/recharge/history"), mutated(HISTORY, HISTORY_QUERY, text_only=True), None, None),
    ("002", "GET", st.just("/api/recharge/captcha"), None, None, None),
    ("003", "GET", st.just("/index.php"), mutated({"client": "H5"}, ["client"], text_only=True).map(
        lambda q: dict(q, s="/api/recharge/center")), None, None),
    ("notify", "POST", st.tuples(path_params, st.sampled_from(["sandbox", "alipay", "wechatpay"]))
     .map(lambda t: f"/api/recharge/orders/{t[0]}/{t[1]}-callback"), None, "raw", None),
    ("notify", "POST", st.sampled_from(["alipay", "wechatpay", "sandbox", "x"]).map("/api/refunds/{}".format),
     None, "raw", None),
    ("004", "POST", st.sampled_from(["/v1/openapi/order/VIPCharge", "/v1/openapi/order/query",
                                     "/v1/openapi/merchant/balance"]), None, "json", mutated({}, ["merchantId", "bizCode", "account", "sign", "timestamp", "nonce", "productCode"])),
]

ENVELOPE_KEYS = {
    "000": {"c", "m", "d"},
    "002": {"message", "success", "code", "data"},
    "003": {"status", "message", "data"},
    "004": {"status", "message", "data"},
}


@st.composite
def requests(draw, endpoint, secret_token):
    family, method, path_s, query_s, body_kind, fields = endpoint
    path = draw(path_s)
    query = draw(query_s) if query_s is not None else {}
    headers, content = {}, None
    if body_kind == "raw":
        content = draw(st.binary(max_size=200) | values.map(lambda v: json.dumps(v).encode()))
        headers["content-type"] = draw(st.sampled_from(["application/x-www-form-urlencoded", "application/json",
                                                        "text/xml"]))
    elif body_kind is not None:
        body = draw(fields)
        kind = draw(st.sampled_from(body_kind.split("|") + ["garbage"]))
        if kind == "json":
            content, headers["content-type"] = json.dumps(body).encode(), "application/json"
        elif kind == "form":
            flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            content = urlencode(flat, errors="surrogatepass").encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            content = draw(st.binary(max_size=100))
            headers["content-type"] = draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded"]))
    # Mostly a good user token, so that bodies and queries reach the server's own checks.
    credential = draw(st.sampled_from(["user"] * 6 + ["none", "user2", "garbage", "user-key-admin", "huge-sub"]))
    token = {"none": None, "garbage": "garbage.token.here", **secret_token}.get(credential)
    if token is not None:
        header = draw(st.sampled_from(["Authorization", "Access-Token", "both"]))
        if header in ("Authorization", "both"):
            headers["Authorization"] = f"Bearer {token}"
        if header in ("Access-Token", "both"):
            headers["Access-Token"] = token
    if family == "003":
        if draw(st.booleans()):
            headers["storeId"] = draw(st.sampled_from([v for v in TRICKY if v.isascii() and v.strip() == v
                                                        and v.isprintable()]) | st.integers().map(str))
        headers["platform"] = draw(st.sampled_from(["H5", "APP", ""]))
    return family, method, path, query, headers, content


def check_envelope(family, method, path, response):
    status = response.status_code
    if family == "notify":
        return  # providers read the status; the body is theirs (success / fail / JSON)
    content_type = response.headers.get("content-type", "")
    if status == 204:
        assert response.content == b""
        return
    if content_type.startswith(("text/html", "image/png")) and status == 200:
        return  # the protocol page, a captcha image
    assert content_type.startswith("application/json"), (status, content_type, response.text[:200])
    body = response.json()
    if family == "ping":  # a bad token is 401 even here (README)
        assert body == {"ok": True} if status == 200 else (status == 401 and set(body) == {"message", "errors"})
    elif family == "001":
        if status >= 400:
            assert set(body) == {"message", "errors"} and isinstance(body["errors"], dict), body
        else:
            assert isinstance(body, (dict, list))
    else:
        assert set(body) == ENVELOPE_KEYS[family], body


def documented_500(family, path, response):
    """api-docs/001: check-iap-result answers 500 when the App Store refuses ("其他响应 500")."""
    return (family == "001" and "/check-iap-result/" in path and response.status_code == 500
            and response.json().get("message") != "Server Error")


@pytest.mark.db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[1]}-{e[0]}-{ENDPOINTS.index(e)}")
def test_fuzz_every_documented_path_through_envoy(gateway, grpc_server, token, settings, endpoint):
    secret_token = {
        "user": token(1), "user2": token(2),
        "user-key-admin": issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 0, "admin"),
        "huge-sub": issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 2**63),
    }
    seen = []

    with gateway.client() as client:
        @settings_for_fuzz
        @given(requests(endpoint, secret_token))
        def run(request):
            family, method, path, query, headers, content = request
            url = path + ("?" + urlencode(query, errors="surrogatepass") if query else "")
            r = client.request(method, url, headers=headers, content=content)
            seen.append(r.status_code)
            assert r.status_code < 500 or documented_500(family, path, r), (
                method, path, query, headers.get("content-type"), content and content[:200], r.status_code,
                r.text[:300])
            check_envelope(family, method, path, r)

        run()

    assert len(seen) >= min(EXAMPLES_PER_PATH, 20)
    with gateway.client() as client:
        assert client.get("/ping").json() == {"ok": True}
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


settings_for_fuzz = settings(max_examples=EXAMPLES_PER_PATH, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                    HealthCheck.data_too_large, HealthCheck.filter_too_much])


# ---- client-sent gRPC-reserved headers, odd methods, codec-level garbage (issue 18) ----

RESERVED_NAMES = ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message",
                  "grpc-status-details-bin", "grpc-previous-rpc-attempts", "te", "x-a-bin", "x-trace-bin",
                  "content-type"]
reserved_headers = st.dictionaries(st.sampled_from(RESERVED_NAMES),
                                   st.sampled_from(["!", "abc", "1n", "99999999H", "x", "trailers", "gzip", "13",
                                                    "%%%", "AAAA", "application/grpc", "application/grpc-web",
                                                    "application/grpc+json", "identity"]),
                                   min_size=1, max_size=3)
ODD_METHODS = ["OPTIONS", "HEAD", "PUT", "TRACE", "PROPFIND", "PATCH", "DELETE", "POST", "GET"]


@pytest.mark.db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[1]}-{e[0]}-{ENDPOINTS.index(e)}")
def test_fuzz_client_grpc_headers_and_odd_methods(gateway, token, settings, endpoint):
    """Never a 5xx, never an answer without a body (HEAD and 204 aside)."""
    secret_token = {"user": token(1), "user2": token(2), "user-key-admin": token(1), "huge-sub": token(1)}
    seen = []
    with gateway.client() as client:
        @settings_for_fuzz_half
        @given(requests(endpoint, secret_token), reserved_headers, st.sampled_from(ODD_METHODS + [endpoint[1]] * 3))
        def run(request, extra, method):
            family, _, path, query, headers, content = request
            url = path + ("?" + urlencode(query, errors="surrogatepass") if query else "")
            r = client.request(method, url, headers={**headers, **extra}, content=content)
            seen.append(r.status_code)
            assert r.status_code < 500 or documented_500(family, path, r), (method, path, extra, r.status_code,
                                                                            r.text[:300])
            if method != "HEAD" and r.status_code != 204:
                assert r.content, (method, path, extra, r.status_code, dict(r.headers))

        run()
    assert len(seen) >= min(EXAMPLES_PER_PATH // 2, 20)


def _raw_exchange(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


PATHS = ["/ping", "/api/v2/vip/configs", "/api/v2/vip/orders", "/charge/index", "/api/recharge",
         "/api/recharge/history", "/index.php?s=/api/recharge/center", "/v1/openapi/order/query", "/nope"]
garbage_requests = st.builds(
    lambda method, path, junk, where, header: (method + b" " + (path + junk if where == "path" else path)
                                               + b" HTTP/1.1\r\nHost: x\r\n"
                                               + (b"X-J: a" + junk + b"b\r\n" if where == "header" else b"")
                                               + header + b"Connection: close\r\n\r\n"),
    st.sampled_from([b"GET", b"get", b"Post", b"FOO", b"G@T", b"OPTIONS", b"POST", b"DELETE"]),
    st.sampled_from([p.encode() for p in PATHS]),
    st.sampled_from([b"#x", b" x", b"\x01", b"\x7f", b"\x00", b"%00", b"%zz", b"\xff", b"\t", b"/../..", b"//", b"?a=\x02"]),
    st.sampled_from(["path", "header"]),
    st.sampled_from([b"", b"content-type: application/grpc\r\ncontent-length: 0\r\n", b"te: trailers\r\n",
                     b"x-a-bin: !\r\n", b"grpc-timeout: abc\r\n", b"content-length: 0\r\n"]),
)


@pytest.mark.db
def test_fuzz_codec_level_garbage(gateway):
    """Requests Envoy's HTTP codec refuses: always a 4xx (or a family's in-body refusal)
    with a body whose length is what content-length says."""
    seen = []

    @settings(max_examples=EXAMPLES_PER_PATH * 2, deadline=None, derandomize=True, database=None)
    @given(garbage_requests)
    def run(raw):
        answer = _raw_exchange(gateway.envoy.http_port, raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        seen.append(status)
        assert status < 500, (raw, answer[:300])
        assert body, (raw, answer[:300])
        lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")]
        assert not lengths or int(lengths[0]) == len(body), (raw, answer[:300])

    run()
    assert len(seen) >= 20


settings_for_fuzz_half = settings(settings_for_fuzz, max_examples=max(EXAMPLES_PER_PATH // 2, 1))
