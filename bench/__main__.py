"""`make bench`: throughput and p99 of GetVipConfigs and CreateVipOrder over gRPC
and through Envoy, each as a ratio to the no-op Ping on the same server, all
measured in this one run (absolute numbers depend on the machine; ratios travel).

The server runs in its own process (`python -m server serve`) on a throwaway
SQLite database, Envoy in front of it; the load comes from client threads here."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
from vipay.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from vipay.membership.v1 import membership_pb2, membership_pb2_grpc

from server.platform.auth import issue_token
from server.platform.envoy import Envoy
from server.platform.settings import ROOT, Settings

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
WARMUP = 100


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(call, n: int, concurrency: int) -> dict:
    """Runs `call()` n times from `concurrency` threads; returns rps and p99 (ms)."""
    for _ in range(WARMUP // concurrency + 1):
        call()
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = n // concurrency

    def worker():
        mine = []
        for _ in range(per_thread):
            t = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="vipay-bench-"))
    grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
    secret = os.urandom(32).hex()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}", GRPC_PORT=str(grpc_port),
               JWT_SECRET=secret, SANDBOX_SECRET=secret, LOG_LEVEL="WARNING",
               # One user places every order here: the abuse limits would refuse most of them.
               ORDER_LIMIT_PER_USER="100000000", ORDER_LIMIT_PER_IP="100000000")
    py = sys.executable
    for cmd in ("migrate", "seed"):
        subprocess.run([py, "-m", "server", cmd], env=env, check=True, capture_output=True, cwd=ROOT)
    server = subprocess.Popen([py, "-m", "server", "serve"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=open(workdir / "server.log", "wb"))
    envoy = Envoy(http_port, admin_port, grpc_port, workdir, log_path=workdir / "envoy.log")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        envoy.start()
        s = Settings(_env_file=None, jwt_secret=secret)
        token = issue_token(secret, s.jwt_issuer, s.jwt_audience, 1)
        md = (("authorization", f"Bearer {token}"),)
        diag = diagnostics_pb2_grpc.DiagnosticsServiceStub(channel)
        vip = membership_pb2_grpc.MembershipServiceStub(channel)
        order = membership_pb2.CreateVipOrderRequest(timezone="Asia/Shanghai", duration=3, level="middle",
                                                     pay_method="Alipay_AopApp")
        local = threading.local()

        def http() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}",
                                            headers={"Authorization": f"Bearer {token}"})
            return local.client

        def check(response: httpx.Response, status: int) -> None:
            if response.status_code != status:
                raise RuntimeError(f"{response.status_code} {response.text[:200]}")

        order_json = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
        cases = {
            "grpc": {
                "noop (Ping)": lambda: diag.Ping(diagnostics_pb2.PingRequest()),
                "GetVipConfigs": lambda: vip.GetVipConfigs(membership_pb2.GetVipConfigsRequest()),
                "CreateVipOrder": lambda: vip.CreateVipOrder(order, metadata=md),
            },
            "envoy": {
                "noop (Ping)": lambda: check(http().get("/ping"), 200),
                "GetVipConfigs": lambda: check(http().get("/api/v2/vip/configs"), 200),
                "CreateVipOrder": lambda: check(http().post("/api/v2/vip/orders", json=order_json), 201),
            },
        }
        results: dict = {}
        for path, ops in cases.items():
            for name, fn in ops.items():
                results[(path, name)] = measure(fn, REQUESTS, CONCURRENCY)
        print(f"make bench: {REQUESTS} requests per case, {CONCURRENCY} client threads, SQLite, "
              f"{os.cpu_count()} cores (client, server and Envoy share them)\n")
        print(f"{'path':6} {'rpc':15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'rps/noop':>9} {'p99/noop':>9}")
        report = {}
        for (path, name), r in results.items():
            base = results[(path, "noop (Ping)")]
            row = dict(r, rps_ratio=r["rps"] / base["rps"], p99_ratio=r["p99_ms"] / base["p99_ms"])
            report[f"{path}:{name}"] = {k: round(v, 3) for k, v in row.items()}
            print(f"{path:6} {name:15} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                  f"{row['rps_ratio']:9.2f} {row['p99_ratio']:9.2f}")
        envoy_over_grpc = results[("envoy", "noop (Ping)")]["p99_ms"] / results[("grpc", "noop (Ping)")]["p99_ms"]
        print(f"\nEnvoy hop (noop p99, envoy/grpc): {envoy_over_grpc:.2f}x")
        (ROOT / "var").mkdir(exist_ok=True)
        (ROOT / "var" / "bench.json").write_text(json.dumps(report, indent=2))
        print("raw figures: var/bench.json")
    finally:
        envoy.stop()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
