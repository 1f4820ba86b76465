"""Read models of the membership area: what its use cases answer, never a table row.
Immutable, built from a row: a NamedTuple whose fields are the table's columns in order, so a
Core row of the hot history read becomes a view with one C-level call (`_make`), no
per-field work."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping, NamedTuple, Sequence


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
    vip_info: dict
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
            row[VIP_INFO] = json.loads(row[VIP_INFO])
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
