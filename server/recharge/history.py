"""The 002 history page's statement: newest first by id, walking
ix_recharge_orders_user_store_id (user_id, store_id, id) with no sort.

SQLite is told the index: with a date window its planner may take
ix_recharge_orders_user_created from the table's statistics and then sort the window,
so the plan would depend on the data (membership/history.py does the same for 001)."""

from __future__ import annotations

import functools

from sqlalchemy import DateTime, TextualSelect, bindparam, text

from server.recharge.tables import RechargeOrderRow

_TABLE = RechargeOrderRow.__table__


@functools.cache
def page_statement(*, sqlite: bool, since: bool, until: bool, state: bool) -> TextualSelect:
    """One statement per shape; its rows are typed like the table's (RechargeOrderView)."""
    sql = ("SELECT " + ", ".join(c.name for c in _TABLE.columns) + " FROM recharge_orders"
           + (" INDEXED BY ix_recharge_orders_user_store_id" if sqlite else "")
           + " WHERE user_id = :user_id AND store_id = 0"
           + (" AND created_at >= :since" if since else "") + (" AND created_at < :until" if until else "")
           + (" AND state = :state" if state else "")
           + " ORDER BY id DESC LIMIT :limit OFFSET :offset")
    # The bounds bind as the column stores them (SQLite compares the text SQLAlchemy wrote).
    dated = [bindparam(name, type_=DateTime()) for name, used in (("since", since), ("until", until)) if used]
    return text(sql).bindparams(*dated).columns(*_TABLE.columns)
