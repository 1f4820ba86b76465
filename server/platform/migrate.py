"""Alembic, driven from code so `python -m server migrate` and the tests share it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from server.platform.settings import ROOT


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "heads")  # one branch per service area


def expected_heads() -> set[str]:
    """The revisions this code's migrations end at (one per service area)."""
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_heads(conn: Connection) -> set[str]:
    """The revisions the database is at (empty when it was never migrated)."""
    return set(MigrationContext.configure(conn).get_current_heads())


def schema_behind(engine: Engine) -> str | None:
    """Why this server must not start on `engine`'s database (its schema is not at this
    code's head), or None. An unreachable database is not a reason: the server starts
    not ready and becomes ready when the database answers (docs/operations.md)."""
    try:
        with engine.connect() as conn:
            current = current_heads(conn)
    except Exception:
        return None
    missing = expected_heads() - current
    if not missing:
        return None
    return (f"the database schema is behind this server (at {sorted(current) or 'no revision'}, "
            f"missing {sorted(missing)}): run `python -m server migrate` first")
