"""The overload and callback-throughput rows of `make bench` alone, repeated, to tell
noise from a real cost (issue 17 §3): the same stack, pinning and loads as `make bench`,
without the other rows (minutes each) in between.

    .venv/bin/python -m bench.rows overload --db postgresql --repeat 3
    .venv/bin/python -m bench.rows callbacks --db postgresql --repeat 3 --spy var/spy-callbacks.txt

Prints each run's figures and verdicts with the host's load average beside them (the
host is shared: compare ratios within one run). `--spy FILE`: py-spy records the server
(GIL holders, collapsed stacks) during the last run. PostgreSQL: TEST_DATABASE_URL or
BENCH_DATABASE_URL."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from vipay.membership.v1 import membership_pb2, membership_pb2_grpc

from bench import callbacks, overload
from bench.__main__ import SECONDS, SERVER_CPU, WARMUP, ROOT, Stack, postgres_database, token
from bench.loadgen import LOADGEN_CPU, ensure_tools
from bench.profile import cpu_seconds


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def spy_on(pid: int, seconds: float, out: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-d",
                             str(max(1, int(seconds))), "-r", "250", "--gil", "--format", "raw", "-o", out,
                             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def cpu_share(pids: dict[str, int]):
    """Fills the dict it yields with each process's CPU (user + system, % of one core) over the block."""
    before = {name: sum(cpu_seconds(pid)) for name, pid in pids.items()}
    cores_before = {core: core_busy(core) for core in (LOADGEN_CPU, SERVER_CPU)}
    started = time.monotonic()
    shares: dict[str, int] = {}
    yield shares
    spent = time.monotonic() - started
    shares.update({name: round(100 * (sum(cpu_seconds(pid)) - before[name]) / spent) for name, pid in pids.items()})
    for core, (busy0, total0) in cores_before.items():  # everything on that core, other people's work included
        busy1, total1 = core_busy(core)
        shares[f"cpu{core} busy"] = round(100 * (busy1 - busy0) / max(total1 - total0, 1))


def core_busy(core: str) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return sum(ticks) - idle, sum(ticks)
    return 0, 1


def overload_row(url: str, workdir: Path, spy: str | None) -> list[str]:
    secret = os.urandom(32).hex()
    st = Stack(url, workdir, secret)
    st.prepare()
    st.start()
    try:
        from server.payments.sandbox import SandboxChannel

        auth = {"authorization": f"Bearer {token(secret, 1)}"}
        vip = membership_pb2_grpc.MembershipServiceStub(st.channel)
        create = membership_pb2.CreateVipOrderRequest(timezone="Asia/Shanghai", duration=3, level="middle",
                                                      pay_method="Alipay_AopApp")
        order_id = vip.CreateVipOrder(create, metadata=tuple(auth.items())).id
        fresh = [vip.CreateVipOrder(create, metadata=tuple(auth.items())) for _ in range(60)]
        http_base = f"http://127.0.0.1:{st.http_port}"
        read_url = f"{http_base}/api/v2/vip/orders/{order_id}"
        pids = {"server": st.server.pid, "envoy": st.envoy.process.pid}
        with cpu_share(pids) as saturated_cpu:
            saturated = overload.h1load(read_url, auth, seconds=SECONDS, warmup=WARMUP,
                                        connections=overload.SATURATING)
        notifier = overload.Notifier(http_base, [(o.id, o.trade_no, o.pay_amount) for o in fresh],
                                     SandboxChannel(secret))
        notifier.start()
        recording = spy_on(st.server.pid, SECONDS, spy) if spy else None
        with cpu_share(pids) as four_cpu:
            four = overload.h1load(read_url, auth, seconds=SECONDS, warmup=0,
                                   connections=overload.SATURATING * overload.FACTOR)
        notifier.join()
        if recording:
            recording.wait(30)
    finally:
        st.stop()
    lines = [f"saturated c={saturated['connections']}: {saturated['goodput_rps']:.0f}/s "
             f"p99 {saturated['admitted_p99_ms']:.1f} ms, refused {saturated['refused']}; "
             f"4x c={four['connections']}: {four['goodput_rps']:.0f}/s p50 {four['admitted_p50_ms']:.1f} "
             f"p99 {four['admitted_p99_ms']:.1f} ms, refused {four['refused']} (p99 {four['refused_p99_ms']} ms), "
             f"other {four['other_failures']}"]
    lines.append(f"CPU (% of one core) saturated: {saturated_cpu}; 4x: {four_cpu}")
    lines += [f"  {label}{' ok' if ok else ' MISSED'}" for label, ok in
              overload.verdicts(saturated, four, notifier.statuses)]
    return lines


def callbacks_row(url: str, workdir: Path, spy: str | None) -> list[str]:
    secret = os.urandom(32).hex()
    st = Stack(url, workdir, secret)
    st.prepare()
    st.start()
    receiver = callbacks.Receiver()
    try:
        charged = callbacks.make_backlog(url, f"http://127.0.0.1:{st.http_port}", receiver.url)
    finally:
        st.stop()
    recordings: list[subprocess.Popen] = []
    try:
        cb = callbacks.drain(st.env, url, receiver, SERVER_CPU, workdir, ROOT,
                             on_start=(lambda pid: recordings.append(spy_on(pid, 5, spy))) if spy else None)
        for recording in recordings:
            recording.wait(30)
    finally:
        receiver.stop()
    ok = cb["per_second"] >= callbacks.CALLBACK_TARGET
    return [f"charged {charged}; {cb['received']} received ({cb['distinct_reports']} distinct, "
            f"{cb['delivered_in_db']} delivered in the database) in {cb['seconds']:.2f} s = {cb['per_second']:.0f}/s "
            f"(>= {callbacks.CALLBACK_TARGET:.0f}){' ok' if ok else ' MISSED'}; first after "
            f"{cb['first_after_start_s']} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("row", choices=("overload", "callbacks"))
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--spy", metavar="FILE", help="record the server with py-spy (the last run) into FILE")
    args = parser.parse_args()
    ensure_tools()
    if args.spy and shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    for run in range(1, args.repeat + 1):
        workdir = Path(tempfile.mkdtemp(prefix="vipay-rows-"))
        drop = None
        if args.db == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
            if not base:
                sys.exit("--db postgresql needs TEST_DATABASE_URL or BENCH_DATABASE_URL")
            url, drop = postgres_database(base)
        spy = args.spy if run == args.repeat else None
        try:
            before = load_average()
            started = time.monotonic()
            lines = (overload_row if args.row == "overload" else callbacks_row)(url, workdir, spy)
            print(f"{args.db} {args.row} run {run}/{args.repeat} ({time.monotonic() - started:.0f} s; "
                  f"load average before {before}, after {load_average()}):")
            print("\n".join("  " + line for line in lines), flush=True)
        finally:
            if drop:
                drop()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
