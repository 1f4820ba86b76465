"""What a reconciliation run reports (docs/reconciliation.md): the classes and actions
of an item, the item and report records, the business day, the summary. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from server.payments.statements import PAYMENT, REFUND, Statement
from server.platform.times import naive

SHANGHAI = timezone(timedelta(hours=8))
MATCHED, PROVIDER_ONLY_PAID, PROVIDER_ONLY_REFUND, LOCAL_ONLY, MISMATCH = (
    "matched", "provider_only_paid", "provider_only_refund", "local_only", "mismatch")
CLASSES = (MATCHED, PROVIDER_ONLY_PAID, PROVIDER_ONLY_REFUND, LOCAL_ONLY, MISMATCH)
NONE, APPLIED, WOULD_APPLY, FLAGGED = "none", "applied", "would_apply", "flagged"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


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


def summary(statement: Statement, report: RunReport) -> dict:
    payments = [i for i in report.items if i.kind == PAYMENT and i.provider_amount_fen is not None]
    refunds = [i for i in report.items if i.kind == REFUND and i.provider_amount_fen is not None]
    fees = sum(i.fee_fen for i in report.items)
    paid = sum(i.provider_amount_fen for i in payments)
    refunded = sum(i.provider_amount_fen for i in refunds)
    return {"counts": report.counts(), "lines": len(statement.lines), "paid_fen": paid,
            "refunded_fen": refunded, "fees_fen": fees, "net_fen": paid - refunded - fees,
            "provider_totals": statement.totals}
