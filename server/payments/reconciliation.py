"""Daily reconciliation against the providers' statements (docs/reconciliation.md).

For a business date (Asia/Shanghai) and a channel: download the statement
(reconcile_statements.py), match every line to our orders and refunds
(reconcile_matching.py), and sort it into a class:

- matched
- provider_only_paid:   paid at the provider, unpaid here -> applied through the order
                        book's settle() (the path a notification takes: idempotent)
- provider_only_refund: a successful refund we do not count -> applied through
                        RefundService.receive_statement (the refund notification path)
- local_only:           paid / refunded here, absent from the statement -> flagged
- mismatch:             amount or state differs -> flagged

A run first downloads and parses everything; a download, hash or parse failure fails
the run before anything is applied (it is retried and alerts). Each healing is its own
idempotent transaction (the notification paths', reconcile_healing.py), so a run that
dies half-way is completed by the next one without applying anything twice. The run
row per (date, channel) is also the lease: one replica runs a date at a time
(reconcile_runs.py). This module composes those parts and keeps the schedule."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from prometheus_client import Counter

from server.payments.channels import ChannelRegistry
from server.payments.reconcile_healing import Healer
from server.payments.reconcile_matching import Matcher
from server.payments.reconcile_report import (APPLIED, CLASSES, FAILED, FLAGGED, MATCHED, SHANGHAI, SUCCEEDED,
                                              Item, RunReport, check_date, summary)
from server.payments.reconcile_runs import RunStore
from server.payments.reconcile_statements import STATEMENT_CHANNELS, NoStatements, StatementSource
from server.payments.refunds import RefundService
from server.payments.settlement import SettlementService
from server.payments.statements import StatementError
from server.platform import metrics
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

# The public names the CLI, the admin servicer, app.py and the tests import from here.
__all__ = ["CLASSES", "MATCHED", "RUNS", "STATEMENT_CHANNELS", "Item", "NoStatements", "ReconciliationService",
           "RunReport", "check_date"]

log = logging.getLogger("vipay.reconciliation")

RUNS = Counter("vipay_reconciliation_runs", "Reconciliation runs, by channel and result (succeeded, failed, busy)",
               ["channel", "result"], registry=metrics.REGISTRY)


class ReconciliationService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry,
                 settlement: SettlementService, refunds: RefundService, *, hour: int = 10,
                 retry_after: timedelta = timedelta(minutes=10), lease: timedelta = timedelta(minutes=15),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._statements = StatementSource(channels)
        self._matcher = Matcher(uow_factory, settlement, refunds, Healer(refunds))
        self._store = RunStore(uow_factory, clock, retry_after=retry_after, lease=lease)
        self._hour = hour
        self._clock = clock
        self.owner = self._store.owner

    def statement_channels(self) -> list[str]:
        """Channel names that publish statements (real providers, configured)."""
        return self._statements.channel_names()

    # ---- a run ------------------------------------------------------------------------

    def run(self, business_date: str, channel_name: str, *, dry_run: bool = False) -> RunReport:
        check_date(business_date)
        channel = self._statements.channel(channel_name)
        run_id = None
        if not dry_run:
            run_id = self._store.claim(business_date, channel_name)
            if run_id is None:
                RUNS.labels(channel_name, "busy").inc()
                return RunReport(business_date, channel_name, "busy",
                                 error="another replica is running this date (lease held)")
        try:
            statement = self._statements.fetch(channel, business_date)  # everything downloaded and parsed first
            report = self._matcher.classify(statement, channel)
            if not dry_run:
                heal(report)
            report.status = "dry_run" if dry_run else SUCCEEDED
            report.summary = summary(statement, report)
        except Exception as exc:
            why = str(exc) if isinstance(exc, StatementError) else f"{type(exc).__name__}: {exc}"
            if dry_run:
                return RunReport(business_date, channel_name, FAILED, error=why)  # nothing stored
            self._store.fail(run_id, why)
            RUNS.labels(channel_name, FAILED).inc()
            log.error("reconciliation failed (retried later)", extra={"date": business_date,
                                                                     "channel": channel_name, "why": why[:300]})
            return RunReport(business_date, channel_name, FAILED, error=why)
        if not dry_run:
            if not self._store.finish(run_id, report):
                report.status, report.error = "busy", "the lease was taken over by another replica"
                RUNS.labels(channel_name, "busy").inc()
                return report
            RUNS.labels(channel_name, SUCCEEDED).inc()
            if any(i.category != MATCHED for i in report.items):
                log.warning("reconciliation found discrepancies", extra={"date": business_date,
                                                                         "channel": channel_name,
                                                                         "counts": report.counts()})
        return report

    def run_due(self) -> list[RunReport]:
        """The daily schedule (settlement loop): after `hour` (Shanghai), yesterday's
        statements once per channel; a failed run is retried after `retry_after` (also
        for the two days before)."""
        now = self._clock()
        local = now.astimezone(SHANGHAI)
        if self._hour < 0 or local.hour < self._hour:
            return []
        yesterday = local.date() - timedelta(days=1)
        reports = []
        for name in self.statement_channels():
            for back in range(3):
                day = (yesterday - timedelta(days=back)).isoformat()
                row = self._store.run_row(day, name)
                if row is None and back > 0:
                    continue  # earlier days: only retries
                if row is not None and (row.state == SUCCEEDED or
                                        (row.lease_until is not None and row.lease_until > naive(now)) or
                                        (row.state == FAILED and row.next_attempt_at is not None
                                         and row.next_attempt_at > naive(now))):
                    continue
                reports.append(self.run(day, name))
        return reports

    # ---- reading (the admin RPC, the metrics) ----------------------------------------------

    def runs(self, business_date: str = "", channel: str = "", limit: int = 50) -> list:
        return self._store.runs(business_date, channel, limit)

    def items(self, run_id: int) -> list:
        return self._store.items(run_id)

    def gauges(self) -> tuple[list, list]:
        """((channel, class), count) of each channel's latest successful report, and
        (channel, unix time of the last successful run)."""
        return self._store.gauges()


def heal(report: RunReport) -> None:
    """Applies each item's healing, each its own idempotent transaction."""
    for item in report.items:
        if item.heal is not None:
            item.detail = item.heal()
            item.action = APPLIED if item.detail.startswith("applied") else FLAGGED
