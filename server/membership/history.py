"""The 001 history page read: one prebuilt plain statement per page shape, the fen
refunded of each order in it (a hot read: views are built from its rows by the caller)."""

from __future__ import annotations

from datetime import date, datetime

from server.membership import rules
from server.membership.tables import VipOrderRow
from server.payments.refund_records import refunded_sql
from server.platform.errors import Violations
from server.platform.times import day_start

# A history page, newest first: ix_vip_orders_user_id (user_id, id) gives the order
# without a sort. One statement per (sqlite, since, until, before_id) shape. SQLite is
# told the index: with a date window its planner may take (user_id, created_at) from
# the table's statistics and then sort the window, so the plan would depend on the data.
# vip_info comes back as its JSON text on both (PostgreSQL's driver would parse each row's):
# views.StoredVipInfo decodes, and its VipInfo message is built, once per distinct text.
LIST_ORDERS = {
    (sqlite, since, until, before): (
        "SELECT " + ", ".join(c.name if c.name != "vip_info" or sqlite else "vip_info::text"
                              for c in VipOrderRow.__table__.columns) + ", "
        f"{refunded_sql('vip_orders', 'vip_orders.id')} FROM vip_orders "
        + ("INDEXED BY ix_vip_orders_user_id " if sqlite else "")
        + "WHERE user_id = :user_id AND user_deleted_at IS NULL"
        + (" AND created_at >= :since" if since else "") + (" AND created_at < :until" if until else "")
        + (" AND id < :before_id" if before else "") + " ORDER BY id DESC LIMIT :limit OFFSET :offset")
    for sqlite in (False, True) for since in (False, True) for until in (False, True) for before in (False, True)
}


def _sql_time(value: datetime, sqlite: bool) -> datetime | str:
    """A naive UTC bound as the column holds it: SQLite compares the text SQLAlchemy wrote."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else value


def read_history_page(reads, user_id: int, *, offset: int, limit: int, start: str, end: str,
                      timezone_name: str, before_id: int | None) -> list[tuple]:
    """Up to limit + 1 rows (the extra one says more follow): the order's columns, then
    the fen refunded of it. `reads`: the hot reads (platform/hot_reads.py); the page is one
    statement on the read thread's kept connection (`reads.many`), like CheckVipOrder's
    row: no pool checkout, BEGIN or COMMIT per page."""
    tz, bounds = _history_window(offset, limit, start, end, timezone_name)
    params = {"user_id": user_id, "limit": limit + 1, "offset": offset}
    since = day_start(bounds["s"], tz) if "s" in bounds else None
    until = day_start(bounds["d"], tz, days_after=1) if "d" in bounds else None
    sqlite = reads.dialect == "sqlite"
    if since is not None:
        params["since"] = _sql_time(since, sqlite)
    if until is not None:
        params["until"] = _sql_time(until, sqlite)
    if before_id is not None:
        params["before_id"] = before_id
    return reads.many(LIST_ORDERS[sqlite, since is not None, until is not None, before_id is not None], params)


def _history_window(offset: int, limit: int, start: str, end: str, timezone_name: str) -> tuple:
    """Checks a history page's arguments (all violations at once): (zone, {s, d: date})."""
    v = Violations()
    if offset < 0:
        v.add("offset", "The offset must be at least 0.")
    if not 1 <= limit <= 100:
        v.add("limit", "The limit must be between 1 and 100.")
    try:
        tz = rules.zone(timezone_name)
    except ValueError:
        v.add("timezone", "The timezone must be a valid IANA zone.")
        tz = None
    bounds = {}
    for field_name, text in (("s", start), ("d", end)):
        if text:
            try:
                bounds[field_name] = date.fromisoformat(text)
            except ValueError:
                v.add(field_name, f"The {field_name} must be a date YYYY-MM-DD.")
    v.raise_if_any()
    return tz, bounds
