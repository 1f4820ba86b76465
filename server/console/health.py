"""The console's health page: today's orders, revenue and refunds per family (one
statement over the orders read model), the merchant callback backlog, database
readiness and the ledger invariants on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select, text

from server.console.orders import FAMILIES, all_orders, display
from server.payments.refund_tables import RefundRow
from server.platform.errors import Violations
from server.platform.times import day_start
from server.platform.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class FamilyDay:
    family: str
    orders: int
    paid: int
    revenue_fen: int
    refunded_fen: int

    @property
    def revenue_display(self) -> str:
        return display(self.family, self.revenue_fen)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        v = Violations()
        v.add("time_zone", "Not an IANA time zone.")
        v.raise_if_any()
        raise


def today(uow: UnitOfWork, tz: ZoneInfo, now: datetime) -> list[FamilyDay]:
    start = day_start(now.astimezone(tz).date(), tz)
    orders = all_orders()
    paid = orders.c.state == "paid"
    rows = {r.family: r for r in uow.session.execute(
        select(orders.c.family, func.count(), func.sum(case((paid, 1), else_=0)),
               func.sum(case((paid, orders.c.amount), else_=0)))
        .where(orders.c.created_at >= start).group_by(orders.c.family))}
    refunded = dict(uow.session.execute(
        select(orders.c.family, func.sum(RefundRow.amount_fen))
        .join(orders, orders.c.number == RefundRow.order_number)
        .where(RefundRow.created_at >= start, RefundRow.state != "failed").group_by(orders.c.family)).all())
    return [FamilyDay(f, rows[f][1] if f in rows else 0, int(rows[f][2] or 0) if f in rows else 0,
                      int(rows[f][3] or 0) if f in rows else 0, int(refunded.get(f) or 0)) for f in FAMILIES]


def database_ready(uow_factory: Callable[[], UnitOfWork]) -> str:
    """"" when the database answers, else its error (first line)."""
    try:
        with uow_factory() as uow:
            uow.session.execute(text("SELECT 1"))
        return ""
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", said as it is
        return str(exc).splitlines()[0][:300] or type(exc).__name__
