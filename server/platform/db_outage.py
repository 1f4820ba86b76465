"""Database outages: which errors mean "the database is unavailable", and one log line
when it goes away and one when it returns (not a traceback per request).

Calls that fail this way answer UNAVAILABLE (HTTP 503 + Retry-After in the family's
envelope, docs/operations.md); the readiness probe (readiness.py) notices the return."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy import exc as sa_exc

from server.platform import metrics
from server.platform.errors import DomainError, Kind

log = logging.getLogger("vipay.database")

RETRY_AFTER_SECONDS = 5

try:  # the PostgreSQL driver (installed with the project; absent is fine for SQLite)
    import psycopg

    _PG_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover
    _PG_ERRORS = ()

# OperationalError covers what goes away under a running server: a refused or dropped
# connection, a stopped server, a full disk, an unreadable or vanished file. The pool's
# TimeoutError and the SQLite writer lock's TimeoutError mean the database is too slow.
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
                sqlite3.OperationalError, sqlite3.InterfaceError, TimeoutError) + _PG_ERRORS


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be used right now."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, _UNAVAILABLE):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


def unavailable_error() -> DomainError:
    return DomainError("DATABASE_UNAVAILABLE", "The service is temporarily unavailable; retry later.",
                       Kind.UNAVAILABLE, metadata={"retry_after_seconds": str(RETRY_AFTER_SECONDS)})


class DatabaseWatch:
    """Up or down, as the last call or probe saw it. Transitions are logged once each and
    counted (vipay_database_outages); the state is a gauge (vipay_database_up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @property
    def up(self) -> bool:
        return self._down_since is None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        metrics.DATABASE_OUTAGES.inc()
        metrics.DATABASE_UP.set(0)
        log.error("database unavailable, answering UNAVAILABLE until it returns: %s",
                  f"{type(exc).__name__}: {exc}".splitlines()[0][:300])

    def reachable(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            metrics.DATABASE_UP.set(1)
            log.warning("database reachable again after %.1f s", time.monotonic() - since)
