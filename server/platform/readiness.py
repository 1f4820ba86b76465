"""Readiness: whether this server can do its work now, as gRPC health says it (Envoy's
health checks ask the overall service "" and route only to SERVING servers).

Liveness (the process answers) is the health service `vipay.liveness` and the Ping RPC
(HTTP /ping): always SERVING while the process runs. Readiness ("" and every service
name) is SERVING only while the database answers, its schema is at this code's Alembic
head and, on SQLite, the database file is still the one the server opened (a file
deleted or replaced under it would take writes into the void). docs/operations.md."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine

from server.platform.db_outage import DatabaseWatch, is_unavailable
from server.platform.migrate import current_heads, expected_heads

log = logging.getLogger("vipay.readiness")

LIVENESS = "vipay.liveness"


def sqlite_file(engine: Engine) -> str | None:
    db = engine.url.database
    return db if engine.dialect.name == "sqlite" and db not in (None, "", ":memory:") else None


def file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Readiness:
    def __init__(self, engine: Engine, watch: DatabaseWatch | None = None, interval: float = 1.0):
        self._engine = engine
        self.watch = watch or DatabaseWatch()
        self.interval = interval
        self._heads = expected_heads()
        self._file = sqlite_file(engine)
        self._identity = file_identity(self._file) if self._file else None
        self.reason: str | None = "not checked yet"

    def check(self) -> str | None:
        """None when ready, else why not (blocking: runs a query)."""
        if self._file is not None and file_identity(self._file) != self._identity:
            return f"the database file {self._file} was deleted or replaced after start-up: restart the server"
        try:
            with self._engine.connect() as conn:
                current = current_heads(conn)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.watch.failed(exc)
            return "the database is unavailable"
        self.watch.reachable()
        if current != self._heads:
            return f"the database schema is at {sorted(current)}, not {sorted(self._heads)}: run `python -m server migrate`"
        return None

    def refresh(self) -> str | None:
        """check(), remembered in `reason`; each change logged once."""
        try:
            reason = self.check()
        except Exception as exc:  # an unexpected failure is "not ready"
            reason = f"readiness check failed: {type(exc).__name__}: {exc}"
        if reason != self.reason:
            if reason is None:
                log.info("ready")
            else:
                log.warning("not ready: %s", reason)
        self.reason = reason
        return reason

    async def watch_forever(self, publish: Callable[[bool], Awaitable[None]]) -> None:
        """Checks every `interval` seconds; publishes each change."""
        while True:
            await asyncio.sleep(self.interval)
            before = self.reason
            reason = await asyncio.to_thread(self.refresh)
            if reason != before:
                await publish(reason is None)
