"""The database stores times as naive UTC (SQLite has no time zones); the code
works with aware datetimes. These convert at the boundary."""

from __future__ import annotations

from datetime import datetime, timezone


def naive(aware: datetime) -> datetime:
    """Aware -> naive UTC, as stored."""
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def utc(stored: datetime | None) -> datetime | None:
    """Stored naive UTC -> aware UTC."""
    return stored.replace(tzinfo=timezone.utc) if stored is not None else None


def naive_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
