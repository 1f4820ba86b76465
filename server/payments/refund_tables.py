"""Refunds of provider-paid orders (and of merchant orders, to the prepaid balance).
One row per refund, keyed by our refund number (`refund_no`, unique: the provider
dedupes on it too, so a retry never refunds twice). Money is fen; times naive UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base, BigId


class RefundRow(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_order", "book", "order_id"),
        Index("ix_refunds_open", "state", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    book: Mapped[str] = mapped_column(String(20))  # vip_orders | recharge_orders | merchant_orders
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_number: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(255))
    # pending (not yet confirmed by the provider) | processing | succeeded | failed | abnormal
    state: Mapped[str] = mapped_column(String(12))
    origin: Mapped[str] = mapped_column(String(10))  # operator | provider (started in the provider's console)
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    take_back: Mapped[str] = mapped_column(Text)  # JSON: what was taken back (and any shortfall)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_queried_at: Mapped[datetime | None] = mapped_column(DateTime)
