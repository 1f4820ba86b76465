"""Alembic, driven from code so `python -m server migrate` and the tests share it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from server.platform.settings import ROOT


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "heads")  # one branch per service area
