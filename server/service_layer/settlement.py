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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update

from ..adapters.channels.base import ChannelRegistry, ChannelUnavailable
from ..adapters.orm import VipOrderRow
from .memberships import MembershipService, naive
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class SettleReport:
    queried: int = 0
    settled_paid: int = 0
    closed: int = 0
    failed: int = 0


class SettlementService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry,
                 memberships: MembershipService, *, close_after: timedelta, requery_after: timedelta,
                 requery_every: timedelta, batch_size: int = 50,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._uow = uow_factory
        self._channels = channels
        self._memberships = memberships
        self._close_after = close_after
        self._requery_after = requery_after
        self._requery_every = requery_every
        self._batch = batch_size
        self._clock = clock

    def _claim(self, now: datetime) -> list[tuple[int, str, str, datetime]]:
        """Unpaid, open orders old enough to ask about and not asked recently."""
        query = (
            select(VipOrderRow)
            .where(
                VipOrderRow.pay_status == 0,
                VipOrderRow.closed_at.is_(None),
                VipOrderRow.trade_no.is_not(None),
                VipOrderRow.created_at <= naive(now - self._requery_after),
                or_(VipOrderRow.last_queried_at.is_(None),
                    VipOrderRow.last_queried_at <= naive(now - self._requery_every)),
            )
            .order_by(VipOrderRow.created_at)
            .limit(self._batch)
        )
        with self._uow() as uow:
            if uow.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(uow.session.scalars(query))
            if rows:
                uow.session.execute(
                    update(VipOrderRow).where(VipOrderRow.id.in_([r.id for r in rows]))
                    .values(last_queried_at=naive(now)).execution_options(synchronize_session=False)
                )
            claimed = [(r.id, r.trade_no, r.channel, r.created_at) for r in rows]
            uow.commit()
        return claimed

    def run_once(self) -> SettleReport:
        now = self._clock()
        report = SettleReport()
        for order_id, trade_no, channel_name, created_at in self._claim(now):
            channel = self._channels.by_name(channel_name)
            query = getattr(channel, "query", None)
            paid = False
            if query is not None:
                report.queried += 1
                try:
                    note = query(trade_no)
                except ChannelUnavailable as exc:
                    report.failed += 1
                    log.warning("re-query failed", extra={"order_id": order_id, "channel": channel_name,
                                                          "why": str(exc)})
                    continue  # unknown: neither settle nor close; asked again next interval
                if note is not None:
                    reply = self._memberships.settle(order_id, channel, note)
                    paid = note.paid and reply.status < 300
                    report.settled_paid += int(paid)
            if not paid and created_at.replace(tzinfo=timezone.utc) <= now - self._close_after:
                report.closed += self._close(order_id, now)
        return report

    def _close(self, order_id: int, now: datetime) -> int:
        # A payment that still arrives for a closed order is honoured (the money was
        # taken); the provider was also told the deadline (time_expire) at creation.
        with self._uow() as uow:
            closed = uow.session.execute(
                update(VipOrderRow)
                .where(VipOrderRow.id == order_id, VipOrderRow.pay_status == 0, VipOrderRow.closed_at.is_(None))
                .values(closed_at=naive(now), updated_at=naive(now))
                .execution_options(synchronize_session=False)
            ).rowcount
            uow.commit()
        return closed
