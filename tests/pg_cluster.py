"""A throwaway PostgreSQL cluster for fault tests (stop, restart, break it): the Debian
binaries as the `postgres` OS user, its own data and socket folders and a port of its
own, never the shared server on 5432."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
PORTS = range(18450, 18470)  # this lane's range for throwaway clusters


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


class PgCluster:
    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 server binaries are not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="vipay-pg-"))
        self.data, self.sockets = self.dir / "data", self.dir / "run"
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.sockets, "postgres")
        self.port = next(p for p in PORTS if _free(p))
        subprocess.run(_as_postgres(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                    "-E", "UTF8", "--no-sync"), check=True, capture_output=True)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._started = False

    def start(self) -> None:
        """Starts on self.port; the first start moves to the next free port of the range if
        another run took this one meanwhile."""
        for port in [self.port] + ([p for p in PORTS if p != self.port and _free(p)] if not self._started else []):
            self.port = port
            opts = f"-p {port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
            done = subprocess.run(_as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                                               str(self.dir / "log"), "-w", "-t", "60", "start"), capture_output=True)
            if done.returncode == 0:
                self._started = True
                self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
                return
        raise RuntimeError(f"throwaway PostgreSQL did not start: {done.stderr.decode()[-300:]}")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
                       capture_output=True)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while subprocess.run([str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("throwaway PostgreSQL did not start")
            time.sleep(0.2)
