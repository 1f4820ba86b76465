"""The recharge catalog: one versioned JSON document row, served from memory
between edits (each replica re-reads the version at most every refresh_seconds)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from sqlalchemy import select

from ..adapters.recharge_tables import RechargeCatalogRow
from ..domain.recharge import RechargeCatalog, catalog_from_document, catalog_to_document
from .unit_of_work import UnitOfWork


def save_recharge_catalog(uow: UnitOfWork, catalog: RechargeCatalog) -> int:
    """Writes the catalog and bumps its version; returns the new version."""
    row = uow.session.get(RechargeCatalogRow, 1, with_for_update=True)
    if row is None:
        row = RechargeCatalogRow(id=1, version=0)
        uow.session.add(row)
    row.document = catalog_to_document(catalog)
    row.version = (row.version or 0) + 1
    row.updated_at = datetime.now(timezone.utc).replace(tzinfo=None)
    uow.session.flush()
    return row.version


class RechargeCatalogProvider:
    def __init__(self, uow_factory, refresh_seconds: float, clock=time.monotonic):
        self._uow_factory = uow_factory
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._catalog: RechargeCatalog | None = None
        self._checked_at = float("-inf")

    def get(self) -> RechargeCatalog:
        now = self._clock()
        if self._catalog is not None and now - self._checked_at < self._refresh:
            return self._catalog
        with self._lock:
            if self._catalog is None or now - self._checked_at >= self._refresh:
                self._reload()
                self._checked_at = now
        assert self._catalog is not None
        return self._catalog

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    def save(self, catalog: RechargeCatalog) -> int:
        with self._uow_factory() as uow:
            version = save_recharge_catalog(uow, catalog)
            uow.commit()
        self.invalidate()
        return version

    def _reload(self) -> None:
        with self._uow_factory() as uow:
            version = uow.session.scalar(select(RechargeCatalogRow.version).where(RechargeCatalogRow.id == 1))
            if version is None:
                raise LookupError("the recharge catalog is empty: run `python -m server seed`")
            if self._catalog is None or self._catalog.version != version:
                row = uow.session.get(RechargeCatalogRow, 1)
                self._catalog = catalog_from_document(row.document, row.version)
