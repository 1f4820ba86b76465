"""The recharge catalog: one versioned JSON document row, served from memory
between edits by the shared CatalogProvider."""

from __future__ import annotations

from sqlalchemy import select

from server.platform.cached_catalog import CatalogProvider
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork
from server.recharge.rules import RechargeCatalog, catalog_from_document, catalog_to_document
from server.recharge.tables import RechargeCatalogRow


def save_recharge_catalog(uow: UnitOfWork, catalog: RechargeCatalog) -> int:
    """Writes the catalog and bumps its version; returns the new version."""
    row = uow.session.get(RechargeCatalogRow, 1, with_for_update=True)
    if row is None:
        row = RechargeCatalogRow(id=1, version=0)
        uow.session.add(row)
    row.document = catalog_to_document(catalog)
    row.version = (row.version or 0) + 1
    row.updated_at = naive_now()
    uow.session.flush()
    return row.version


class RechargeCatalogProvider(CatalogProvider[RechargeCatalog]):
    def __init__(self, uow_factory, refresh_seconds: float):
        super().__init__(uow_factory, refresh_seconds, RechargeCatalogRow,
                         lambda row: catalog_from_document(row.document, row.version))

    def save(self, catalog: RechargeCatalog) -> int:
        with self._uow_factory() as uow:
            version = save_recharge_catalog(uow, catalog)
            uow.commit()
        self.invalidate()
        return version

    def present(self) -> bool:
        """Whether a catalog was ever saved (seeding leaves one that is)."""
        with self._uow_factory() as uow:
            return uow.session.scalar(select(RechargeCatalogRow.id)) is not None
