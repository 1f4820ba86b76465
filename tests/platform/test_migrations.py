"""Alembic keeps working on databases created by earlier releases: a database at the
heads of the layer-layout release (before server/ moved to one package per area)
upgrades cleanly to today's heads and keeps its rows."""

from __future__ import annotations

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from server.platform.migrate import alembic_config, upgrade

# `alembic heads` on the last commit of the layer layout.
LAYER_LAYOUT_HEADS = ("channels_0001", "openapi_0001", "recharge_0003")


def test_a_database_from_the_layer_layout_upgrades_cleanly(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    for head in LAYER_LAYOUT_HEADS:
        command.upgrade(cfg, head)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO wallets (user_id, store_id, balance, updated_at) "
            "VALUES (7, 0, 1500, '2026-01-01 00:00:00')"))
        before = set(MigrationContext.configure(conn).get_current_heads())
    assert before == set(LAYER_LAYOUT_HEADS)

    upgrade(url)

    with engine.connect() as conn:
        after = set(MigrationContext.configure(conn).get_current_heads())
        balance = conn.scalar(text("SELECT balance FROM wallets WHERE user_id = 7"))
    engine.dispose()
    assert after == set(ScriptDirectory.from_config(cfg).get_heads())
    assert balance == 1500
