"""The callback-throughput row (issue 17 §3): a backlog of merchant status callbacks,
made by real charges through Envoy while no dispatcher runs, then drained by ONE server
process (its dispatcher) into a fast local receiver. Target: >= 200 callbacks/s, every
report delivered once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from sqlalchemy import create_engine, text

from clients.merchant_client import MerchantClient

CALLBACKS = int(os.environ.get("BENCH_CALLBACKS", "1000"))
CALLBACK_TARGET = 200.0  # callbacks/s from one process
MERCHANT, BUSINESS, PRODUCT, ACCOUNT, PRICE_FEN = "9001", "9001", "87103", "bench-account", 451


class Receiver:
    """A fast merchant endpoint: answers SUCCESS at once and notes when each report came."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.bodies: set[bytes] = set()
        self.bodies_in_order: list[bytes] = []
        lock = self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the dispatcher reuses its connections

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    outer.arrivals.append(time.monotonic())
                    outer.bodies.add(body)
                    outer.bodies_in_order.append(body)
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", "7")
                self.end_headers()
                self.wfile.write(b"SUCCESS")

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_backlog(database_url: str, http_base: str, receiver_url: str) -> int:
    """A merchant and CALLBACKS charges through the gateway (signed, as merchants send them)."""
    from server.merchant.merchants import MerchantRegistry
    from server.platform.database import make_engine, make_session_factory
    from server.platform.unit_of_work import UnitOfWork

    engine = make_engine(database_url if "+psycopg" in database_url or database_url.startswith("sqlite")
                         else database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        registry = MerchantRegistry(partial(UnitOfWork, make_session_factory(engine)))
        keys = registry.create(MERCHANT, "bench merchant", [BUSINESS], callback_url=receiver_url, rsa=True)
        registry.set_product(MERCHANT, PRODUCT, "middle", 3, PRICE_FEN)
        registry.top_up(MERCHANT, (CALLBACKS + 10) * PRICE_FEN)
        registry.link_account(ACCOUNT, 777, "15012616978")
    finally:
        engine.dispose()
    clients = threading.local()

    def charge(i: int) -> bool:
        if not hasattr(clients, "c"):
            clients.c = MerchantClient(http_base, MERCHANT, BUSINESS, private_key_pem=keys.rsa_private_key)
        answer = clients.c.vip_charge(PRODUCT, ACCOUNT, f"bench-{i}", callback_url=receiver_url)
        return answer.get("status") == 200

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(charge, range(CALLBACKS)))


def drain(env: dict, database_url: str, receiver: Receiver, server_cpu: str, workdir, root,
          on_start: Callable[[int], object] | None = None) -> dict:
    """One server process with its dispatcher on; the backlog's delivery rate. `on_start`:
    given the server's pid once it answers (bench/rows.py records it with py-spy)."""
    grpc_port = env["GRPC_PORT"]
    server = subprocess.Popen(["taskset", "-c", server_cpu, sys.executable, "-m", "server", "serve"],
                              env=dict(env, OPENAPI_DISPATCHER_ENABLED="true"), cwd=root,
                              stdout=subprocess.DEVNULL, stderr=open(workdir / "callbacks-server.log", "ab"))
    try:
        grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{grpc_port}")).result(timeout=30)
        if on_start:
            on_start(server.pid)
        started = time.monotonic()
        deadline = started + max(60.0, CALLBACKS / 20)
        while len(receiver.arrivals) < CALLBACKS and time.monotonic() < deadline:
            time.sleep(0.05)
        arrivals = sorted(receiver.arrivals)
    finally:
        server.terminate()
        server.wait(30)
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if database_url.startswith("postgresql://") else database_url)
    with engine.connect() as conn:
        delivered = conn.execute(text("SELECT count(*) FROM merchant_callbacks WHERE state = 'delivered'")).scalar()
    engine.dispose()
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
    return {"callbacks": CALLBACKS, "received": len(arrivals), "distinct_reports": len(receiver.bodies),
            "delivered_in_db": delivered, "seconds": round(span, 3),
            "per_second": round((len(arrivals) - 1) / span, 1) if len(arrivals) > 1 else 0.0,
            "first_after_start_s": round(arrivals[0] - started, 3) if arrivals else None}
