"""The load generators: h2load (gRPC over h2c) and wrk (HTTP/1.1 through Envoy),
both native, pinned to their own core so the Python server is what saturates.

h2load speaks gRPC as plain HTTP/2: a POST of one length-prefixed protobuf frame
with `content-type: application/grpc` and `te: trailers`. It only sees the HTTP
status (always 200 for gRPC), so the grpc-status of the answers is verified
elsewhere (bench/__main__.py: server-side counters, database counts, a sample call)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LOADGEN_CPU = os.environ.get("BENCH_LOADGEN_CPU", "0")


def ensure_tools() -> None:
    """h2load (nghttp2-client) and wrk from Debian when missing (we are root on the dev/CI machines)."""
    missing = [pkg for tool, pkg in (("h2load", "nghttp2-client"), ("wrk", "wrk")) if shutil.which(tool) is None]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, capture_output=True)
    for tool in ("h2load", "wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"make bench needs {tool} (apt-get install nghttp2-client wrk util-linux)")


def grpc_frame(message) -> bytes:
    body = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(body)) + body


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int  # answers with a 2xx HTTP status
    bad: int  # non-2xx answers, transport errors, time-outs
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rps": round(self.rps, 1), "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "ok": self.ok, "bad": self.bad, **self.detail}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def h2load(url: str, frame: bytes, headers: dict[str, str], *, seconds: float, warmup: float,
           connections: int, streams: int) -> Result:
    """A warm-up run, then a duration-based h2load run; req/s and latency percentiles
    from its per-request log (start µs, HTTP status, µs to the end of the response)."""
    with tempfile.TemporaryDirectory(prefix="vipay-h2load-") as tmp:
        body, log = Path(tmp, "frame.bin"), Path(tmp, "requests.tsv")
        body.write_bytes(frame)
        cmd = ["taskset", "-c", LOADGEN_CPU, "h2load", "-t", "1", "-c", str(connections), "-m", str(streams),
               "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers"]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        if warmup:
            subprocess.run(cmd + ["-D", f"{int(warmup * 1000)}ms", url], capture_output=True, timeout=warmup + 60)
        out = subprocess.run(cmd + ["-D", f"{int(seconds * 1000)}ms", "--log-file", str(log), url],
                             capture_output=True, text=True, timeout=seconds + 60)
        if out.returncode != 0:
            raise RuntimeError(f"h2load failed: {out.stderr or out.stdout}")
        text = out.stdout
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    if not m or not rows:
        raise RuntimeError(f"unreadable h2load output:\n{text}")
    errored, timeout = int(m[6]), int(m[7])
    start = min(int(r[0]) for r in rows)
    end = max(int(r[0]) + int(r[2]) for r in rows)
    lat = sorted(int(r[2]) / 1000 for r in rows if r[1].startswith("2"))
    bad = sum(1 for r in rows if not r[1].startswith("2")) + errored + timeout
    return Result(rps=len(lat) / max((end - start) / 1e6, 1e-9), p50_ms=_percentile(lat, 0.5),
                  p99_ms=_percentile(lat, 0.99), ok=len(lat), bad=bad,
                  detail={"tool": "h2load", "in_flight": connections * streams,
                          "cut_at_end": int(m[2]) - int(m[3])})


WRK_SCRIPT = """
wrk.method = "{method}"
{body}
{headers}
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m[1]) * _UNITS[m[2]]


def wrk(url: str, headers: dict[str, str], *, seconds: float, warmup: float, connections: int,
        method: str = "GET", body: str | None = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="vipay-wrk-") as tmp:
        script = Path(tmp, "request.lua")
        lua_headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        lua_body = f"wrk.body = [[{body}]]" if body is not None else ""
        script.write_text(WRK_SCRIPT.format(method=method, body=lua_body, headers=lua_headers))
        base = ["taskset", "-c", LOADGEN_CPU, "wrk", "-t", "1", "-c", str(connections), "--latency",
                "-s", str(script)]
        if warmup:
            subprocess.run(base + ["-d", f"{max(1, round(warmup))}s", url], capture_output=True, text=True,
                           timeout=warmup + 60)
        out = subprocess.run(base + ["-d", f"{max(1, round(seconds))}s", url], capture_output=True, text=True,
                             timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    text = out.stdout
    total = int(re.search(r"(\d+) requests in", text)[1])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    bad = (int(non2xx[1]) if non2xx else 0) + (sum(int(x) for x in errors.groups()) if errors else 0)
    p50 = _ms(re.search(r"\s50%\s+(\S+)", text)[1])
    p99 = _ms(re.search(r"\s99%\s+(\S+)", text)[1])
    return Result(rps=rps, p50_ms=p50, p99_ms=p99, ok=total - bad, bad=bad,
                  detail={"tool": "wrk", "in_flight": connections})
