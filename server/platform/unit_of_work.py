"""One business transaction: commit explicitly, roll back on anything else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker):
        self._session_factory = session_factory
        self.session: Session

    def __enter__(self) -> "UnitOfWork":
        self.session = self._session_factory()
        self.session.begin()
        return self

    def __exit__(self, *exc) -> None:
        try:
            # Detach first so rows read here stay usable after the transaction
            # (rollback would expire them); after commit() this is a no-op.
            self.session.expunge_all()
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def insert(self, table):
        """INSERT with the dialect's ON CONFLICT support."""
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)


class Reads:
    """Read-only Core access for hot read paths: one connection and transaction per
    `with`, no ORM session, no writer lock (see platform/database.py)."""

    def __init__(self, engine: Engine):
        self._engine = engine

    @contextmanager
    def __call__(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn


def session_reads(uow_factory):
    """Reads through ordinary units of work (for services built without an engine)."""

    @contextmanager
    def reads() -> Iterator[Session]:
        with uow_factory() as uow:
            yield uow.session

    return reads
