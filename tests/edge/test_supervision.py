"""Issue 17 §4: `python -m server run` supervises its processes. Envoy that dies is
started again; kill -9 of `run --replicas 3` takes every child with it; a replica that
gets SIGTERM under load drains (NOT_SERVING, serves on, finishes) and loses nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from server.membership.catalog import demo_catalog, save_catalog
from server.platform.database import make_engine, make_session_factory
from server.platform.migrate import upgrade
from server.platform.unit_of_work import UnitOfWork
from tests.conftest import free_port


@pytest.fixture
def database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        save_catalog(uow, demo_catalog())
        uow.commit()
    engine.dispose()
    return url


def _run(database: str, replicas: int, tmp_path: Path, **extra: str):
    http_port, admin_port = free_port(), free_port()
    env = dict(os.environ, DATABASE_URL=database, HTTP_PORT=str(http_port), ENVOY_ADMIN_PORT=str(admin_port),
               GRPC_PORT=str(free_port()), PUBLIC_BASE_URL="http://gateway.invalid", LOG_LEVEL="WARNING",
               JWT_SECRET="x" * 32, SERVICE_JWT_SECRET="y" * 32, SANDBOX_SECRET="z" * 32, **extra)
    env.pop("METRICS_PORT", None)
    process = subprocess.Popen([sys.executable, "-m", "server", "run", "--replicas", str(replicas)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, text=True)
    pids, deadline = {}, time.monotonic() + 60
    for line in process.stdout:
        if m := re.match(r"replica (\d+) pid (\d+) port (\d+)", line):
            pids[int(m[1])] = int(m[2])
        if line.startswith("gateway "):
            break
        assert time.monotonic() < deadline, "run did not start"
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, pids, f"http://127.0.0.1:{http_port}"


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _envoy_pid(pid: int) -> int:
    return next(c for c in _children(pid) if Path(f"/proc/{c}/comm").read_text().strip() == "envoy")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_run_starts_envoy_again_when_it_dies(database, tmp_path):
    process, _, url = _run(database, 1, tmp_path)
    try:
        deadline = time.monotonic() + 20  # Envoy routes once its first health check passed
        while httpx.get(f"{url}/ping", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the gateway never answered /ping"
            time.sleep(0.2)
        first = _envoy_pid(process.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200 and _envoy_pid(process.pid) != first:
                    break
            except (httpx.HTTPError, StopIteration):
                pass
            assert time.monotonic() < deadline, "the public door stayed closed"
            time.sleep(0.2)
        assert process.poll() is None
    finally:
        _stop(process)


def test_kill_9_of_run_takes_every_replica_and_envoy_with_it(database, tmp_path):
    process, pids, _ = _run(database, 3, tmp_path)
    try:
        children = set(pids.values()) | {_envoy_pid(process.pid)}
        assert len(children) == 4 and all(_alive(p) for p in children)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in children):
            assert time.monotonic() < deadline, f"orphans left: {[p for p in children if _alive(p)]}"
            time.sleep(0.2)
    finally:
        for pid in pids.values():  # only if the test failed: by PID, ours
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_of_a_replica_under_load_loses_no_request(database, tmp_path):
    process, pids, url = _run(database, 2, tmp_path, DRAIN_SECONDS=os.environ.get("TEST_DRAIN", "5"))
    try:
        failures, answers, stop = [], [], threading.Event()

        def load():
            with httpx.Client(base_url=url, timeout=20) as client:
                while not stop.is_set():
                    try:
                        r = client.get("/api/v2/vip/configs")
                        (answers if r.status_code == 200 else failures).append(r.status_code)
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(1.5)
        os.kill(pids[0], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pids[0]):  # drains, then exits
            assert time.monotonic() < deadline, "the replica did not stop after its drain"
            time.sleep(0.1)
        time.sleep(1.5)
        stop.set()
        for w in workers:
            w.join(30)
        assert failures == [] and len(answers) > 100, (failures[:5], len(answers))
    finally:
        _stop(process)
