"""Read models of the membership area: what its use cases answer, never a table row.
Immutable, built from a row: a NamedTuple whose fields are the table's columns in order, so a
Core row of the hot history read becomes a view with one C-level call (`_make`), no
per-field work."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from collections.abc import Mapping
from typing import Any, NamedTuple, Sequence


class VipOrderView(NamedTuple):
    """One VIP order (the vip_orders columns); times naive UTC, money fen."""

    id: int
    trade_no: str | None
    user_id: int
    request_id: str | None
    level: str
    duration: int
    quantity: int
    pay_method: str
    channel: str
    total_amount: int
    pay_amount: int
    pay_status: int
    vip_info: Mapping[str, Any]
    timezone: str
    provider_txn_id: str | None
    paid_at: datetime | None
    user_deleted_at: datetime | None
    platform_deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_queried_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> VipOrderView:
        """From column values by name (missing ones None). SQLite hands JSON and times
        back as text from a plain statement: parsed here."""
        values = {name: row.get(name) for name in cls._fields}
        if isinstance(values["vip_info"], str):
            values["vip_info"] = json.loads(values["vip_info"])
        for name in TIME_FIELDS:
            if isinstance(values[name], str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> VipOrderView:
        """From column values in order (a plain statement's row, GetVipOrder's hot read):
        only the JSON and time columns SQLite answers as text are touched."""
        row = list(values)
        if isinstance(row[VIP_INFO], str):
            row[VIP_INFO] = _vip_info(row[VIP_INFO])
        for i in TIME_INDEXES:
            if isinstance(row[i], str):
                row[i] = datetime.fromisoformat(row[i])
        return cls._make(row)

    @classmethod
    def of(cls, order: Any) -> VipOrderView:
        """From an ORM row (the same attribute names)."""
        return cls._make(getattr(order, name) for name in cls._fields)


FIELDS = VipOrderView._fields
TIME_FIELDS = ("paid_at", "user_deleted_at", "platform_deleted_at", "created_at", "updated_at", "last_queried_at",
               "closed_at")
VIP_INFO = FIELDS.index("vip_info")
TIME_INDEXES = tuple(FIELDS.index(name) for name in TIME_FIELDS)


class StoredVipInfo(Mapping):
    """An order's vip_info as stored: read-only and hashable (by its JSON text), so what
    is built from it (the VipInfo message) can be cached per distinct text."""

    __slots__ = ("_values", "_hash")

    def __init__(self, text: str):
        self._values, self._hash = json.loads(text), hash(text)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self._values == (other._values if isinstance(other, StoredVipInfo) else other)

    def __repr__(self) -> str:
        return repr(self._values)


@functools.lru_cache(maxsize=1024)
def _vip_info(text: str) -> StoredVipInfo:
    """Decoded once per distinct text: a page of orders holds the few catalog entries of
    its time, so a history page decodes none."""
    return StoredVipInfo(text)


class GrantView(NamedTuple):
    """One membership_grants row: what moved one level's expiry; times naive UTC."""

    id: int
    level: str
    source: str  # vip_order | recharge_order | merchant_order | exchange_in | exchange_out | iap_refund | order_refund…
    source_ref: str
    previous_expires_at: datetime | None
    expires_at: datetime
    created_at: datetime

    @property
    def added(self) -> timedelta:
        """What this entry added to the level (negative: taken back). A grant to a lapsed
        or never held level starts when it was recorded (ledger.granted_span's rule)."""
        previous = self.previous_expires_at
        if previous is not None and self.expires_at <= previous:  # a take-back or an exchange's consumed level
            return self.expires_at - previous
        return self.expires_at - max(previous or self.created_at, self.created_at)


class GrantChain(NamedTuple):
    """A page of a user's membership ledger, newest first, and what surrounds it."""

    grants: list[GrantView]
    more: bool  # a next page exists
    total: int  # grants the user has
