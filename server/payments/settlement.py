"""Orders whose notification never came: re-query the provider and settle through
MembershipService.settle (the same path as a notification), and close unpaid
orders after the configured time.

Safe with several replicas: a pass first *claims* a batch in a short transaction
(SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers) by
stamping last_queried_at, so another replica skips those rows until the interval
has passed again. Provider calls happen outside any transaction; the final state
change is the conditional UPDATE in settle() / close, so racing a real
notification is harmless."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update

from server.payments.channels import (
    ChannelRegistry,
    ChannelUnavailable,
    Notification,
    NotificationRejected,
    PaymentChannel,
    Reply,
)
from server.platform import metrics
from server.platform.errors import not_found
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def receive_notification(
    channels: ChannelRegistry, channel_name: str, order_id: int, body: bytes, content_type: str,
    headers: Mapping[str, str], settle: Callable[[int, PaymentChannel, Notification], Reply],
) -> Reply:
    """A provider's notification for one order, for any area: only an authentic one
    reaches the area's settle(); a forged or malformed one gets the provider's
    "failed" reply (so it retries) and changes nothing."""
    channel = channels.by_name(channel_name)
    if channel is None:
        raise not_found("channel", channel_name)
    try:
        note = channel.verify_notification(body, content_type, headers)
    except NotificationRejected as exc:
        log.warning("notification rejected", extra={"order_id": order_id, "channel": channel_name, "why": str(exc)})
        metrics.NOTIFICATIONS.labels(channel_name, "rejected").inc()
        return channel.nack(str(exc))
    if note.refund is not None and channels.on_refund is not None:
        reply = channels.on_refund(channel, note.refund)
    else:
        reply = settle(order_id, channel, note)
    metrics.NOTIFICATIONS.labels(channel_name, "acked" if reply.status < 300 else "nacked").inc()
    return reply


@dataclass(frozen=True)
class OrderBook:
    """One family of provider-paid orders as settlement sees it: its table (with
    id, channel, created_at, last_queried_at), the column holding the number the
    provider knows, what "open" means, how to close, and the area's settle()."""

    name: str
    table: Any
    number: Any
    is_open: Callable[[], Any]
    close_values: Callable[[datetime], dict]
    settle: Callable[[int, PaymentChannel, Notification], Reply]
    # For reconciliation (payments/reconcile_matching.py): what "paid" means, the amount
    # the provider is told (fen) and when it was paid. A book without them is skipped.
    is_paid: Callable[[], Any] | None = None
    amount: Any = None
    paid_at: Any = None


class RefundRequeries(Protocol):
    """The refund service as settlement sees it: one pass over refunds of unknown outcome."""

    def run_once(self) -> Any: ...  # a report with `queried` and `finished`


@dataclass
class SettleReport:
    queried: int = 0
    settled_paid: int = 0
    closed: int = 0
    failed: int = 0
    refunds_queried: int = 0
    refunds_finished: int = 0


class SettlementService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry,
                 books: list[OrderBook], *, close_after: timedelta, requery_after: timedelta,
                 requery_every: timedelta, batch_size: int = 50, refunds: RefundRequeries | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._uow = uow_factory
        self._channels = channels
        self.books = books
        self._close_after = close_after
        self._requery_after = requery_after
        self._requery_every = requery_every
        self._batch = batch_size
        self._clock = clock
        self._refunds = refunds  # the refund service: its unknown outcomes are asked again by the same loop

    def _claim(self, book: OrderBook, now: datetime) -> list[tuple[int, str, str, datetime]]:
        """Open orders old enough to ask about and not asked recently."""
        t = book.table
        query = (
            select(t.id, book.number, t.channel, t.created_at)
            .where(
                book.is_open(),
                book.number.is_not(None),
                t.created_at <= naive(now - self._requery_after),
                or_(t.last_queried_at.is_(None), t.last_queried_at <= naive(now - self._requery_every)),
            )
            .order_by(t.created_at)
            .limit(self._batch)
        )
        with self._uow() as uow:
            if uow.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = [tuple(row) for row in uow.session.execute(query)]
            if claimed:
                uow.session.execute(
                    update(t).where(t.id.in_([c[0] for c in claimed]))
                    .values(last_queried_at=naive(now)).execution_options(synchronize_session=False)
                )
            uow.commit()
        return claimed

    def lag_seconds(self) -> dict[str, float]:
        """Per order book, how long the oldest open order has been due for settlement
        (re-query after `requery_after`): 0 when none is overdue. For metrics."""
        now = naive(self._clock())
        lag = {}
        with self._uow() as uow:
            for book in self.books:
                oldest = uow.session.scalar(
                    select(func.min(book.table.created_at)).where(book.is_open(), book.number.is_not(None)))
                due = (now - oldest - self._requery_after).total_seconds() if oldest is not None else 0.0
                lag[book.name] = max(due, 0.0)
        return lag

    def run_once(self) -> SettleReport:
        now = self._clock()
        report = SettleReport()
        for book in self.books:
            for order_id, number, channel_name, created_at in self._claim(book, now):
                self._settle_one(book, order_id, number, channel_name, created_at, now, report)
        if self._refunds is not None:
            refunds = self._refunds.run_once()
            report.refunds_queried, report.refunds_finished = refunds.queried, refunds.finished
        return report

    def _settle_one(self, book, order_id, number, channel_name, created_at, now, report) -> None:
        channel = self._channels.by_name(channel_name)
        query = getattr(channel, "query", None)
        paid = False
        if query is not None:
            report.queried += 1
            try:
                note = query(number)
            except ChannelUnavailable as exc:
                report.failed += 1
                log.warning("re-query failed", extra={"book": book.name, "order_id": order_id,
                                                      "channel": channel_name, "why": str(exc)})
                return  # unknown: neither settle nor close; asked again next interval
            if note is not None:
                reply = book.settle(order_id, channel, replace(note, via="query"))
                paid = note.paid and reply.status < 300
                report.settled_paid += int(paid)
        if not paid and created_at.replace(tzinfo=timezone.utc) <= now - self._close_after:
            report.closed += self._close(book, order_id, now)

    def _close(self, book: OrderBook, order_id: int, now: datetime) -> int:
        # A payment that still arrives for a closed order is honoured (the money was
        # taken); the provider was also told the deadline (time_expire) at creation.
        with self._uow() as uow:
            closed = uow.session.execute(
                update(book.table)
                .where(book.table.id == order_id, book.is_open())
                .values(**book.close_values(now))
                .execution_options(synchronize_session=False)
            ).rowcount
            uow.commit()
        return closed
