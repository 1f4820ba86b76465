"""Hot read paths (order status, history): Core reads on read-only connections, never
behind the SQLite writer lock (platform/database.py), with a one-statement fast path
on a connection each read thread keeps."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session


class Reads:
    """`with reads() as conn:` is a Core connection in one read transaction (several
    statements, one snapshot). `reads.one(sql, params)` runs one statement on a
    connection kept by the calling thread, in autocommit (the statement is its own
    snapshot): no pool checkout, BEGIN, COMMIT or reset per call, which cost ~0.2 ms
    through SQLAlchemy against ~2 µs for the SQLite read itself."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._local = threading.local()
        self.dialect = engine.dialect.name
        self._pg = self.dialect == "postgresql"
        dbapi = engine.dialect.loaded_dbapi
        self._dbapi_errors = (dbapi.OperationalError, dbapi.InterfaceError)  # connection-level failures

    @contextmanager
    def __call__(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def one(self, sql: str, params: dict) -> tuple | None:
        """The row of a one-row statement `sql` (named :params), as a plain tuple, or None."""
        rows = self.many(sql, params)
        return rows[0] if rows else None

    def many(self, sql: str, params: dict) -> list[tuple]:
        """Every row of `sql` (a page: bounded by its LIMIT), as plain tuples, on the same
        kept connection (one statement, its own snapshot).

        A kept connection may have died since its last use (the database restarted): a
        statement that fails on a connection error is run once more on a new connection
        (it only reads, so running it again is harmless)."""
        try:
            return self._rows(sql, params)
        except self._dbapi_errors:
            return self._rows(sql, params)

    def _rows(self, sql: str, params: dict) -> list[tuple]:
        local = self._local
        cur = getattr(local, "cursor", None)
        if cur is None:
            conn = self._engine.raw_connection()
            conn.detach()  # this thread's for good; the pool keeps its own
            if self._pg:
                conn.dbapi_connection.autocommit = True
            # One cursor too: opening and closing one per call was a quarter of a
            # one-row PostgreSQL read's client CPU.
            local.conn, local.cursor = conn, conn.cursor()
            cur = local.cursor
        try:
            if self._pg:
                # The driver's own parameter style, as SQLAlchemy compiles it (once per statement).
                compiled = self._compiled(sql)
                sql, params = compiled.string, compiled.construct_params(params)
            # sqlite3 takes :named parameters itself
            listeners = self._engine.dispatch.before_cursor_execute
            if listeners:  # someone listens (tests reading plans): they see the statement too
                listeners(None, cur, sql, params, None, False)
            cur.execute(sql, params)
            # All rows, always: a kept SQLite cursor that was not stepped to the end
            # would hold its read snapshot, and the WAL with it.
            return cur.fetchall()
        except Exception:
            conn, local.conn, local.cursor = local.conn, None, None  # a broken connection is not reused
            conn.invalidate()
            raise

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one Reads per engine, kept for the process
    def _compiled(self, sql: str):
        return text(sql).compile(dialect=self._engine.dialect)


class SessionReads:
    """The same reads through ordinary units of work (for services built without an engine)."""

    def __init__(self, uow_factory):
        self._uow_factory = uow_factory
        with uow_factory() as uow:
            self.dialect = uow.session.get_bind().dialect.name

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        with self._uow_factory() as uow:
            yield uow.session

    def many(self, sql: str, params: dict) -> list[tuple]:
        with self._uow_factory() as uow:
            return [tuple(row) for row in uow.session.execute(text(sql), params)]

    def one(self, sql: str, params: dict) -> tuple | None:
        rows = self.many(sql, params)
        return rows[0] if rows else None
