"""Engine and sessions. SQLite gets WAL and BEGIN IMMEDIATE so concurrent writers
queue instead of failing on lock upgrades, plus an in-process lock so this
process's writers queue in order instead of busy-polling (SQLite's busy handler
sleeps up to 100 ms between tries, which showed as a 300+ ms p99 in `make bench`).
PostgreSQL runs READ COMMITTED and the service layer locks what it changes."""

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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
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
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn):
            if conn.info.pop("vipay_writer", False):
                writer.release()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
