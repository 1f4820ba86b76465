"""A single-row, versioned catalog served from memory between edits.

Each replica re-reads the version at most every `refresh_seconds`, so an edit made
through any replica (or the CLI) reaches all of them within that time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import select

from server.platform.db_outage import is_unavailable

T = TypeVar("T")


class CatalogProvider(Generic[T]):
    """Serves a single-row, versioned catalog from memory. `from_row` turns the row
    into the domain catalog; only the version is read while the cache is fresh."""

    def __init__(self, uow_factory, refresh_seconds: float, row_type, from_row: Callable[[Any], T],
                 clock=time.monotonic):
        self._uow_factory = uow_factory
        self._refresh = refresh_seconds
        self._row_type = row_type
        self._from_row = from_row
        self._clock = clock
        self._lock = threading.Lock()
        self._catalog: T | None = None
        self._version: int | None = None
        self._checked_at = float("-inf")

    def get(self) -> T:
        now = self._clock()
        if self._catalog is not None and now - self._checked_at < self._refresh:
            return self._catalog
        with self._lock:
            if self._catalog is None or now - self._checked_at >= self._refresh:
                try:
                    self._reload()
                except Exception as exc:
                    # During a database outage the last catalog read is served from memory.
                    if self._catalog is None or not is_unavailable(exc):
                        raise
                self._checked_at = now
        assert self._catalog is not None
        return self._catalog

    def fresh(self) -> T | None:
        """The catalog when it can be served from memory now (no database read), else
        None: lets the event loop answer without a thread-pool hop."""
        if self._catalog is not None and self._clock() - self._checked_at < self._refresh:
            return self._catalog
        return None

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    def _reload(self) -> None:
        with self._uow_factory() as uow:
            version = uow.session.scalar(select(self._row_type.version).where(self._row_type.id == 1))
            if version is None:
                raise LookupError(f"{self._row_type.__tablename__} is empty: run `python -m server seed`")
            if self._catalog is None or self._version != version:
                self._catalog = self._from_row(uow.session.get(self._row_type, 1))
                self._version = version
