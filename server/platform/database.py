"""Engines and sessions.

SQLite: WAL with synchronous=FULL (an acknowledged commit survives power loss);
writers take BEGIN IMMEDIATE behind an in-process lock so this process's writers
queue in order instead of busy-polling (SQLite's busy handler sleeps up to 100 ms
between tries, which showed as a 300+ ms p99 in `make bench`). Reads go through a
second engine (`make_read_engine`): read-only connections whose deferred
transactions see a WAL snapshot and never wait for the writer lock.
PostgreSQL runs READ COMMITTED with synchronous_commit on; the service layer locks
what it changes, and reads share the engine."""

from __future__ import annotations

import threading

from sqlalchemy import BigInteger, Engine, Integer, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """One declarative base: every area's tables live in one metadata (Alembic, tests)."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            _sqlite_pragmas(cur)
            cur.close()

        writer = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Same bound as busy_timeout: a transaction nested inside another on
            # one thread fails after 30 s instead of hanging.
            if not writer.acquire(timeout=30):
                raise TimeoutError("SQLite writer lock not acquired in 30 s")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writer.release()
                raise
            conn.info["vipay_writer"] = True

        @event.listens_for(engine, "commit")
        def _sqlite_commit(conn):
            # This event fires before the driver's commit: COMMIT here, so the lock is
            # held through it (released earlier, the next writer's BEGIN IMMEDIATE met
            # SQLite's own lock and slept in its busy handler). The driver's commit()
            # after it finds no transaction open and does nothing. A failed COMMIT is
            # rolled back here: SQLAlchemy sends no ROLLBACK (nor its event) after a failed
            # commit, and the lock would stay taken for good.
            if conn.info.pop("vipay_writer", False):
                driver = conn.connection.driver_connection
                try:
                    driver.execute("COMMIT")
                except BaseException:
                    try:
                        driver.rollback()
                    except Exception:  # nothing more to undo on a broken connection
                        pass
                    raise
                finally:
                    writer.release()

        @event.listens_for(engine, "rollback")
        def _sqlite_rollback(conn):
            if conn.info.pop("vipay_writer", False):
                writer.release()

        return engine
    engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _pg_connect(dbapi_conn, _record):
        # Durability is not a server default we trust: every session commits to disk.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
        dbapi_conn.commit()

    return engine


def _sqlite_pragmas(cur) -> None:
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")


def make_read_engine(engine: Engine) -> Engine:
    """The engine reads go through. SQLite: separate read-only connections (WAL
    readers do not block the writer and are not blocked by it), each transaction a
    plain deferred BEGIN so a multi-statement read sees one snapshot. Elsewhere the
    engine itself."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    reads = create_engine(engine.url, connect_args={"timeout": 30, "check_same_thread": False},
                          pool_size=8, max_overflow=8)

    @event.listens_for(reads, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        _sqlite_pragmas(cur)
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(reads, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

    return reads


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
