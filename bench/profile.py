"""One or more bench rows under load, to look inside: `make bench`'s stack (same pinning,
same h2load loads) with the server's own view printed beside the client's.

    .venv/bin/python -m bench.profile CreateVipOrder                    # one row
    .venv/bin/python -m bench.profile CreateVipOrder CheckVipOrder      # reads beside writes
    .venv/bin/python -m bench.profile --db postgresql --spy var/spy.txt GetVipOrder

For each call: req/s, p50 and p99 as h2load saw them and the mean time the server itself
spent (its `vipay_rpc_duration_seconds`): a large gap means the calls waited in front of
our code. Then the server's CPU (user and system) over the load. `--spy FILE` records the
server with py-spy (`--gil`: only samples holding the GIL, collapsed stacks; installed
with pip when missing). With several calls, CreateVipOrder gets the bench's writer load
(4 x 4 streams) and every other call the full one (16 x 16), as in the bench's
"beside" row. PostgreSQL: TEST_DATABASE_URL or BENCH_DATABASE_URL."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from vipay.membership.v1 import membership_pb2, membership_pb2_grpc

from bench import data
from bench.__main__ import GRPC_LOAD, SMALL_HISTORY, WRITER_LOAD, Stack, postgres_database, token
from bench.loadgen import ensure_tools, grpc_frame, h2load

SERVICE = "/vipay.membership.v1.MembershipService/"
CALLS = ("GetVipConfigs", "GetVipOrder", "CheckVipOrder", "CreateVipOrder")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def server_means(metrics_port: int) -> dict[str, tuple[float, int]]:
    """method -> (mean seconds, count) from the server's duration histogram."""
    sums: dict[str, dict[str, float]] = {}
    for line in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f"vipay_rpc_duration_seconds{suffix}{{"):
                labels, value = line.rsplit(" ", 1)
                method = labels.split('method="', 1)[1].split('"', 1)[0].rsplit("/", 1)[-1]
                sums.setdefault(method, {}).setdefault(suffix, 0.0)
                sums[method][suffix] += float(value)
    return {m: (d["_sum"] / d["_count"], int(d["_count"])) for m, d in sums.items() if d.get("_count")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calls", nargs="+", choices=CALLS)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--spy", metavar="FILE", help="record the server with py-spy into FILE")
    args = parser.parse_args()
    ensure_tools()
    if args.spy and shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="vipay-profile-"))
    drop = None
    if args.db == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
        if not base:
            sys.exit("--db postgresql needs TEST_DATABASE_URL or BENCH_DATABASE_URL")
        url, drop = postgres_database(base)
    secret = os.urandom(32).hex()
    stack = Stack(url, workdir, secret)
    try:
        stack.prepare()
        data.load(url, 0, SMALL_HISTORY, with_history_user=True)  # as make bench
        stack.start()
        user_token = token(secret, 1)
        headers = {"authorization": f"Bearer {user_token}"}
        create = membership_pb2.CreateVipOrderRequest(timezone="Asia/Shanghai", duration=3, level="middle",
                                                      pay_method="Alipay_AopApp")
        stub = membership_pb2_grpc.MembershipServiceStub(stack.channel)
        order_id = stub.CreateVipOrder(create, metadata=tuple(headers.items())).id
        requests = {"GetVipConfigs": membership_pb2.GetVipConfigsRequest(),
                    "GetVipOrder": membership_pb2.GetVipOrderRequest(order=order_id),
                    "CheckVipOrder": membership_pb2.CheckVipOrderRequest(order_id=order_id),
                    "CreateVipOrder": create}
        base_url = f"http://127.0.0.1:{stack.grpc_port}{SERVICE}"
        results: dict[str, object] = {}

        def load(call: str) -> None:
            shape = WRITER_LOAD if call == "CreateVipOrder" and len(args.calls) > 1 else GRPC_LOAD
            results[call] = h2load(base_url + call, grpc_frame(requests[call]), headers, seconds=args.seconds,
                                   warmup=1, **shape)

        before_means = server_means(stack.metrics_port)
        threads = [threading.Thread(target=load, args=(c,)) for c in args.calls]
        for t in threads:
            t.start()
        time.sleep(1.5)  # past the warm-up
        pid = stack.server.pid
        user0, sys0 = cpu_seconds(pid)
        started = time.monotonic()
        spy = None
        if args.spy:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-d",
                                    str(max(1, int(args.seconds - 2))), "-r", "250", "--gil", "--format", "raw",
                                    "-o", args.spy, "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(max(1.0, args.seconds - 2))
        user1, sys1 = cpu_seconds(pid)
        spent = time.monotonic() - started
        for t in threads:
            t.join()
        if spy:
            spy.wait(30)
        after_means = server_means(stack.metrics_port)
        for call in args.calls:
            r = results[call].as_dict()
            mean, count = after_means.get(call, (0.0, 0))
            old_mean, old_count = before_means.get(call, (0.0, 0))
            n = count - old_count
            server_ms = (mean * count - old_mean * old_count) / n * 1000 if n else float("nan")
            print(f"{call:16} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms  "
                  f"in flight {r['in_flight']:4}  server mean {server_ms:6.2f} ms")
        print(f"server CPU over {spent:.1f} s: user {100 * (user1 - user0) / spent:.0f} %, "
              f"system {100 * (sys1 - sys0) / spent:.0f} % of one core")
        if args.spy:
            print(f"py-spy samples (collapsed stacks, GIL holders only): {args.spy}")
    finally:
        stack.stop()
        if drop:
            drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
