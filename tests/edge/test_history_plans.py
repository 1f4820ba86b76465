"""Every paged history walks an index in its ORDER BY, with no sort of the user's rows,
on SQLite and PostgreSQL (issue 18 §6): the plans of the very queries the services send
for a user with 10,000 rows, at the first page and deep in the history."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from bench import data
from server.recharge.tables import WalletEntryRow, WalletRow

USER = 4242
ROWS = 10_000


def _plan(conn, statement: str, params) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        return "; ".join(str(r[-1]) for r in rows)
    rows = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
    return "; ".join(str(r[0]).strip() for r in rows)


def _sorts(dialect: str, plan: str) -> bool:
    if dialect == "sqlite":
        return "TEMP B-TREE" in plan
    return any(step.lstrip("-> ").startswith(("Sort", "Incremental Sort")) for step in plan.split("; "))


@pytest.fixture
def long_history(app, database_url):
    data.load_user(database_url, USER, ROWS)
    data.load(database_url, 0, 20_000, with_history_user=False)  # 20,000 more over many users, as in life
    now = datetime(2025, 1, 1)
    with app.engine.begin() as conn:
        wallet_id = conn.execute(insert(WalletRow).values(user_id=USER, store_id=0, balance=ROWS, updated_at=now)
                                 .returning(WalletRow.id)).scalar_one()
        conn.execute(insert(WalletEntryRow), [
            {"wallet_id": wallet_id, "amount": 1, "balance_after": i + 1, "reason": "recharge",
             "reference": f"r{i}", "request_id": None, "created_at": now} for i in range(ROWS)])
    with app.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    yield


class _Captured:
    """Every statement with an ORDER BY sent meanwhile, on any engine (the hot reads have
    their own)."""

    def __init__(self):
        self.engine, self.statements = Engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY" in statement:
            self.statements.append((statement, parameters))


def _pages(app):
    """(name, call) for every paged history, first page and deep."""
    memberships, recharges = app.memberships, app.recharges
    return [
        ("001 orders", lambda: memberships.list_orders(USER, offset=0, limit=15, start="", end="",
                                                        timezone_name="Asia/Shanghai")),
        ("001 orders deep", lambda: memberships.list_orders(USER, offset=9_000, limit=15, start="", end="",
                                                             timezone_name="Asia/Shanghai")),
        ("001 orders dated", lambda: memberships.list_orders(USER, offset=0, limit=15, start="2025-06-01",
                                                              end="2025-06-30", timezone_name="Asia/Shanghai")),
        ("002 history", lambda: recharges.history(USER, page=1, rows=10, start="", end="", state="")),
        ("002 history dated", lambda: recharges.history(USER, page=1, rows=10, start="2025-06-01",
                                                        end="2025-06-30", state="")),
        ("002 history deep", lambda: recharges.history(USER, page=900, rows=10, start="", end="", state="")),
        ("wallet entries", lambda: recharges.wallet_entries(USER, 0, 0, 20)),
        ("wallet entries deep", lambda: recharges.wallet_entries(USER, 0, 9_000, 20)),
    ]


@pytest.mark.db
def test_every_paged_history_walks_an_index_without_sorting(app, long_history):
    dialect = app.engine.dialect.name
    for name, call in _pages(app):
        with _Captured() as captured:
            result = call()
        assert result, name
        assert captured.statements, name
        with app.engine.connect() as conn:
            for statement, params in captured.statements:
                plan = _plan(conn, statement, params)
                assert not _sorts(dialect, plan), f"{name} sorts on {dialect}: {plan}\n{statement}"
                assert "USING INDEX" in plan or "COVERING INDEX" in plan or "Index" in plan, (name, plan)


@pytest.mark.db
def test_the_pages_are_right(app, long_history):
    first, more = app.memberships.list_orders(USER, offset=0, limit=15, start="", end="", timezone_name="UTC")
    deep, _ = app.memberships.list_orders(USER, offset=9_990, limit=15, start="", end="", timezone_name="UTC")
    ids = [o.id for o in first] + [o.id for o in deep]
    assert more and len(first) == 15 and len(deep) == 10
    assert ids == sorted(ids, reverse=True)
    total, page = app.recharges.history(USER, page=1, rows=10, start="", end="", state="")
    assert total == ROWS and [r.id for r in page] == sorted((r.id for r in page), reverse=True)
