"""The Python SDK's suite against the stack `python -m sdk.stack` started (make sdk-test)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run through make sdk-test (sdk/stack.py)")
    return value


def token(user_id: int, role: str = "user") -> str:
    return subprocess.run([env("VIPAY_PYTHON"), "-m", "server", "token", "--user-id", str(user_id), "--role", role],
                          cwd=env("VIPAY_ROOT"), check=True, capture_output=True, text=True).stdout.strip()


class TestServer:
    """HTTP in front of the real gateway: `failures` canned answers first, then forwards (or
    always the canned answer when target is None). Records what arrived."""

    def __init__(self, target: str | None, failures: int, answer: tuple[int, dict[str, str], bytes]):
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                   "body": body, "at": time.monotonic()})
                if target is None or len(outer.seen) <= failures:
                    status, headers, payload = answer
                else:
                    headers_in = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    res = httpx.request(self.command, target + self.path, headers=headers_in, content=body or None)
                    status, payload = res.status_code, res.content
                    headers = {"content-type": res.headers.get("content-type", "application/json"),
                               "x-request-id": res.headers.get("x-request-id", "")}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    made: list[TestServer] = []

    def make(target: str | None, failures: int = 0, status: int = 503, headers: dict | None = None,
             body: bytes = b"upstream unavailable") -> TestServer:
        s = TestServer(target, failures, (status, headers or {"content-type": "text/plain"}, body))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
