"""Membership tables: VIP catalog and orders, memberships and their grants, App Store
redemptions. Times are naive UTC; money is integer fen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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


class VipCatalogRow(Base):
    """The single catalog document; `version` bumps on every edit so replicas reload."""

    __tablename__ = "vip_catalog"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    switch: Mapped[bool] = mapped_column(Boolean)
    exchange: Mapped[int] = mapped_column(Integer)
    levels: Mapped[dict] = mapped_column(JSON)  # prices in fen
    protocol_html: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class VipOrderRow(Base):
    __tablename__ = "vip_orders"
    __table_args__ = (
        UniqueConstraint("user_id", "request_id", name="uq_vip_orders_user_request"),
        Index("ix_vip_orders_user_created", "user_id", "created_at"),
        Index("ix_vip_orders_user_id", "user_id", "id"),  # ListVipOrders: newest first by id
        Index("ix_vip_orders_unpaid_created", "pay_status", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trade_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(10))
    duration: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    pay_method: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    pay_amount: Mapped[int] = mapped_column(BigInteger)
    pay_status: Mapped[int] = mapped_column(Integer, default=0)
    vip_info: Mapped[dict] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    provider_txn_id: Mapped[str | None] = mapped_column(String(128))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    user_deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    platform_deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # Settlement (payments/settlement.py): an unpaid order is re-queried at the
    # provider when no notification came, and closed after the configured time.
    last_queried_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)


class MembershipRow(Base):
    """Current expiry per user and level: the index membership status is read from."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "level", name="uq_memberships_user_level"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    level: Mapped[str] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MembershipGrantRow(Base):
    """Every change to a membership, keyed by its source: the unique key is the
    last line of defence against granting one payment twice."""

    __tablename__ = "membership_grants"
    __table_args__ = (
        UniqueConstraint("source", "source_ref", "level", name="uq_grants_source"),
        Index("ix_membership_grants_chain", "user_id", "id"),  # the console's grant chain: newest first by id
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    level: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20))  # vip_order | exchange | ...
    source_ref: Mapped[str] = mapped_column(String(64))
    previous_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class IapRedemptionRow(Base):
    """An App Store transaction id is redeemed once, ever."""

    __tablename__ = "iap_redemptions"
    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("vip_orders.id"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AppStoreNotificationRow(Base):
    """App Store Server Notifications V2 already handled, by notificationUUID
    (Apple re-sends until it gets a 2xx)."""

    __tablename__ = "appstore_notifications"
    notification_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    notification_type: Mapped[str] = mapped_column(String(40))
    subtype: Mapped[str | None] = mapped_column(String(40))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class IapTransactionRow(Base):
    """One row per App Store transaction we heard of, by a redemption or a REFUND /
    REVOKE notification. Both paths lock this row before acting, so a refund that
    races the redemption is ordered: either the redemption sees `revoked_at` and is
    refused, or the notification sees the redemption and takes the days back."""

    __tablename__ = "iap_transactions"
    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revocation: Mapped[str | None] = mapped_column(String(20))  # REFUND | REVOKE
    created_at: Mapped[datetime] = mapped_column(DateTime)
