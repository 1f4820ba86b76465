"""One order's detail for the console (a read model over every area's tables, like
the search in orders.py): its payment data, the provider statements it received
(payments/notes.py), what it granted or credited, its refunds and, for 004, its
merchant balance entries and status callbacks. Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select

from server.console.orders import OrderFilter, OrderLine, search_orders
from server.membership.tables import MembershipGrantRow, VipOrderRow
from server.merchant.tables import MerchantBalanceEntryRow, MerchantCallbackRow, MerchantOrderRow
from server.payments.notes import PaymentNote, notes_of
from server.payments.refund_tables import RefundRow
from server.platform.errors import Violations, not_found
from server.platform.unit_of_work import UnitOfWork
from server.recharge.tables import RechargeOrderRow, WalletEntryRow, WalletRow

REFUND_GRANT_SOURCES = ("order_refund", "order_refund_undo")  # membership take-backs of a refund (ledger.py)


@dataclass(frozen=True)
class Grant:
    level: str
    source: str
    source_ref: str
    previous_expires_at: datetime | None
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Entry:
    """A wallet entry (reason) or a merchant balance entry (kind); signed fen."""
    kind: str
    amount_fen: int
    balance_after_fen: int
    reference: str
    created_at: datetime


@dataclass(frozen=True)
class Refund:
    refund_no: str
    amount_fen: int
    state: str
    reason: str
    origin: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Callback:
    url: str
    state: str
    attempts: int
    last_error: str
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class OrderDetail:
    line: OrderLine
    payment: list[tuple[str, str]]
    notes: list[PaymentNote] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    wallet: list[Entry] = field(default_factory=list)
    merchant_balance: list[Entry] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)

    @property
    def can_close(self) -> bool:
        return self.line.family != "004" and self.line.state == "unpaid"


def _text(value) -> str:
    return "" if value is None else value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)


def _grants(uow: UnitOfWork, source: str, order_id: int, refund_nos: list[str]) -> list[Grant]:
    rows = uow.session.scalars(select(MembershipGrantRow).where(or_(
        (MembershipGrantRow.source == source) & (MembershipGrantRow.source_ref == str(order_id)),
        MembershipGrantRow.source.in_(REFUND_GRANT_SOURCES) & MembershipGrantRow.source_ref.in_(refund_nos or [""]),
    )).order_by(MembershipGrantRow.id))
    return [Grant(r.level, r.source, r.source_ref, r.previous_expires_at, r.expires_at, r.created_at) for r in rows]


def _refunds(uow: UnitOfWork, book: str, order_id: int) -> list[Refund]:
    rows = uow.session.scalars(select(RefundRow).where(RefundRow.book == book, RefundRow.order_id == order_id)
                               .order_by(RefundRow.id))
    return [Refund(r.refund_no, r.amount_fen, r.state, r.reason, r.origin, r.created_at, r.finished_at) for r in rows]


def _vip(uow: UnitOfWork, line: OrderLine) -> OrderDetail:
    order = uow.session.scalar(select(VipOrderRow).where(VipOrderRow.trade_no == line.number))
    refunds = _refunds(uow, "vip_orders", order.id)
    payment = [("pay_method", order.pay_method), ("provider_txn_id", order.provider_txn_id),
               ("total_amount", str(order.total_amount)), ("quantity", str(order.quantity)),
               ("timezone", order.timezone), ("last_queried_at", _text(order.last_queried_at)),
               ("closed_at", _text(order.closed_at))]
    return OrderDetail(line, payment, notes_of(uow, "vip_orders", order.id),
                       _grants(uow, "vip_order", order.id, [r.refund_no for r in refunds]), refunds=refunds)


def _recharge(uow: UnitOfWork, line: OrderLine) -> OrderDetail:
    order = uow.session.scalar(select(RechargeOrderRow).where(RechargeOrderRow.order_number == line.number))
    refunds = _refunds(uow, "recharge_orders", order.id)
    references = [f"recharge_order:{order.id}"] + [f"refund:{r.refund_no}" for r in refunds]
    wallet = [Entry(r.reason, r.amount, r.balance_after, r.reference, r.created_at) for r in uow.session.scalars(
        select(WalletEntryRow).join(WalletRow, WalletRow.id == WalletEntryRow.wallet_id)
        .where(WalletRow.user_id == order.user_id, WalletEntryRow.reference.in_(references))
        .order_by(WalletEntryRow.id))]
    payment = [("pay_method", order.pay_method), ("provider_txn_id", order.provider_txn_id),
               ("state", order.state), ("kind", order.kind), ("gift_amount_fen", str(order.gift_amount)),
               ("vip_gift", f"{order.vip_level} x{order.vip_months}" if order.vip_months else ""),
               ("store_id", str(order.store_id)), ("last_queried_at", _text(order.last_queried_at))]
    return OrderDetail(line, payment, notes_of(uow, "recharge_orders", order.id),
                       _grants(uow, "recharge_order", order.id, [r.refund_no for r in refunds]), wallet,
                       refunds=refunds)


def _merchant(uow: UnitOfWork, line: OrderLine) -> OrderDetail:
    order = uow.session.scalar(select(MerchantOrderRow).where(MerchantOrderRow.order_code == line.number))
    refunds = _refunds(uow, "merchant_orders", order.id)
    balance = [Entry(r.kind, r.amount_fen, r.balance_after_fen, r.note or "", r.created_at) for r in uow.session.scalars(
        select(MerchantBalanceEntryRow).where(MerchantBalanceEntryRow.order_pk == order.id)
        .order_by(MerchantBalanceEntryRow.id))]
    callbacks = [Callback(r.url, r.state, r.attempts, r.last_error or "", r.delivered_at, r.created_at)
                 for r in uow.session.scalars(select(MerchantCallbackRow).where(MerchantCallbackRow.order_pk == order.id)
                                              .order_by(MerchantCallbackRow.id))]
    payment = [("business_id", order.business_id), ("biz_code", order.biz_code), ("product_code", order.product_code),
               ("account", order.account), ("callback_url", order.callback_url), ("fail_reason", order.fail_reason or ""),
               ("finished_at", _text(order.finished_at))]
    return OrderDetail(line, payment, [], _grants(uow, "merchant_order", order.id, [r.refund_no for r in refunds]),
                       merchant_balance=balance, refunds=refunds, callbacks=callbacks)


def order_detail(uow: UnitOfWork, number: str) -> OrderDetail:
    if not number:
        v = Violations()
        v.add("order_number", "Required.")
        v.raise_if_any()
    lines, _ = search_orders(uow, OrderFilter(order_number=number), 0, 1)
    if not lines:
        raise not_found("order", number)
    line = lines[0]
    load = _vip if line.family == "001" else _merchant if line.family == "004" else _recharge
    return load(uow, line)
