"""One client address cannot hold the public door (issue 18 §2; docs/edge.md: Per client
IP): past EDGE_MAX_CONNECTIONS_PER_IP open connections from one address, its next ones are
closed at once, while another address is still served. Through the real Envoy and its Wasm
network filter (gateway/per_ip_connections.wat); 127.0.0.2 is a second loopback address."""

import socket
import threading
import time

import httpx
import pytest

from server.platform.envoy import EdgeConfig, Envoy
from server.platform.settings import Settings
from tests.conftest import free_port

PER_IP = 5


@pytest.fixture(scope="module")
def door(grpc_server, tmp_path_factory):
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-per-ip"),
                  log_path=tmp_path_factory.getbasetemp() / "envoy-per-ip.log",
                  edge=EdgeConfig(max_connections=100, max_connections_per_ip=PER_IP))
    envoy.start()
    yield envoy
    envoy.stop()


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def _ping(s: socket.socket) -> bytes:
    """The first line of /ping's answer on this connection, b"" if Envoy closed it."""
    try:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(4096).split(b"\r\n", 1)[0]
    except OSError:
        return b""


def _quiet(envoy: Envoy, open_: int = 0, deadline: float = 10.0) -> None:
    """Waits until the public door has `open_` connections: Envoy has seen the others close
    (an address's count goes down then, a moment after the client closed)."""
    stop = time.monotonic() + deadline
    stat = f"listener.127.0.0.1_{envoy.http_port}.downstream_cx_active"
    while True:
        text = httpx.get(f"http://127.0.0.1:{envoy.admin_port}/stats?filter=^{stat}$", timeout=5).text
        if text.strip().endswith(f": {open_}"):
            return
        assert time.monotonic() < stop, text
        time.sleep(0.05)


def test_the_default_is_documented_and_rendered():
    assert Settings().edge_max_connections_per_ip == 256
    assert EdgeConfig().max_connections_per_ip == 256


@pytest.mark.db
def test_one_address_over_its_limit_is_closed_while_another_is_served(door):
    _quiet(door)
    held = [_connect(door.http_port, "127.0.0.1") for _ in range(PER_IP)]
    try:
        assert [_ping(s) for s in held] == [b"HTTP/1.1 200 OK"] * PER_IP  # Envoy has counted them
        over = [_connect(door.http_port, "127.0.0.1") for _ in range(3)]
        assert [_ping(s) for s in over] == [b""] * 3
        other = _connect(door.http_port, "127.0.0.2")
        assert _ping(other) == b"HTTP/1.1 200 OK"
        assert [_ping(s) for s in held] == [b"HTTP/1.1 200 OK"] * PER_IP
        for s in over + [other]:
            s.close()
    finally:
        for s in held:
            s.close()
    # Closed connections (the refused ones too) are given back: the address is served again.
    _quiet(door)
    again = [_connect(door.http_port, "127.0.0.1") for _ in range(PER_IP)]
    assert [_ping(s) for s in again] == [b"HTTP/1.1 200 OK"] * PER_IP
    for s in again:
        s.close()


@pytest.mark.db
def test_a_burst_from_one_address_gets_exactly_its_limit(door):
    """Connections opened at once land on both of Envoy's workers: the count is shared."""
    for _ in range(5):
        _quiet(door)
        socks: list[socket.socket] = []
        lock = threading.Lock()

        def open_one():
            s = _connect(door.http_port, "127.0.0.1")
            with lock:
                socks.append(s)

        threads = [threading.Thread(target=open_one) for _ in range(PER_IP * 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.2)
        answers = [_ping(s) for s in socks]
        for s in socks:
            s.close()
        assert answers.count(b"HTTP/1.1 200 OK") == PER_IP, answers
    assert httpx.get(f"http://127.0.0.1:{door.http_port}/ping", timeout=5).status_code == 200


@pytest.mark.db
def test_the_per_address_count_and_the_total_cap_keep_each_other_right(grpc_server, tmp_path_factory):
    """Connections the total cap closes are not uncounted from their address, and those
    this limit closes leave the total cap working (with the filters the other way round,
    the cap refused everything after the first per-address refusal)."""
    envoy = Envoy(free_port(), free_port(), grpc_server.port, tmp_path_factory.mktemp("envoy-per-ip-cap"),
                  edge=EdgeConfig(max_connections=4, max_connections_per_ip=3))
    envoy.start()
    try:
        _quiet(envoy)
        others = [_connect(envoy.http_port, "127.0.0.2") for _ in range(3)]
        mine = _connect(envoy.http_port, "127.0.0.1")
        assert [_ping(s) for s in others + [mine]] == [b"HTTP/1.1 200 OK"] * 4
        capped = [_connect(envoy.http_port, "127.0.0.1") for _ in range(3)]
        assert [_ping(s) for s in capped] == [b""] * 3  # the total cap (4)
        for s in capped + others:
            s.close()
        _quiet(envoy, 1)  # `mine` is still open
        more = [_connect(envoy.http_port, "127.0.0.1") for _ in range(3)]
        # `mine` still holds one of 127.0.0.1's three
        assert sorted(_ping(s) for s in more) == [b"", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
        for s in more + [mine]:
            s.close()
        _quiet(envoy)
        assert _ping(_connect(envoy.http_port, "127.0.0.2")) == b"HTTP/1.1 200 OK"
    finally:
        envoy.stop()
