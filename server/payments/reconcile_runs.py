"""Storing reconciliation runs and reports (docs/reconciliation.md). The run row per
(date, channel) is also the lease: one replica runs a date at a time; the outcome and
the report are stored in one transaction while the lease is ours."""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.payments.reconcile_report import (APPLIED, CLASSES, FAILED, MATCHED, RUNNING, SUCCEEDED, RunReport,
                                              check_date)
from server.payments.reconcile_tables import ReconciliationItemRow, ReconciliationRunRow
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork


class RunStore:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], clock: Callable[[], datetime], *,
                 retry_after: timedelta, lease: timedelta):
        self._uow = uow_factory
        self._clock = clock
        self._retry_after, self._lease = retry_after, lease
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"

    # ---- the run row: lease, outcome, report ----------------------------------------------

    def claim(self, business_date: str, channel_name: str) -> int | None:
        """The run's id with the lease ours, or None while another replica holds it."""
        try:
            return self._claim(business_date, channel_name)
        except IntegrityError:
            # Another replica created the row first. Its lease is judged like any other
            # (it holds unless it has expired by our clock), now that the row exists.
            try:
                return self._claim(business_date, channel_name)
            except IntegrityError:
                return None

    def _claim(self, business_date: str, channel_name: str) -> int | None:
        now = naive(self._clock())
        values = dict(state=RUNNING, lease_owner=self.owner, lease_until=now + self._lease, started_at=now)
        with self._uow() as uow:
            row = uow.session.scalar(select(ReconciliationRunRow).where(
                ReconciliationRunRow.business_date == business_date, ReconciliationRunRow.channel == channel_name))
            if row is None:
                row = ReconciliationRunRow(business_date=business_date, channel=channel_name, attempts=1,
                                           summary="{}", **values)
                uow.session.add(row)
                uow.session.flush()
                run_id = row.id
            else:
                run_id = row.id
                won = uow.session.execute(
                    update(ReconciliationRunRow)
                    .where(ReconciliationRunRow.id == row.id,
                           or_(ReconciliationRunRow.lease_until.is_(None), ReconciliationRunRow.lease_until <= now))
                    .values(attempts=ReconciliationRunRow.attempts + 1, **values)
                    .execution_options(synchronize_session=False)).rowcount
                if won != 1:
                    return None
            uow.commit()
        return run_id

    def fail(self, run_id: int, why: str) -> None:
        now = naive(self._clock())
        with self._uow() as uow:
            uow.session.execute(
                update(ReconciliationRunRow)
                .where(ReconciliationRunRow.id == run_id, ReconciliationRunRow.lease_owner == self.owner)
                .values(state=FAILED, error=why[:500], lease_owner=None, lease_until=None, finished_at=now,
                        next_attempt_at=now + self._retry_after)
                .execution_options(synchronize_session=False))
            uow.commit()

    def finish(self, run_id: int, report: RunReport) -> bool:
        """Stores the outcome and replaces the report, in one transaction, while the lease is ours."""
        now = naive(self._clock())
        with self._uow() as uow:
            won = uow.session.execute(
                update(ReconciliationRunRow)
                .where(ReconciliationRunRow.id == run_id, ReconciliationRunRow.lease_owner == self.owner)
                .values(state=SUCCEEDED, error=None, lease_owner=None, lease_until=None, finished_at=now,
                        succeeded_at=now, next_attempt_at=None, summary=json.dumps(report.summary, sort_keys=True))
                .execution_options(synchronize_session=False)).rowcount
            if won != 1:
                return False
            # What an earlier run healed stays visible as healed after the re-run finds it matched.
            healed = {(r.kind, r.order_number, r.refund_no): r for r in uow.session.scalars(
                select(ReconciliationItemRow).where(ReconciliationItemRow.run_id == run_id,
                                                    ReconciliationItemRow.action == APPLIED))}
            for item in report.items:
                earlier = healed.get((item.kind, item.order_number, item.refund_no))
                if earlier is not None and item.category == MATCHED:
                    item.category, item.action = earlier.category, APPLIED
                    item.detail = (earlier.detail + " (an earlier run)")[:255]
            uow.session.execute(delete(ReconciliationItemRow).where(ReconciliationItemRow.run_id == run_id))
            uow.session.add_all([ReconciliationItemRow(
                run_id=run_id, category=i.category, kind=i.kind, order_number=i.order_number[:64],
                refund_no=i.refund_no[:64], book=i.book, provider_txn_id=i.provider_txn_id[:64],
                provider_amount_fen=i.provider_amount_fen, local_amount_fen=i.local_amount_fen, fee_fen=i.fee_fen,
                action=i.action, detail=i.detail[:255]) for i in report.items])
            report.summary["counts"] = report.counts()
            uow.session.execute(update(ReconciliationRunRow).where(ReconciliationRunRow.id == run_id)
                                .values(summary=json.dumps(report.summary, sort_keys=True))
                                .execution_options(synchronize_session=False))
            uow.commit()
        return True

    # ---- reading ---------------------------------------------------------------------------

    def run_row(self, business_date: str, channel: str) -> ReconciliationRunRow | None:
        with self._uow() as uow:
            return uow.session.scalar(select(ReconciliationRunRow).where(
                ReconciliationRunRow.business_date == business_date, ReconciliationRunRow.channel == channel))

    def runs(self, business_date: str = "", channel: str = "", limit: int = 50) -> list[ReconciliationRunRow]:
        query = select(ReconciliationRunRow).order_by(ReconciliationRunRow.business_date.desc(),
                                                      ReconciliationRunRow.channel).limit(limit)
        if business_date:
            query = query.where(ReconciliationRunRow.business_date == check_date(business_date))
        if channel:
            query = query.where(ReconciliationRunRow.channel == channel)
        with self._uow() as uow:
            return list(uow.session.scalars(query))

    def items(self, run_id: int) -> list[ReconciliationItemRow]:
        with self._uow() as uow:
            return list(uow.session.scalars(select(ReconciliationItemRow).where(
                ReconciliationItemRow.run_id == run_id).order_by(ReconciliationItemRow.id)))

    def gauges(self) -> tuple[list, list]:
        """For metrics: ((channel, class), count) of each channel's latest successful
        report, and (channel, unix time of the last successful run)."""
        discrepancies, last = [], []
        with self._uow() as uow:
            rows = uow.session.scalars(select(ReconciliationRunRow).where(
                ReconciliationRunRow.succeeded_at.is_not(None)).order_by(ReconciliationRunRow.business_date)).all()
            latest = {r.channel: r for r in rows}
            for channel, row in sorted(latest.items()):
                counts = json.loads(row.summary or "{}").get("counts", {})
                for category in CLASSES:
                    if category != MATCHED:
                        discrepancies.append(((channel, category), counts.get(category, 0)))
            for channel in sorted({r.channel for r in rows}):
                newest = max(r.succeeded_at for r in rows if r.channel == channel)
                last.append(((channel,), newest.replace(tzinfo=timezone.utc).timestamp()))
        return discrepancies, last
