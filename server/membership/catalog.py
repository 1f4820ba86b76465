"""The VIP catalog document: stored as one versioned row (served from memory by
platform/cached_catalog.py), its JSON form, and the demo prices of api-docs/001."""

from __future__ import annotations

from sqlalchemy import select

from server.membership.rules import LEVELS, Catalog, LevelConfig, PriceSetting
from server.membership.tables import VipCatalogRow
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork



def catalog_present(uow: UnitOfWork) -> bool:
    return uow.session.scalar(select(VipCatalogRow.id)) is not None


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
