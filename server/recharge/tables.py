"""Recharge and wallet tables (the one declarative Base of platform/database.py). Money is fen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base, BigId


class RechargeCatalogRow(Base):
    """The single catalog document; `version` bumps on every edit so replicas reload."""

    __tablename__ = "recharge_catalog"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class WalletRow(Base):
    """A balance per (user, store); store 0 is the platform wallet. `balance` is a
    cache of the sum of its entries, changed only together with a new entry."""

    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("user_id", "store_id", name="uq_wallets_user_store"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class WalletEntryRow(Base):
    """One signed change of a balance. (wallet, reason, reference) is unique so one
    cause moves money once; (wallet, request_id) makes internal calls idempotent."""

    __tablename__ = "wallet_entries"
    __table_args__ = (
        UniqueConstraint("wallet_id", "reason", "reference", name="uq_wallet_entries_cause"),
        UniqueConstraint("wallet_id", "request_id", name="uq_wallet_entries_request"),
        Index("ix_wallet_entries_wallet_id", "wallet_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class RechargeOrderRow(Base):
    """A recharge order. `snapshot` (JSON text) and the amounts are fixed at creation;
    only state, provider_txn_id, paid_at and updated_at change, once."""

    __tablename__ = "recharge_orders"
    __table_args__ = (
        Index("ix_recharge_orders_user_created", "user_id", "store_id", "created_at"),
        Index("ix_recharge_orders_user_store_id", "user_id", "store_id", "id"),  # 002 history: newest first by id
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    store_id: Mapped[int] = mapped_column(BigInteger, default=0)
    family: Mapped[str] = mapped_column(String(10))  # charge (000) | recharge (002) | center (003)
    kind: Mapped[str] = mapped_column(String(10))  # plan | custom | package
    plan_id: Mapped[int | None] = mapped_column(Integer)
    package_id: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    gift_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    vip_level: Mapped[str | None] = mapped_column(String(10))
    vip_months: Mapped[int] = mapped_column(Integer, default=0)
    pay_method: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(24))
    snapshot: Mapped[str] = mapped_column(Text)
    provider_txn_id: Mapped[str | None] = mapped_column(String(128))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    last_queried_at: Mapped[datetime | None] = mapped_column(DateTime)  # settlement re-query claim


class UserProfileRow(Base):
    """What 003's `personal` shows beyond the wallet: a user's profile in one store.
    The user service that owns these facts is not part of this repository, so an
    operator (or that service, through the CLI) keeps this copy (docs/recharge.md)."""

    __tablename__ = "user_profiles"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    store_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    mobile: Mapped[str] = mapped_column(String(32))  # stored whole, shown masked
    nick_name: Mapped[str] = mapped_column(String(64))
    avatar_id: Mapped[int] = mapped_column(Integer)
    gender: Mapped[str] = mapped_column(String(8))
    address_id: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    grade_id: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(32))  # where the user registered, e.g. MP-WEIXIN
    last_login_time: Mapped[int] = mapped_column(BigInteger)  # Unix seconds
    updated_at: Mapped[datetime] = mapped_column(DateTime)
