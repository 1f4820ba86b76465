"""The refund read model: what the refund use cases answer, never a table row."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class RefundView(NamedTuple):
    """One refund (the refunds columns, in order); times naive UTC, money fen."""

    id: int
    refund_no: str
    book: str  # vip_orders | recharge_orders | merchant_orders
    order_id: int
    order_number: str
    channel: str
    amount_fen: int
    reason: str
    state: str
    origin: str  # operator | provider (started in the provider's console)
    provider_refund_id: str | None
    take_back: str  # JSON: what was taken back (and any shortfall)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_queried_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> RefundView:
        return cls._make(getattr(row, name) for name in cls._fields)
