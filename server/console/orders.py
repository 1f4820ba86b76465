"""One search over every order family (a read model): VIP (001), recharge (000, 002,
003) and merchant (004) orders as uniform rows, filtered, sorted and paged by the
database (one UNION ALL statement). Read-only: changes go through the areas' services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, case, cast, func, literal, select, union_all

from server.membership.tables import VipOrderRow
from server.merchant.tables import MerchantOrderRow
from server.platform import money
from server.platform.errors import Violations
from server.platform.unit_of_work import UnitOfWork
from server.recharge import rules as recharge_rules
from server.recharge.tables import RechargeOrderRow

FAMILIES = ("001", "000", "002", "003", "004")
STATES = ("unpaid", "paid", "closed", "failed", "processing")
ORDERINGS = {"": ("created_at", True), "create_time desc": ("created_at", True), "create_time": ("created_at", False),
             "amount desc": ("amount", True), "amount": ("amount", False)}
RECHARGE_FAMILIES = {"charge": "000", "recharge": "002", "center": "003"}
# As each family's own JSON shows an order's amount: 001 orders integer fen
# ("pay_amount": 5400, 分), 000/004 yuan numbers, 002 trimmed yuan, 003 two decimals.
RENDER: dict[str, Callable[[int], object]] = {
    "001": int, "000": money.yuan_number, "004": money.yuan_number,
    "002": money.yuan_string_trimmed, "003": money.yuan_string_2dp,
}


def display(family: str, fen: int) -> str:
    """Fen as `family` renders an order's amount."""
    shown = RENDER[family](fen)
    # A yuan number as its JSON prints it (`:g` would print 1234567.89 as 1.23457e+06).
    return money.number_text(fen) if isinstance(shown, float) else str(shown)


@dataclass(frozen=True)
class OrderFilter:
    family: str = ""
    order_number: str = ""
    user_id: int = 0
    channel: str = ""
    state: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None
    order_by: str = ""


@dataclass(frozen=True)
class OrderLine:
    family: str
    number: str
    user_id: int
    amount: int
    channel: str
    state: str
    created_at: datetime
    paid_at: datetime | None
    detail: str
    months: int

    @property
    def amount_display(self) -> str:
        return display(self.family, self.amount)

    @property
    def description(self) -> str:
        if self.family in ("001", "004") or self.months:
            return f"{self.detail} x{self.months}"
        return self.detail


def _text(value) -> object:
    return cast(value, String)


def all_orders():
    vip = select(
        literal("001").label("family"), VipOrderRow.trade_no.label("number"), VipOrderRow.user_id.label("user_id"),
        VipOrderRow.pay_amount.label("amount"), VipOrderRow.channel.label("channel"),
        case((VipOrderRow.pay_status == 1, "paid"), (VipOrderRow.closed_at.is_not(None), "closed"),
             else_="unpaid").label("state"),
        VipOrderRow.created_at.label("created_at"), VipOrderRow.paid_at.label("paid_at"),
        _text(VipOrderRow.level).label("detail"), cast(VipOrderRow.duration, Integer).label("months"),
    ).where(VipOrderRow.trade_no.is_not(None))
    recharge = select(
        case(*((RechargeOrderRow.family == k, v) for k, v in RECHARGE_FAMILIES.items()), else_="002").label("family"),
        RechargeOrderRow.order_number, RechargeOrderRow.user_id, RechargeOrderRow.amount, RechargeOrderRow.channel,
        case((RechargeOrderRow.state == recharge_rules.OrderState.PAID.value, "paid"),
             (RechargeOrderRow.state == recharge_rules.OrderState.FAILED.value, "closed"), else_="unpaid"),
        RechargeOrderRow.created_at, RechargeOrderRow.paid_at,
        _text(RechargeOrderRow.kind), cast(RechargeOrderRow.vip_months, Integer),
    ).where(RechargeOrderRow.order_number.is_not(None))
    merchant = select(
        literal("004"), MerchantOrderRow.order_code, func.coalesce(MerchantOrderRow.user_id, 0),
        MerchantOrderRow.settlement_price_fen, literal("merchant"),
        case((MerchantOrderRow.state == "success", "paid"), (MerchantOrderRow.state == "failed", "failed"),
             else_="processing"),
        MerchantOrderRow.created_at,
        case((MerchantOrderRow.state == "success", MerchantOrderRow.finished_at), else_=None),
        _text(MerchantOrderRow.level), cast(MerchantOrderRow.months, Integer),
    )
    return union_all(vip, recharge, merchant).subquery("orders")


def check_filter(f: OrderFilter) -> None:
    v = Violations()
    if f.family and f.family not in FAMILIES:
        v.add("family", f"One of {', '.join(FAMILIES)}.")
    if f.state and f.state not in STATES:
        v.add("state", f"One of {', '.join(STATES)}.")
    if f.order_by not in ORDERINGS:
        v.add("order_by", "One of: create_time desc, create_time, amount desc, amount.")
    if len(f.order_number) > 64 or len(f.channel) > 32:
        v.add("order_number" if len(f.order_number) > 64 else "channel", "Too long.")
    v.raise_if_any()


def search_orders(uow: UnitOfWork, f: OrderFilter, offset: int, limit: int) -> tuple[list[OrderLine], int]:
    check_filter(f)
    orders = all_orders()
    query = select(orders)
    for column, value in ((orders.c.family, f.family), (orders.c.number, f.order_number),
                          (orders.c.channel, f.channel), (orders.c.state, f.state)):
        if value:
            query = query.where(column == value)
    if f.user_id:
        query = query.where(orders.c.user_id == f.user_id)
    if f.created_from is not None:
        query = query.where(orders.c.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(orders.c.created_at < f.created_to)
    total = uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column, descending = ORDERINGS[f.order_by]
    key = orders.c[column]
    query = query.order_by(key.desc() if descending else key.asc(), orders.c.number.asc()).offset(offset).limit(limit)
    lines = [OrderLine(r.family, r.number, r.user_id or 0, r.amount, r.channel, r.state, r.created_at, r.paid_at,
                       r.detail or "", r.months or 0) for r in uow.session.execute(query)]
    return lines, total
