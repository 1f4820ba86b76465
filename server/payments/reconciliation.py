"""Daily reconciliation against the providers' statements (docs/reconciliation.md).

For a business date (Asia/Shanghai) and a channel: download the statement (the
channel's `statement()`: official SDK calls, hash / address checks, exact parsing),
match every line to our orders and refunds, and sort it into a class:

- matched
- provider_only_paid:   paid at the provider, unpaid here -> applied through the order
                        book's settle() (the path a notification takes: idempotent)
- provider_only_refund: a successful refund we do not count -> applied through
                        RefundService.receive_statement (the refund notification path)
- local_only:           paid / refunded here, absent from the statement -> flagged
- mismatch:             amount or state differs -> flagged

A run first downloads and parses everything; a download, hash or parse failure fails
the run before anything is applied (it is retried and alerts). Each healing is its own
idempotent transaction (the notification paths'), so a run that dies half-way is
completed by the next one without applying anything twice. The run row per
(date, channel) is also the lease: one replica runs a date at a time."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from prometheus_client import Counter
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.payments.channels import REFUND_SUCCEEDED, ChannelRegistry, Notification, RefundStatement
from server.payments.reconcile_tables import ReconciliationItemRow, ReconciliationRunRow
from server.payments.refund_tables import RefundRow
from server.payments.refunds import RefundService
from server.payments.settlement import OrderBook, SettlementService
from server.payments.statements import PAYMENT, REFUND, Statement, StatementError, StatementLine
from server.platform import metrics
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger("vipay.reconciliation")

SHANGHAI = timezone(timedelta(hours=8))
MATCHED, PROVIDER_ONLY_PAID, PROVIDER_ONLY_REFUND, LOCAL_ONLY, MISMATCH = (
    "matched", "provider_only_paid", "provider_only_refund", "local_only", "mismatch")
CLASSES = (MATCHED, PROVIDER_ONLY_PAID, PROVIDER_ONLY_REFUND, LOCAL_ONLY, MISMATCH)
NONE, APPLIED, WOULD_APPLY, FLAGGED = "none", "applied", "would_apply", "flagged"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
STATEMENT_CHANNELS = {"alipay": "alipay", "wechatpay": "wechat"}  # CLI name -> channel name
FALLBACK_REFUND_NO = re.compile(r"[A-Z]+-.+-\d+")  # a console refund recorded without the provider's number

RUNS = Counter("vipay_reconciliation_runs", "Reconciliation runs, by channel and result (succeeded, failed, busy)",
               ["channel", "result"], registry=metrics.REGISTRY)


class NoStatements(Exception):
    """The channel has no statements (the sandbox, or a provider that is not configured)."""


@dataclass
class Item:
    category: str
    kind: str
    order_number: str
    refund_no: str = ""
    book: str = ""
    provider_txn_id: str = ""
    provider_amount_fen: int | None = None
    local_amount_fen: int | None = None
    fee_fen: int = 0
    action: str = NONE
    detail: str = ""
    heal: Callable[[], str] | None = field(default=None, repr=False, compare=False)  # -> detail when applied


@dataclass
class RunReport:
    business_date: str
    channel: str
    status: str  # succeeded | failed | busy | dry_run
    items: list[Item] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    error: str = ""

    def counts(self) -> dict[str, int]:
        return {c: sum(1 for i in self.items if i.category == c) for c in CLASSES}


def business_day_utc(business_date: str) -> tuple[datetime, datetime]:
    day = date.fromisoformat(business_date)
    start = datetime.combine(day, time(0), SHANGHAI)
    return naive(start), naive(start + timedelta(days=1))


def check_date(business_date: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", business_date or ""):
        raise ValueError("the business date is YYYY-MM-DD")
    date.fromisoformat(business_date)  # raises ValueError for 2026-02-30
    return business_date


class ReconciliationService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry,
                 settlement: SettlementService, refunds: RefundService, *, hour: int = 10,
                 retry_after: timedelta = timedelta(minutes=10), lease: timedelta = timedelta(minutes=15),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._uow = uow_factory
        self._channels = channels
        self._settlement = settlement
        self._refunds = refunds
        self._hour, self._retry_after, self._lease = hour, retry_after, lease
        self._clock = clock
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"

    # ---- which channels ----------------------------------------------------------

    def statement_channels(self) -> list[str]:
        """Channel names that publish statements (real providers, configured)."""
        return [name for name in STATEMENT_CHANNELS.values()
                if getattr(self._channels.by_name(name), "statement", None) is not None]

    def _channel(self, name: str):
        channel = self._channels.by_name(name)
        if getattr(channel, "statement", None) is None:
            raise NoStatements(name)
        return channel

    # ---- a run ------------------------------------------------------------------------

    def run(self, business_date: str, channel_name: str, *, dry_run: bool = False) -> RunReport:
        check_date(business_date)
        channel = self._channel(channel_name)
        run_id = None
        if not dry_run:
            run_id = self._claim(business_date, channel_name)
            if run_id is None:
                RUNS.labels(channel_name, "busy").inc()
                return RunReport(business_date, channel_name, "busy",
                                 error="another replica is running this date (lease held)")
        try:
            statement = channel.statement(business_date)  # everything downloaded and parsed first
            report = self._classify(statement, channel)
            if not dry_run:
                for item in report.items:
                    if item.heal is not None:
                        item.detail = item.heal()
                        item.action = APPLIED if item.detail.startswith("applied") else FLAGGED
            report.status = "dry_run" if dry_run else SUCCEEDED
            report.summary = self._summary(statement, report)
        except Exception as exc:
            why = str(exc) if isinstance(exc, StatementError) else f"{type(exc).__name__}: {exc}"
            if dry_run:
                return RunReport(business_date, channel_name, FAILED, error=why)  # nothing stored
            self._fail(run_id, why)
            RUNS.labels(channel_name, FAILED).inc()
            log.error("reconciliation failed (retried later)", extra={"date": business_date,
                                                                     "channel": channel_name, "why": why[:300]})
            return RunReport(business_date, channel_name, FAILED, error=why)
        if not dry_run:
            if not self._finish(run_id, report):
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
                with self._uow() as uow:
                    row = uow.session.scalar(select(ReconciliationRunRow).where(
                        ReconciliationRunRow.business_date == day, ReconciliationRunRow.channel == name))
                if row is None and back > 0:
                    continue  # earlier days: only retries
                if row is not None and (row.state == SUCCEEDED or
                                        (row.lease_until is not None and row.lease_until > naive(now)) or
                                        (row.state == FAILED and row.next_attempt_at is not None
                                         and row.next_attempt_at > naive(now))):
                    continue
                reports.append(self.run(day, name))
        return reports

    # ---- matching ----------------------------------------------------------------------

    def _books(self) -> list[OrderBook]:
        return [b for b in self._settlement.books if b.is_paid is not None and b.amount is not None]

    def _orders(self, numbers: set[str]) -> dict[str, tuple[OrderBook, tuple]]:
        """number -> (book, (id, channel, amount, paid, paid_at)) across every order book."""
        found = {}
        ordered = sorted(numbers)
        with self._uow() as uow:
            for book in self._books():
                t = book.table
                for i in range(0, len(ordered), 500):
                    chunk = ordered[i:i + 500]
                    for row in uow.session.execute(
                            select(book.number, t.id, t.channel, book.amount, book.is_paid().label("paid"),
                                   book.paid_at).where(book.number.in_(chunk))):
                        found[row[0]] = (book, (row[1], row[2], int(row[3]), bool(row[4]), row[5]))
        return found

    def _classify(self, statement: Statement, channel) -> RunReport:
        report = RunReport(statement.business_date, channel.name, RUNNING)
        payments = [line for line in statement.lines if line.kind == PAYMENT]
        refunds = [line for line in statement.lines if line.kind == REFUND]
        orders = self._orders({line.trade_no for line in statement.lines})
        for line in payments:
            report.items.append(self._payment_item(line, orders.get(line.trade_no), channel))
        matched_fallbacks: set[str] = set()
        for line in refunds:
            report.items.append(self._refund_item(line, orders.get(line.trade_no), channel, matched_fallbacks))
        report.items.extend(self._local_only(statement, channel.name, matched_fallbacks))
        return report

    def _payment_item(self, line: StatementLine, found, channel) -> Item:
        item = Item(MATCHED, PAYMENT, line.trade_no, provider_txn_id=line.provider_txn_id[:64],
                    provider_amount_fen=line.amount_fen, fee_fen=line.fee_fen)
        if found is None:
            item.category, item.action, item.detail = PROVIDER_ONLY_PAID, FLAGGED, "no such order here"
            return item
        book, (order_id, order_channel, amount, paid, _) = found
        item.book, item.local_amount_fen = book.name, amount
        if order_channel != channel.name:
            item.category, item.action, item.detail = MISMATCH, FLAGGED, f"the order is a {order_channel} order"
        elif amount != line.amount_fen:
            item.category, item.action, item.detail = MISMATCH, FLAGGED, "amount differs"
        elif not paid:
            item.category, item.action, item.detail = PROVIDER_ONLY_PAID, WOULD_APPLY, "unpaid here"
            item.heal = lambda: self._heal_payment(book, order_id, channel, line)
        return item

    def _heal_payment(self, book: OrderBook, order_id: int, channel, line: StatementLine) -> str:
        reply = book.settle(order_id, channel, Notification(line.trade_no, line.amount_fen, True, line.provider_txn_id))
        if reply.status >= 300:
            return f"settlement refused: {reply.body[:100].decode(errors='replace')}"
        return "applied: paid through the notification path"

    def _refund_item(self, line: StatementLine, found, channel, matched_fallbacks: set[str]) -> Item:
        item = Item(MATCHED, REFUND, line.trade_no, refund_no=line.refund_no[:64],
                    provider_txn_id=line.provider_txn_id[:64], provider_amount_fen=line.amount_fen,
                    fee_fen=line.fee_fen)
        if found is not None:
            item.book = found[0].name
        row = self._refunds.get(line.refund_no) if line.refund_no else None
        success = line.state == "SUCCESS"
        if row is not None:
            item.local_amount_fen = row.amount_fen
            if (row.order_number, row.channel) != (line.trade_no, channel.name):
                item.category, item.action, item.detail = MISMATCH, FLAGGED, "refund number of another order"
            elif row.amount_fen != line.amount_fen:
                item.category, item.action, item.detail = MISMATCH, FLAGGED, "amount differs"
            elif success and row.state in ("pending", "processing", "abnormal"):
                item.category, item.action, item.detail = PROVIDER_ONLY_REFUND, WOULD_APPLY, f"{row.state} here"
                item.heal = lambda: self._heal_refund(channel, line)
            elif (success and row.state != REFUND_SUCCEEDED) or (not success and row.state == REFUND_SUCCEEDED):
                item.category, item.action = MISMATCH, FLAGGED
                item.detail = f"provider {line.state}, here {row.state}"
            return item
        if found is None:
            item.category, item.action, item.detail = PROVIDER_ONLY_REFUND, FLAGGED, "no such order here"
            return item
        if not success:
            item.category, item.action, item.detail = MISMATCH, FLAGGED, f"unknown refund, provider {line.state}"
            return item
        # A console refund recorded from a notification that named no refund number
        # (Alipay without out_biz_no): the same amount on the same order is that refund.
        for known in self._refunds.by_order_number(line.trade_no):
            if (known.origin == "provider" and FALLBACK_REFUND_NO.fullmatch(known.refund_no)
                    and known.refund_no not in matched_fallbacks and known.amount_fen == line.amount_fen
                    and known.state == REFUND_SUCCEEDED):
                matched_fallbacks.add(known.refund_no)
                item.local_amount_fen, item.detail = known.amount_fen, f"recorded as {known.refund_no}"
                return item
        item.category, item.action, item.detail = PROVIDER_ONLY_REFUND, WOULD_APPLY, "not known here"
        item.heal = lambda: self._heal_refund(channel, line)
        return item

    def _heal_refund(self, channel, line: StatementLine) -> str:
        reply = self._refunds.receive_statement(channel, RefundStatement(
            line.trade_no, REFUND_SUCCEEDED, line.refund_no, line.amount_fen,
            provider_refund_id=line.provider_refund_id, provider_txn_id=line.provider_txn_id))
        row = self._refunds.get(line.refund_no)
        if reply.status >= 300 or row is None or row.state != REFUND_SUCCEEDED:
            return f"refund path refused: {reply.body[:100].decode(errors='replace') or 'not applied'}"
        return "applied: taken back through the refund path"

    def _local_only(self, statement: Statement, channel_name: str, matched_fallbacks: set[str]) -> list[Item]:
        """Paid / refunded here on the business day, absent from the statement, and not on
        another day's statement either (a late notification, or an order healed from
        yesterday's statement, is paid here today but stated on the day the money moved)."""
        start, end = business_day_utc(statement.business_date)
        paid_numbers = {line.trade_no for line in statement.lines if line.kind == PAYMENT}
        refund_numbers = {line.refund_no for line in statement.lines if line.kind == REFUND}
        items = []
        with self._uow() as uow:
            for book in self._books():
                t = book.table
                for number, amount in uow.session.execute(
                        select(book.number, book.amount).where(
                            t.channel == channel_name, book.is_paid(), book.paid_at >= start, book.paid_at < end)
                        .order_by(book.paid_at)):
                    if number not in paid_numbers:
                        items.append(Item(LOCAL_ONLY, PAYMENT, number, book=book.name, local_amount_fen=int(amount),
                                          action=FLAGGED, detail="paid here, not in the statement"))
            for row in uow.session.scalars(select(RefundRow).where(
                    RefundRow.channel == channel_name, RefundRow.state == REFUND_SUCCEEDED,
                    RefundRow.finished_at >= start, RefundRow.finished_at < end).order_by(RefundRow.id)):
                if row.refund_no not in refund_numbers and row.refund_no not in matched_fallbacks:
                    items.append(Item(LOCAL_ONLY, REFUND, row.order_number, refund_no=row.refund_no, book=row.book,
                                      local_amount_fen=row.amount_fen, action=FLAGGED,
                                      detail="refunded here, not in the statement"))
            elsewhere = self._stated_on_other_days(uow, statement, channel_name, items)
        return [i for i in items if (i.kind, i.refund_no or i.order_number) not in elsewhere]

    @staticmethod
    def _stated_on_other_days(uow: UnitOfWork, statement: Statement, channel_name: str, items: list[Item]) -> set:
        """(kind, number) of the candidates that another day's reconciled statement lists."""
        payments = sorted({i.order_number for i in items if i.kind == PAYMENT})
        refunds = sorted({i.refund_no for i in items if i.kind == REFUND})
        found = set()
        it, run = ReconciliationItemRow, ReconciliationRunRow
        for kind, column, numbers in ((PAYMENT, it.order_number, payments), (REFUND, it.refund_no, refunds)):
            for i in range(0, len(numbers), 500):
                found.update((kind, number) for (number,) in uow.session.execute(
                    select(column).join(run, run.id == it.run_id).where(
                        run.channel == channel_name, run.business_date != statement.business_date, it.kind == kind,
                        it.provider_amount_fen.is_not(None), column.in_(numbers[i:i + 500]))))
        return found

    @staticmethod
    def _summary(statement: Statement, report: RunReport) -> dict:
        payments = [i for i in report.items if i.kind == PAYMENT and i.provider_amount_fen is not None]
        refunds = [i for i in report.items if i.kind == REFUND and i.provider_amount_fen is not None]
        fees = sum(i.fee_fen for i in report.items)
        paid = sum(i.provider_amount_fen for i in payments)
        refunded = sum(i.provider_amount_fen for i in refunds)
        return {"counts": report.counts(), "lines": len(statement.lines), "paid_fen": paid,
                "refunded_fen": refunded, "fees_fen": fees, "net_fen": paid - refunded - fees,
                "provider_totals": statement.totals}

    # ---- the run row: lease, outcome, report ----------------------------------------------

    def _claim(self, business_date: str, channel_name: str) -> int | None:
        now = naive(self._clock())
        values = dict(state=RUNNING, lease_owner=self.owner, lease_until=now + self._lease, started_at=now)
        try:
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
        except IntegrityError:
            return None  # another replica created the row first: it holds the lease
        return run_id

    def _fail(self, run_id: int, why: str) -> None:
        now = naive(self._clock())
        with self._uow() as uow:
            uow.session.execute(
                update(ReconciliationRunRow)
                .where(ReconciliationRunRow.id == run_id, ReconciliationRunRow.lease_owner == self.owner)
                .values(state=FAILED, error=why[:500], lease_owner=None, lease_until=None, finished_at=now,
                        next_attempt_at=now + self._retry_after)
                .execution_options(synchronize_session=False))
            uow.commit()

    def _finish(self, run_id: int, report: RunReport) -> bool:
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
