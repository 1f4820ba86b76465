"""Read models of the recharge area: what its use cases answer, never a table row.
Immutable NamedTuples whose fields are the table's columns in order, so a Core row of
the hot history read becomes a view with one C-level call (`_make`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class RechargeOrderView(NamedTuple):
    """One recharge order (000/002/003, the recharge_orders columns); naive UTC, fen."""

    id: int
    order_number: str | None
    user_id: int
    store_id: int
    family: str
    kind: str
    plan_id: int | None
    package_id: int | None
    amount: int
    gift_amount: int
    vip_level: str | None
    vip_months: int
    pay_method: str
    channel: str
    state: str  # rules.STATES
    snapshot: str
    provider_txn_id: str | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_queried_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> RechargeOrderView:
        """From an ORM row (the same attribute names)."""
        return cls._make(getattr(row, name) for name in cls._fields)


class WalletEntryView(NamedTuple):
    """One signed change of a balance (wallet_entries)."""

    id: int
    wallet_id: int
    amount: int
    balance_after: int
    reason: str
    reference: str
    request_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> WalletEntryView:
        return cls._make(getattr(row, name) for name in cls._fields)


class UserProfileView(NamedTuple):
    """A user's profile in one store (user_profiles; 003's `personal`)."""

    user_id: int
    store_id: int
    mobile: str
    nick_name: str
    avatar_id: int
    gender: str
    address_id: int
    points: int
    grade_id: int
    platform: str
    last_login_time: int
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> UserProfileView:
        """From an ORM row (the same attribute names)."""
        return cls._make(getattr(row, name) for name in cls._fields)
