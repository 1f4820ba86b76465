"""Client-sent gRPC protocol headers never reach the gRPC server, a headers-only gRPC
error still answers a body, and what Envoy refuses before any filter saw it (the HTTP
codec) is never an empty answer: the family's envelope where the path is known
(issue 18 §1, §3; docs/edge.md)."""

import socket

import pytest

RESERVED = [
    {"x-a-bin": "!"}, {"grpc-timeout": "abc"}, {"grpc-encoding": "x"}, {"grpc-accept-encoding": "x"},
    {"te": "gzip"}, {"grpc-status": "13"}, {"grpc-message": "x"}, {"Grpc-Timeout": "1n"}, {"x-trace-bin": "%%%"},
]

# (method, path, json body or None): one documented operation of each family.
OPERATIONS = [
    ("GET", "/api/v2/vip/configs", None),
    ("GET", "/api/v2/vip/orders", None),
    ("POST", "/api/v2/vip/orders", {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                    "pay_method": "Alipay_AopApp"}),
    ("GET", "/charge/index", None),
    ("GET", "/api/recharge", None),
    ("GET", "/api/recharge/history", None),
    ("GET", "/index.php?s=/api/recharge/center", None),
    ("POST", "/v1/openapi/merchant/balance", {}),
    ("GET", "/ping", None),
]


@pytest.mark.db
@pytest.mark.parametrize("header", RESERVED, ids=lambda h: next(iter(h)))
def test_client_grpc_headers_are_stripped_on_every_family(gateway, token, header):
    with gateway.client(token(1), storeId="10001") as c:
        for method, path, body in OPERATIONS:
            plain = c.request(method, path, json=body)
            with_header = c.request(method, path, json=body, headers=header)
            assert with_header.status_code == plain.status_code < 500, (path, with_header.status_code,
                                                                        with_header.text[:200])
            assert with_header.content, path


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _split(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.db
@pytest.mark.parametrize("request_line, extra", [
    (b"get /api/v2/vip/configs HTTP/1.1", b""),
    (b"FOO /charge/index HTTP/1.1", b""),
    (b"GET /api/v2/vip/con figs HTTP/1.1", b""),
    (b"GET /charge/index#x HTTP/1.1", b""),
    (b"GET /api/v2/vip/configs#frag HTTP/1.1", b""),
    (b"GET /charge/index HTTP/1.1", b"X-A: a\x01b\r\n"),
    (b"POST /ping#x HTTP/1.1", b"content-type: application/grpc\r\ncontent-length: 0\r\n"),
    (b"POST /ping HTTP/1.1", b"content-type: application/grpc\r\ncontent-length: 0\r\n"),
])
def test_codec_level_refusals_are_4xx_with_a_body(gateway, request_line, extra):
    answer = _raw(gateway.envoy.http_port, request_line + b"\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n")
    status, headers, body = _split(answer)
    assert 400 <= status < 500 or (status in (200, 422) and headers["content-type"] == "application/json"), answer
    assert body and int(headers["content-length"]) == len(body), answer


@pytest.mark.db
def test_a_fragment_on_a_family_path_gets_the_family_envelope(gateway):
    status, headers, body = _split(_raw(gateway.envoy.http_port,
                                        b"GET /charge/index#x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (status, headers["content-type"], body) == (200, "application/json", b'{"c":400,"m":"Bad Request","d":null}')
    status, _, body = _split(_raw(gateway.envoy.http_port,
                                  b"GET /api/v2/vip/configs#x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert (status, body) == (422, b'{"message":"Bad Request","errors":{}}')
