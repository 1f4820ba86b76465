"""The overload row (issue 17 §2): a status read (GET /api/v2/vip/orders/{id}) through
Envoy at the concurrency that saturates the server, then at 4x it, with payment
notifications sent alongside. h2load over HTTP/1.1 logs each request's status and
latency, so admitted answers (2xx) and refusals (503) are measured apart.

Targets at 4x: goodput >= 90 % of the saturated throughput, p99 of admitted <= 1 s,
p99 of refusals <= 50 ms, 0 notifications refused."""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.loadgen import LOADGEN_CPU, _percentile

SATURATING = 32  # connections: the Envoy rows' load, which keeps the server's core busy
FACTOR = 4
GOODPUT_TARGET, ADMITTED_P99_MS, REFUSED_P99_MS = 0.90, 1000.0, 50.0


def h1load(url: str, headers: dict[str, str], *, seconds: float, warmup: float, connections: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="vipay-h1load-") as tmp:
        log = Path(tmp, "requests.tsv")
        cmd = ["taskset", "-c", LOADGEN_CPU, "h2load", "--h1", "-t", "1", "-c", str(connections), "-m", "1"]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        if warmup:
            subprocess.run(cmd + ["-D", f"{int(warmup * 1000)}ms", url], capture_output=True, timeout=warmup + 60)
        out = subprocess.run(cmd + ["-D", f"{int(seconds * 1000)}ms", "--log-file", str(log), url],
                             capture_output=True, text=True, timeout=seconds + 60)
        if out.returncode != 0:
            raise RuntimeError(f"h2load failed: {out.stderr or out.stdout}")
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    m = re.search(r"(\d+) errored, (\d+) timeout", out.stdout)
    start = min(int(r[0]) for r in rows)
    end = max(int(r[0]) + int(r[2]) for r in rows)
    span = max((end - start) / 1e6, 1e-9)
    admitted = sorted(int(r[2]) / 1000 for r in rows if r[1].startswith("2"))
    refused = sorted(int(r[2]) / 1000 for r in rows if r[1] in ("503", "429"))
    other = sum(1 for r in rows if not r[1].startswith("2") and r[1] not in ("503", "429"))
    return {"connections": connections, "goodput_rps": round(len(admitted) / span, 1),
            "admitted": len(admitted), "admitted_p50_ms": round(_percentile(admitted, 0.5), 3),
            "admitted_p99_ms": round(_percentile(admitted, 0.99), 3), "refused": len(refused),
            "refused_p99_ms": round(_percentile(refused, 0.99), 3) if refused else None,
            "other_failures": other + (int(m[1]) + int(m[2]) if m else 0)}


class Notifier:
    """Payment notifications (sandbox, signed) for fresh orders, sent one after another
    while the load runs; every one must be answered 2xx."""

    def __init__(self, http_base: str, orders: list[tuple[int, str, int]], sandbox) -> None:
        self._base, self._orders, self._sandbox = http_base, orders, sandbox
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self._base, timeout=30) as client:
            for order_id, trade_no, amount in self._orders:
                body = self._sandbox.notification_for(trade_no, amount, "PAID")
                r = client.post(f"/api/v2/vip/orders/{order_id}/sandbox-callback", content=body,
                                headers={"content-type": "application/x-www-form-urlencoded"})
                self.statuses.append(r.status_code)
                time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(120)


def verdicts(saturated: dict, overloaded: dict, notifications: list[int]) -> list[tuple[str, bool]]:
    goodput = overloaded["goodput_rps"] / max(saturated["goodput_rps"], 1e-9)
    refused_p99 = overloaded["refused_p99_ms"]
    return [
        (f"goodput {goodput:.2f} of saturated (>= {GOODPUT_TARGET})", goodput >= GOODPUT_TARGET),
        (f"admitted p99 {overloaded['admitted_p99_ms']:.0f} ms (<= {ADMITTED_P99_MS:.0f})",
         overloaded["admitted_p99_ms"] <= ADMITTED_P99_MS),
        (f"refusals p99 {refused_p99 if refused_p99 is not None else float('nan'):.1f} ms (<= {REFUSED_P99_MS:.0f})",
         refused_p99 is None or refused_p99 <= REFUSED_P99_MS),
        (f"notifications refused {sum(1 for s in notifications if s >= 300)} of {len(notifications)} (0)",
         bool(notifications) and all(s < 300 for s in notifications)),
    ]
