"""Every provider statement about a payment that reached an order's settle() — a
notification, the answer to a re-query, a statement line reconciliation heals — kept
for operators (the console's order detail). Append-only, recorded by the area's settle() in the transaction of the
settlement it causes (so a kept "paid" statement and the grant it made commit
together). Bounded: only the verified fields are kept (never the raw body), and at
most MAX_PER_ORDER rows per order, so a provider retrying for days cannot grow it
without end (later ones are counted in the log, not stored)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from server.payments.channels import Notification
from server.platform.database import Base, BigId
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_PER_ORDER = 50


class Source(StrEnum):
    NOTIFICATION = "notification"  # the provider posted it
    QUERY = "query"  # we asked (the settlement loop or an operator's re-query)
    STATEMENT = "statement"  # a daily statement line reconciliation healed


class Outcome(StrEnum):
    """What the statement did to the order."""

    SETTLED = "settled"  # it marked the order paid (and granted / credited)
    ALREADY_PAID = "already_paid"  # paid, but the order was settled before: nothing granted
    CLOSED = "closed"  # the provider says the trade is over unpaid
    WAITING = "waiting"  # not paid yet
    AMOUNT_MISMATCH = "amount_mismatch"  # refused: not the order's amount


class PaymentNoteRow(Base):
    __tablename__ = "payment_notes"
    __table_args__ = (Index("ix_payment_notes_book_order", "book", "order_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(24))  # the order book's name: vip_orders | recharge_orders
    order_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(20))
    trade_no: Mapped[str] = mapped_column(String(64))
    provider_txn_id: Mapped[str] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[bool] = mapped_column(Boolean)
    closed: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class PaymentNote:
    source: str
    channel: str
    trade_no: str
    provider_txn_id: str
    amount_fen: int
    paid: bool
    closed: bool
    outcome: str
    received_at: datetime


def outcome_of(note: Notification, *, settled: bool = False, mismatch: bool = False) -> Outcome:
    if mismatch:
        return Outcome.AMOUNT_MISMATCH
    if note.paid:
        return Outcome.SETTLED if settled else Outcome.ALREADY_PAID
    return Outcome.CLOSED if note.closed else Outcome.WAITING


def keep(uow: UnitOfWork, book: str, order_id: int, channel: str, note: Notification, at: datetime, *,
         settled: bool = False, mismatch: bool = False) -> None:
    """Keeps one statement in the caller's transaction (which commits it with the
    settlement): `settled` when it marked the order paid, `mismatch` when refused."""
    source = Source(note.via)
    outcome = outcome_of(note, settled=settled, mismatch=mismatch)
    kept = uow.session.scalar(select(func.count()).select_from(PaymentNoteRow)
                              .where(PaymentNoteRow.book == book, PaymentNoteRow.order_id == order_id)) or 0
    if kept >= MAX_PER_ORDER:
        log.info("payment note not kept (order has the maximum)", extra={"book": book, "order_id": order_id})
        return
    uow.session.add(PaymentNoteRow(
        book=book, order_id=order_id, source=str(source), channel=channel[:20], trade_no=note.trade_no[:64],
        provider_txn_id=(note.provider_txn_id or "")[:128], amount_fen=note.amount_fen, paid=note.paid,
        closed=note.closed, outcome=str(outcome), received_at=naive(at)))


def notes_of(uow: UnitOfWork, book: str, order_id: int) -> list[PaymentNote]:
    rows = uow.session.scalars(select(PaymentNoteRow).where(PaymentNoteRow.book == book,
                                                            PaymentNoteRow.order_id == order_id)
                               .order_by(PaymentNoteRow.id))
    return [PaymentNote(r.source, r.channel, r.trade_no, r.provider_txn_id, r.amount_fen, r.paid, r.closed,
                        r.outcome, r.received_at) for r in rows]
