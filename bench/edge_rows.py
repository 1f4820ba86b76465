"""`make bench`'s issue-18 rows only, several rounds in one stack (the same pinning, wrk
load and data as `make bench`): the anonymous catalog read from Envoy's cache beside the
same read served by the server, and the 001 history page of a 10k-order user beside
CheckVipOrder, all through Envoy. Each round prints both ratios; rounds alternate the
rows so a slow moment of the shared host hits both sides.

    .venv/bin/python -m bench.edge_rows                  # SQLite, 3 rounds
    .venv/bin/python -m bench.edge_rows --db postgresql --rounds 5

PostgreSQL: TEST_DATABASE_URL or BENCH_DATABASE_URL."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from vipay.membership.v1 import membership_pb2

from bench import data
from bench.__main__ import (
    BENCH_USER,
    HEAVY_USER,
    HEAVY_USER_ORDERS,
    HTTP_CONNECTIONS,
    SECONDS,
    SMALL_HISTORY,
    WARMUP,
    Stack,
    postgres_database,
    token,
)
from bench.loadgen import ensure_tools, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    workdir = Path(tempfile.mkdtemp(prefix="vipay-edge-rows-"))
    drop = None
    if args.db == "postgresql":
        url, drop = postgres_database(os.environ.get("BENCH_DATABASE_URL") or os.environ["TEST_DATABASE_URL"])
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    secret = os.urandom(32).hex()
    st = Stack(url, workdir, secret)
    try:
        st.prepare()
        data.load(url, 0, SMALL_HISTORY, with_history_user=True)
        data.load_user(url, HEAVY_USER, HEAVY_USER_ORDERS)
        st.start()
        from vipay.membership.v1 import membership_pb2_grpc

        vip = membership_pb2_grpc.MembershipServiceStub(st.channel)
        auth = {"authorization": f"Bearer {token(secret, BENCH_USER)}"}
        create = membership_pb2.CreateVipOrderRequest(timezone="Asia/Shanghai", duration=3, level="middle",
                                                      pay_method="Alipay_AopApp")
        order_id = vip.CreateVipOrder(create, metadata=tuple(auth.items())).id
        base = f"http://127.0.0.1:{st.http_port}"
        rows = {
            "uncached": ("/api/v2/vip/configs", auth),
            "cached": ("/api/v2/vip/configs", {}),
            "check": (f"/api/v2/vip/check-order/{order_id}", auth),
            "page": ("/api/v2/vip/orders?offset=0&limit=15", {"authorization": f"Bearer {token(secret, HEAVY_USER)}"}),
        }
        ratios: dict[str, list[float]] = {"cache": [], "page": []}
        for n in range(args.rounds):
            order = list(rows) if n % 2 == 0 else list(reversed(rows))
            got = {}
            for key in order:
                path, headers = rows[key]
                r = wrk(base + path, dict(headers), seconds=SECONDS, warmup=WARMUP, connections=HTTP_CONNECTIONS)
                if r.bad:
                    raise SystemExit(f"{key}: {r.bad} non-2xx answers or socket errors")
                got[key] = r.rps
            ratios["cache"].append(got["cached"] / got["uncached"])
            ratios["page"].append(got["page"] / got["check"])
            print(f"{args.db} round {n + 1}: " + ", ".join(f"{k} {v:.0f}/s" for k, v in got.items())
                  + f"; cached/uncached x{ratios['cache'][-1]:.2f}, page/check {ratios['page'][-1]:.2f}", flush=True)
        print(f"{args.db} median: cached/uncached x{statistics.median(ratios['cache']):.2f} (target 5), "
              f"page/check {statistics.median(ratios['page']):.2f} (target 0.5)")
    finally:
        st.stop()
        if drop:
            drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
