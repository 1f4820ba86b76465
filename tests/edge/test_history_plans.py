"""Every paged history walks an index in its ORDER BY, with no sort of the user's rows,
on SQLite and PostgreSQL (issue 18 §6): the plans of the very queries the services send
for a user with 10,000 rows, at the first page and deep in the history."""

from __future__ import annotations

import threading

from datetime import datetime

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from bench import data
from server.recharge.history import page_statement
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
    """Every statement with an ORDER BY sent meanwhile, on any engine, including the hot
    reads' kept connections (Reads announces what it runs there to the engine's listeners):
    the 001 page is read there."""

    def __init__(self):
        # Only this thread's statements: background loops (the callback poller) have ORDER BYs too.
        self.engine, self.statements, self.thread = Engine, [], threading.get_ident()

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY" in statement and threading.get_ident() == self.thread:
            self.statements.append((statement, parameters))


def _nth_newest(app, n: int) -> int:
    with app.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM vip_orders WHERE user_id = :u ORDER BY id DESC LIMIT 1 OFFSET :n"),
                            {"u": USER, "n": n}).scalar_one()


def _pages(app):
    """(name, call) for every paged history, first page and deep."""
    memberships, recharges, wallet = app.memberships.orders, app.recharges, app.recharges.wallet
    return [
        ("001 orders", lambda: memberships.list_orders(USER, offset=0, limit=15, start="", end="",
                                                        timezone_name="Asia/Shanghai")),
        ("001 orders deep", lambda: memberships.list_orders(USER, offset=9_000, limit=15, start="", end="",
                                                             timezone_name="Asia/Shanghai")),
        ("001 orders keyset deep", lambda: memberships.list_orders(USER, offset=0, limit=15, start="", end="",
                                                                    timezone_name="Asia/Shanghai",
                                                                    before_id=_nth_newest(app, 9_000))),
        ("001 orders dated", lambda: memberships.list_orders(USER, offset=0, limit=15, start="2025-06-01",
                                                              end="2025-06-30", timezone_name="Asia/Shanghai")),
        ("002 history", lambda: recharges.history(USER, page=1, rows=10, start="", end="", state="")),
        ("002 history dated", lambda: recharges.history(USER, page=1, rows=10, start="2025-06-01",
                                                        end="2025-06-30", state="")),
        ("002 history deep", lambda: recharges.history(USER, page=900, rows=10, start="", end="", state="")),
        ("wallet entries", lambda: wallet.wallet_entries(USER, 0, 0, 20)),
        ("wallet entries deep", lambda: wallet.wallet_entries(USER, 0, 9_000, 20)),
        ("wallet entries keyset deep", lambda: wallet.wallet_entries(USER, 0, 0, 20, ROWS - 9_000)),
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
                # An index (or the table's own id order) gives the ORDER BY.
                assert any(w in plan for w in ("USING INDEX", "COVERING INDEX", "PRIMARY KEY", "Index")), (name, plan)


@pytest.mark.db
def test_the_pages_are_right(app, long_history):
    first, more = app.memberships.orders.list_orders(USER, offset=0, limit=15, start="", end="", timezone_name="UTC")
    deep, _ = app.memberships.orders.list_orders(USER, offset=9_990, limit=15, start="", end="", timezone_name="UTC")
    ids = [o.id for o in first] + [o.id for o in deep]
    assert more and len(first) == 15 and len(deep) == 10
    assert ids == sorted(ids, reverse=True)
    total, page = app.recharges.history(USER, page=1, rows=10, start="", end="", state="")
    assert total == ROWS and [r.id for r in page] == sorted((r.id for r in page), reverse=True)


@pytest.mark.db
def test_page_tokens_are_keyset_and_old_offset_tokens_still_work(app, channel, token, long_history):
    """gRPC page tokens (AIP-158, opaque) now carry the last id: a page deep in a 10k-order
    history reads 16 rows of the index, not 9,000 of them first."""
    import base64

    from tests.conftest import auth
    from vipay.membership.v1 import membership_pb2 as pb
    from vipay.membership.v1 import membership_pb2_grpc as pb_grpc

    stub = pb_grpc.MembershipServiceStub(channel)
    md = auth(token(USER))
    first = stub.ListVipOrders(pb.ListVipOrdersRequest(page_size=50), metadata=md)
    assert base64.urlsafe_b64decode(first.next_page_token).decode() == f"k:{first.vip_orders[-1].id}"
    second = stub.ListVipOrders(pb.ListVipOrdersRequest(page_size=50, page_token=first.next_page_token), metadata=md)
    old = base64.urlsafe_b64encode(b"o:50").decode()
    by_offset = stub.ListVipOrders(pb.ListVipOrdersRequest(page_size=50, page_token=old), metadata=md)
    ids = [o.id for o in first.vip_orders] + [o.id for o in second.vip_orders]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 100
    assert [o.id for o in by_offset.vip_orders] == [o.id for o in second.vip_orders]


def test_the_dated_002_page_keeps_its_index_whatever_sqlites_statistics_say(app):
    """Statistics that make (user_id, store_id, created_at) look selective lure SQLite's
    planner into that index and a sort of the date window (seen in CI); the 002 page
    statement names its index on SQLite, so its plan does not depend on the data."""
    if app.engine.dialect.name != "sqlite":
        pytest.skip("INDEXED BY is SQLite's; PostgreSQL's plans are checked above")
    with app.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'recharge_orders'")
        conn.exec_driver_sql(
            "INSERT INTO sqlite_stat1 VALUES "
            "('recharge_orders', 'ix_recharge_orders_user_created', '1000000 100000 100000 1'), "
            "('recharge_orders', 'ix_recharge_orders_user_store_id', '1000000 100000 100000 1')")
    statement = page_statement(sqlite=True, since=True, until=True, state=False)
    sql = str(statement.compile(dialect=app.engine.dialect))
    params = ("2025-06-01 00:00:00.000000", "2025-07-01 00:00:00.000000", 10, 0)
    with app.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE sqlite_master")  # load the planted statistics
        unhinted = _plan(conn, sql.replace(" INDEXED BY ix_recharge_orders_user_store_id", ""), (USER,) + params)
        assert _sorts("sqlite", unhinted), unhinted  # the statistics do lure the planner
        hinted = _plan(conn, sql, (USER,) + params)
    assert not _sorts("sqlite", hinted), hinted
    assert "ix_recharge_orders_user_store_id" in hinted
