"""Read models of the merchant area: what its use cases answer, never a table row."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class MerchantOrderView(NamedTuple):
    """One merchant order (004, the merchant_orders columns); times naive UTC, money fen."""

    id: int
    order_code: str
    merchant_pk: int
    biz_code: str
    business_id: str
    product_code: str
    account: str
    mobile: str
    callback_url: str
    level: str
    months: int
    settlement_price_fen: int
    user_id: int | None
    state: str  # rules.OrderState
    fail_reason: str | None
    expires_at: datetime | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, order: Any) -> MerchantOrderView:
        """From an ORM row (the same attribute names)."""
        return cls._make(getattr(order, name) for name in cls._fields)


class MerchantBalanceEntryView(NamedTuple):
    """One movement of a merchant's prepaid balance (merchant_balance_entries); money fen,
    signed (a charge is negative), time naive UTC."""

    id: int
    kind: str  # topup | charge | refund
    amount_fen: int
    balance_after_fen: int
    order_code: str | None
    note: str | None
    created_at: datetime


class MerchantBalanceLedger(NamedTuple):
    """A page of a merchant's balance ledger, newest first, and what surrounds it."""

    entries: list[MerchantBalanceEntryView]
    more: bool  # a next page exists
    total: int  # entries the merchant has
    balance_fen: int  # the balance now
