"""Reconciliation against the providers' daily statements (docs/reconciliation.md).

One run row per (business date, channel): it is also the lease that lets one replica
run that date (lease_until), and it keeps the last attempt's outcome. Its items are
the report, replaced as a whole by each successful run. Money is fen; times naive UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base, BigId


class ReconciliationRunRow(Base):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (UniqueConstraint("business_date", "channel", name="uq_reconciliation_runs_date_channel"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    business_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, Asia/Shanghai
    channel: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))  # running | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text)  # JSON: counts by class, totals, fees
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)  # a failed run is retried from then
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime)  # the last successful run


class ReconciliationItemRow(Base):
    __tablename__ = "reconciliation_items"
    __table_args__ = (Index("ix_reconciliation_items_run", "run_id", "category"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    # matched | provider_only_paid | provider_only_refund | local_only | mismatch
    category: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(8))  # payment | refund
    order_number: Mapped[str] = mapped_column(String(64))
    refund_no: Mapped[str] = mapped_column(String(64), default="")
    book: Mapped[str] = mapped_column(String(20), default="")
    provider_txn_id: Mapped[str] = mapped_column(String(64), default="")
    provider_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    local_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    action: Mapped[str] = mapped_column(String(16))  # none | applied | flagged
    detail: Mapped[str] = mapped_column(String(255), default="")
