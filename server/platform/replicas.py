"""`python -m server run --replicas N` (docs/edge.md): N gRPC server processes
(`python -m server serve`, each on its own loopback port) behind one Envoy, which
serves the public HTTP door and, on GRPC_HOST:GRPC_PORT, the internal gRPC door,
both balanced over the replicas. A replica that exits is started again."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time

from server.platform.children import spawn

log = logging.getLogger("vipay.replicas")
RESTART_DELAY_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replicas:
    def __init__(self, count: int):
        if count < 1:
            raise ValueError("at least one replica")
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen | None] = [None] * count

    def _spawn(self, index: int) -> None:
        env = dict(os.environ, GRPC_HOST="127.0.0.1", GRPC_PORT=str(self.ports[index]), VIPAY_REPLICA=str(index))
        process = spawn([sys.executable, "-m", "server", "serve"], env=env)  # dies with `run`
        self.processes[index] = process
        # One line per (re)start: operators and the replica test read the pids from it.
        print(f"replica {index} pid {process.pid} port {self.ports[index]}", flush=True)

    def start(self) -> None:
        for index in range(len(self.ports)):
            self._spawn(index)

    def supervise(self, stop: threading.Event, also=lambda: None) -> None:
        """Until `stop`: start again every replica that has exited (and call `also` each round)."""
        while not stop.wait(0.2):
            also()
            for index, process in enumerate(self.processes):
                if process is not None and process.poll() is not None:
                    log.warning("replica %s (pid %s) exited with %s; restarting", index, process.pid,
                                process.returncode)
                    time.sleep(RESTART_DELAY_SECONDS)
                    if not stop.is_set():
                        self._spawn(index)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM: each replica drains (NOT_SERVING, keeps serving DRAIN_SECONDS, finishes
        its calls); killed if still running after `grace` seconds."""
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()  # SIGTERM: health NOT_SERVING first, then a graceful stop
        deadline = time.monotonic() + grace
        for process in self.processes:
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
