"""The database stores times as naive UTC (SQLite has no time zones); the code
works with aware datetimes. These convert at the boundary."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo


def naive(aware: datetime) -> datetime:
    """Aware -> naive UTC, as stored."""
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def utc(stored: datetime | None) -> datetime | None:
    """Stored naive UTC -> aware UTC."""
    return stored.replace(tzinfo=timezone.utc) if stored is not None else None


def naive_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def day_start(day: date, tz: tzinfo, days_after: int = 0) -> datetime | None:
    """Naive UTC of local midnight `days_after` days after `day` in `tz`; None when
    that lies outside what datetime can hold (0001-01-01 east of UTC, 9999-12-31 + 1):
    a bound that far out bounds nothing."""
    try:
        return naive(datetime.combine(day + timedelta(days=days_after), time.min, tzinfo=tz))
    except OverflowError:
        return None
