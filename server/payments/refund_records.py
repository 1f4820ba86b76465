"""The refund records as read by clients and operators (an order's refunds, the fen
refunded of orders) and proven (ledger-check); the sums the refund state machine
(refunds.py) decides with."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import func, select

from server.payments.channels import REFUND_ABNORMAL, REFUND_PROCESSING, REFUND_SUCCEEDED, RefundState
from server.payments.refund_book import RefundBook
from server.payments.refund_tables import RefundRow
from server.payments.refund_views import RefundView
from server.platform.hot_reads import SessionReads
from server.platform.unit_of_work import UnitOfWork

PENDING = RefundState.PENDING
OPEN_STATES = (PENDING, REFUND_PROCESSING)
COUNTED_STATES = (PENDING, REFUND_PROCESSING, REFUND_SUCCEEDED, REFUND_ABNORMAL)  # money gone or going
REFUNDED_ONE_SQL = ("SELECT sum(amount_fen) FROM refunds WHERE book = :book AND order_id = :order_id "
                    "AND state = :state")


def refunded_sql(book: str, order_id: str) -> str:
    """A scalar subquery: the fen refunded (succeeded) of the `book` order whose id is
    the SQL expression `order_id`. An area puts it in its own order read, so one
    order's view is one statement (on PostgreSQL one round trip, not two)."""
    assert re.fullmatch(r"[a-z_]+", book) and re.fullmatch(r"[a-z_.]+", order_id)  # SQL text, never input
    return (f"(SELECT coalesce(sum(amount_fen), 0) FROM refunds WHERE book = '{book}' "
            f"AND order_id = {order_id} AND state = '{REFUND_SUCCEEDED}')")


def counted_fen(uow: UnitOfWork, book: str, order_id: int) -> int:
    """Fen of the order's refunds that are gone or going (every state but failed)."""
    return int(uow.session.scalar(select(func.coalesce(func.sum(RefundRow.amount_fen), 0)).where(
        RefundRow.book == book, RefundRow.order_id == order_id, RefundRow.state.in_(COUNTED_STATES))) or 0)


def succeeded_fen(uow: UnitOfWork, book: str, order_id: int) -> int:
    return int(uow.session.scalar(select(func.coalesce(func.sum(RefundRow.amount_fen), 0)).where(
        RefundRow.book == book, RefundRow.order_id == order_id, RefundRow.state == REFUND_SUCCEEDED)) or 0)


assert RefundView._fields == tuple(c.key for c in RefundRow.__table__.columns), "RefundView holds the refunds columns"


class RefundRecords:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], books: list[RefundBook], reads: Callable | None = None):
        self._uow = uow_factory
        self._reads = reads or SessionReads(uow_factory)  # read-only, off the SQLite writer lock
        self.books = {b.name: b for b in books}

    def get(self, refund_no: str) -> RefundView | None:
        with self._uow() as uow:
            row = uow.session.scalar(select(RefundRow).where(RefundRow.refund_no == refund_no))
            return RefundView.of(row) if row is not None else None

    def for_order(self, book: str, order_id: int) -> list[RefundView]:
        with self._uow() as uow:
            return [RefundView.of(row) for row in uow.session.scalars(
                select(RefundRow).where(RefundRow.book == book, RefundRow.order_id == order_id).order_by(RefundRow.id))]

    def by_order_number(self, order_number: str) -> list[RefundView]:
        with self._uow() as uow:
            return [RefundView.of(row) for row in uow.session.scalars(
                select(RefundRow).where(RefundRow.order_number == order_number).order_by(RefundRow.id))]

    def refunded_fen(self, book: str, order_ids: list[int]) -> dict[int, int]:
        """Money refunded (succeeded) per order, for the clients' order views."""
        if not order_ids:
            return {}
        if len(order_ids) == 1:  # one order's view (a hot read): one plain statement
            total = self._reads.one(REFUNDED_ONE_SQL, {"book": book, "order_id": order_ids[0],
                                                       "state": REFUND_SUCCEEDED})[0]
            return {order_ids[0]: int(total)} if total else {}
        with self._reads() as conn:
            return {oid: int(total) for oid, total in conn.execute(
                select(RefundRow.order_id, func.sum(RefundRow.amount_fen))
                .where(RefundRow.book == book, RefundRow.order_id.in_(order_ids), RefundRow.state == REFUND_SUCCEEDED)
                .group_by(RefundRow.order_id))}

    def check(self, uow: UnitOfWork) -> list[str]:
        """ledger-check: per order, refunds never exceed the payment (and only paid
        orders are refunded); every refund's take-back is recorded exactly once."""
        problems = []
        totals = uow.session.execute(
            select(RefundRow.book, RefundRow.order_id, func.sum(RefundRow.amount_fen))
            .where(RefundRow.state.in_(COUNTED_STATES)).group_by(RefundRow.book, RefundRow.order_id)).all()
        for book_name, order_id, total in totals:
            book = self.books.get(book_name)
            if book is None:
                problems.append(f"refunds of unknown book {book_name}")
                continue
            facts = book.lock(uow, order_id=order_id)
            if not facts.paid or int(total) > facts.paid_fen:
                problems.append(f"{book_name} order {facts.number}: refunds {int(total)} fen > paid "
                                f"{facts.paid_fen if facts.paid else 0} fen")
        for row in uow.session.scalars(select(RefundRow).order_by(RefundRow.id)):
            book = self.books.get(row.book)
            if book is not None:
                problems.extend(f"refund {row.refund_no}: {p}" for p in book.check(uow, refund=row))
        return problems
