"""Matching a statement's lines to our books (docs/reconciliation.md): each line becomes
an Item of a class (matched, provider_only_paid, provider_only_refund, mismatch), and
what we hold for the day that the statement lacks becomes local_only. Reads only; the
healing of an item is a closure over payments/reconcile_healing.py, run later."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from server.payments.channels import REFUND_SUCCEEDED
from server.payments.reconcile_healing import Healer
from server.payments.reconcile_report import (FLAGGED, LOCAL_ONLY, MATCHED, MISMATCH, PROVIDER_ONLY_PAID,
                                              PROVIDER_ONLY_REFUND, RUNNING, WOULD_APPLY, Item, RunReport,
                                              business_day_utc)
from server.payments.reconcile_tables import ReconciliationItemRow, ReconciliationRunRow
from server.payments.refund_tables import RefundRow
from server.payments.refunds import RefundService
from server.payments.settlement import OrderBook, SettlementService
from server.payments.statements import PAYMENT, REFUND, Statement, StatementLine
from server.platform.unit_of_work import UnitOfWork

FALLBACK_REFUND_NO = re.compile(r"[A-Z]+-.+-\d+")  # a console refund recorded without the provider's number


class Matcher:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], settlement: SettlementService,
                 refunds: RefundService, healer: Healer):
        self._uow = uow_factory
        self._settlement = settlement
        self._refunds = refunds
        self._healer = healer

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


    def classify(self, statement: Statement, channel) -> RunReport:
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
            item.heal = lambda: self._healer.payment(book, order_id, channel, line)
        return item

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
                item.heal = lambda: self._healer.refund(channel, line)
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
        item.heal = lambda: self._healer.refund(channel, line)
        return item

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
