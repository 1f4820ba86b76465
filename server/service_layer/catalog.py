"""The VIP catalog: stored as one versioned row, served from memory between edits.

Each replica re-reads the version at most every `refresh_seconds`, so an edit made
through any replica (or the CLI) reaches all of them within that time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import select

from ..adapters.orm import VipCatalogRow
from ..domain.membership import LEVELS, Catalog, LevelConfig, PriceSetting
from .times import naive_now
from .unit_of_work import UnitOfWork

T = TypeVar("T")


def catalog_to_json(catalog: Catalog) -> dict:
    return {
        level: {
            "name": cfg.name,
            "enable": cfg.enable,
            "setting": [
                {
                    "duration": s.duration,
                    "original": s.original_fen,
                    "price": s.price_fen,
                    "iap": s.iap,
                    "iap_price": s.iap_price_fen,
                    "enable": s.enable,
                    "currency": s.currency,
                }
                for s in cfg.settings
            ],
        }
        for level, cfg in catalog.levels.items()
    }


def catalog_from_row(row: VipCatalogRow) -> Catalog:
    levels = {}
    for level in LEVELS:
        cfg = row.levels[level]
        settings = tuple(
            PriceSetting(
                duration=s["duration"],
                original_fen=s["original"],
                price_fen=s["price"],
                iap_price_fen=s["iap_price"],
                enable=s["enable"],
                iap=s.get("iap"),
                currency=s.get("currency"),
            )
            for s in cfg["setting"]
        )
        levels[level] = LevelConfig(level, cfg["name"], cfg["enable"], settings)
    return Catalog(row.switch, row.exchange, levels, row.protocol_html, row.version)


def save_catalog(uow: UnitOfWork, catalog: Catalog) -> int:
    """Writes the catalog and bumps its version; returns the new version."""
    row = uow.session.get(VipCatalogRow, 1, with_for_update=True)
    now = naive_now()
    if row is None:
        row = VipCatalogRow(id=1, version=0)
        uow.session.add(row)
    row.switch = catalog.switch
    row.exchange = catalog.exchange
    row.levels = catalog_to_json(catalog)
    row.protocol_html = catalog.protocol_html
    row.version = (row.version or 0) + 1
    row.updated_at = now
    uow.session.flush()
    return row.version


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
                self._reload()
                self._checked_at = now
        assert self._catalog is not None
        return self._catalog

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


def demo_catalog() -> Catalog:
    """The prices of api-docs/001 (yuan x 100)."""

    def level(name: str, code: str, rows: list[tuple], iap_prefix: str) -> LevelConfig:
        settings = tuple(
            PriceSetting(
                duration=duration,
                original_fen=original * 100,
                price_fen=price * 100,
                iap_price_fen=iap_price * 100,
                enable=duration == 3,
                iap=f"{iap_prefix}3" if duration == 3 else None,
                currency=iap_price if duration == 3 else None,
            )
            for duration, original, price, iap_price in rows
        )
        return LevelConfig(code, name, True, settings)

    return Catalog(
        switch=True,
        exchange=1,
        levels={
            "low": level("白金会员", "low", [(1, 10, 9, 12), (3, 30, 27, 30), (12, 127, 108, 127)], "10"),
            "middle": level("钻石会员", "middle", [(1, 20, 18, 20), (3, 60, 54, 60), (12, 240, 216, 240)], "20"),
            "high": level("黑钻会员", "high", [(1, 30, 27, 30), (3, 90, 81, 90), (12, 360, 324, 360)], "30"),
        },
        protocol_html="<h1>VIP协议</h1>",
    )
