"""The console's own Envoy listener (docs/console.md): it serves the built console and
passes gRPC-Web to the internal services; the public door serves none of it."""

from __future__ import annotations

import struct

import httpx
import pytest
from vipay.operators.v1 import operators_pb2 as pb

from server.platform.envoy import Envoy
from tests.conftest import free_port

LOGIN = "/vipay.operators.v1.OperatorService/Login"
GRPC_WEB = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A stand-in for console/dist (the real build is driven by make console-test)."""
    dist = tmp_path_factory.mktemp("dist")
    (dist / "assets").mkdir()
    (dist / "index.html").write_text("<!doctype html><title>console-index</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log('console-bundle')")
    (dist / "assets" / "app-1234.css").write_text("body{}")
    return dist


@pytest.fixture(scope="module")
def doors(grpc_server, built, tmp_path_factory):
    console_port = free_port()
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-console"),
                  console=("127.0.0.1", console_port, built))
    envoy.start()
    yield f"http://127.0.0.1:{envoy.http_port}", f"http://127.0.0.1:{console_port}"
    envoy.stop()


def grpc_web(url: str, message) -> tuple[bytes, dict[str, str]]:
    body = message.SerializeToString()
    r = httpx.post(url + LOGIN, content=b"\x00" + struct.pack(">I", len(body)) + body, headers=GRPC_WEB, timeout=10)
    assert r.status_code == 200, r.text
    frames, trailers, data = r.content, {}, b""
    while frames:
        flag, size = frames[0], struct.unpack(">I", frames[1:5])[0]
        chunk, frames = frames[5:5 + size], frames[5 + size:]
        if flag & 0x80:
            trailers = dict(line.split(":", 1) for line in chunk.decode().strip().split("\r\n"))
        else:
            data = chunk
    return data, {k.strip().lower(): v.strip() for k, v in trailers.items()}


def test_the_console_door_serves_the_spa_and_grpc_web(app, doors):
    _, console = doors
    app.operators.create("door-op", "support", "door password 1")
    index = httpx.get(console + "/")
    assert index.status_code == 200 and "console-index" in index.text
    assert index.headers["content-type"].startswith("text/html") and index.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert index.headers["x-frame-options"] == "DENY"
    js = httpx.get(console + "/assets/app-1234.js")
    assert js.text == "console.log('console-bundle')" and js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    assert "console-index" in httpx.get(console + "/catalog/deep/link").text  # the SPA routes it

    data, trailers = grpc_web(console, pb.LoginRequest(name="door-op", password="door password 1"))
    assert trailers["grpc-status"] == "0"
    answer = pb.LoginResponse.FromString(data)
    assert answer.operator.name == "door-op" and answer.credential
    _, refused = grpc_web(console, pb.LoginRequest(name="door-op", password="wrong password"))
    assert refused["grpc-status"] == "16"  # UNAUTHENTICATED


def test_the_public_door_serves_none_of_the_console(app, doors):
    public, _ = doors
    app.operators.create("door-op2", "admin", "door password 1")
    for path in ("/", "/index.html", "/assets/app-1234.js", "/assets/app-1234.css", "/catalog"):
        r = httpx.get(public + path)
        assert r.status_code == 404 and "console" not in r.text, path
    # The console's RPCs: neither as gRPC-Web nor as a JSON POST.
    body = pb.LoginRequest(name="door-op2", password="door password 1").SerializeToString()
    r = httpx.post(public + LOGIN, content=b"\x00" + struct.pack(">I", len(body)) + body, headers=GRPC_WEB)
    assert r.status_code == 415 and not r.content.startswith(b"\x00")
    r = httpx.post(public + LOGIN, json={"name": "door-op2", "password": "door password 1"})
    assert r.status_code == 404 and "credential" not in r.text


def test_the_console_door_passes_only_our_services(doors):
    _, console = doors
    for path in ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "/grpc.health.v1.Health/Check"):
        r = httpx.post(console + path, content=b"\x00\x00\x00\x00\x00", headers=GRPC_WEB)
        assert r.status_code == 404, path  # no route: only /vipay.* goes upstream, other paths are GET-only files
