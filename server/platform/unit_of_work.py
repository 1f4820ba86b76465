"""One business transaction: commit explicitly, roll back on anything else."""

from __future__ import annotations

from sqlalchemy import select
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

    def lock_or_create(self, row_class, defaults: dict, **key):
        """The row with `key` (unique), created with `defaults` when missing, locked
        until the transaction ends (FOR UPDATE on PostgreSQL; SQLite already holds the
        write lock) and read afresh. A concurrent creator never fails: ON CONFLICT."""
        self.session.execute(self.insert(row_class).values(**key, **defaults)
                             .on_conflict_do_nothing(index_elements=list(key)))
        return self.session.scalars(
            select(row_class).filter_by(**key).with_for_update().execution_options(populate_existing=True)
        ).one()
