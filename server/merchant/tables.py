"""Tables of the merchant OpenAPI (api-docs/004): merchants, their business lines
and products, the prepaid balance ledger, nonces, orders and the callback outbox.
Money is integer fen; times are naive UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
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


class MerchantRow(Base):
    __tablename__ = "merchants"
    __table_args__ = (CheckConstraint("balance_fen >= 0", name="ck_merchants_balance_nonnegative"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(String(64), unique=True)  # the public merchantId
    name: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(10))  # active | disabled
    rsa_public_key: Mapped[str | None] = mapped_column(Text)  # PEM; the private key is the merchant's
    md5_secret: Mapped[str | None] = mapped_column(String(128))  # HMAC key, needed to verify
    balance_fen: Mapped[int] = mapped_column(BigInteger)
    callback_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantBusinessRow(Base):
    """A businessId (the header every request carries) and the merchant it belongs to."""

    __tablename__ = "merchant_businesses"
    business_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_pk: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantProductRow(Base):
    """What a merchant may buy: productCode -> membership level + months, at a settlement price."""

    __tablename__ = "merchant_products"
    __table_args__ = (UniqueConstraint("merchant_pk", "product_code", name="uq_merchant_products_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_pk: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    product_code: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(10))
    months: Mapped[int] = mapped_column(Integer)
    settlement_price_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))  # active | disabled
    created_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantBalanceEntryRow(Base):
    """Every balance movement (top-up, charge, refund) with the balance after it."""

    __tablename__ = "merchant_balance_entries"
    __table_args__ = (Index("ix_merchant_balance_entries_merchant_id", "merchant_pk", "id"),)  # the ledger, newest first
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_pk: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # topup | charge | refund
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # signed
    balance_after_fen: Mapped[int] = mapped_column(BigInteger)
    order_pk: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantNonceRow(Base):
    """A nonce is accepted once per businessId: the primary key holds across replicas."""

    __tablename__ = "merchant_nonces"
    business_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class UserAccountRow(Base):
    """How a merchant's `account` resolves to a platform user (see docs/openapi.md)."""

    __tablename__ = "user_accounts"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    mobile: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantOrderRow(Base):
    __tablename__ = "merchant_orders"
    __table_args__ = (UniqueConstraint("merchant_pk", "biz_code", name="uq_merchant_orders_biz_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_code: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_pk: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    biz_code: Mapped[str] = mapped_column(String(64))
    business_id: Mapped[str] = mapped_column(String(64))
    product_code: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    mobile: Mapped[str] = mapped_column(String(64))
    callback_url: Mapped[str] = mapped_column(String(512))  # as sent ("" = merchant default)
    level: Mapped[str] = mapped_column(String(10))
    months: Mapped[int] = mapped_column(Integer)
    settlement_price_fen: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))  # processing | success | failed
    fail_reason: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class MerchantCallbackRow(Base):
    """Outbox: one status report per final order state, written in the order's
    transaction and delivered by the dispatcher (merchant/callbacks.py)."""

    __tablename__ = "merchant_callbacks"
    __table_args__ = (Index("ix_merchant_callbacks_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("merchant_orders.id"), index=True)
    business_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(512))
    body: Mapped[str] = mapped_column(Text)  # the JSON sent, byte for byte, on every attempt
    state: Mapped[str] = mapped_column(String(12))  # pending | delivered | undelivered
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MerchantCallbackAttemptRow(Base):
    """One row per attempt sent: (callback, attempt) is unique, so two dispatchers
    can never both record sending the same attempt."""

    __tablename__ = "merchant_callback_attempts"
    __table_args__ = (UniqueConstraint("callback_pk", "attempt", name="uq_merchant_callback_attempt"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    callback_pk: Mapped[int] = mapped_column(ForeignKey("merchant_callbacks.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    dispatcher: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
