"""Bulk-loads VIP and recharge orders for the history rows (ListVipOrders, 002
history): executemany in large transactions on SQLite, COPY on PostgreSQL. Plain
DB-API, not the service layer: a million orders through the ORM would take minutes.

The measured user (HISTORY_USER) has the same HISTORY_USER_ORDERS orders of each kind
whatever the table size, so the two p50s differ only by the table around them."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta

HISTORY_USER = 7
HISTORY_USER_ORDERS = 60
FILLER_USERS = 100_000
FIRST_FILLER_USER = 100_000  # filler users are 100000..199999: never a bench user

VIP_COLUMNS = ("trade_no", "user_id", "level", "duration", "quantity", "pay_method", "channel", "total_amount",
               "pay_amount", "pay_status", "vip_info", "timezone", "created_at", "updated_at")
RECHARGE_COLUMNS = ("order_number", "user_id", "store_id", "family", "kind", "plan_id", "amount", "gift_amount",
                    "vip_months", "pay_method", "channel", "state", "snapshot", "created_at", "updated_at")
VIP_INFO = json.dumps({"level": "middle", "name": "钻石会员", "duration": 3, "price": 54, "timezone": "Asia/Shanghai"},
                      ensure_ascii=False)
SNAPSHOT = json.dumps({"plan_id": 1, "amount": "10", "gift": "0"}, separators=(",", ":"))
EPOCH = datetime(2025, 1, 1)


def _rows(start: int, count: int, user_of) -> tuple[list[tuple], list[tuple]]:
    rnd = random.Random(start)
    vip, recharge = [], []
    for i in range(start, start + count):
        user = user_of(i, rnd)
        at = (EPOCH + timedelta(seconds=rnd.randrange(300 * 86400))).strftime("%Y-%m-%d %H:%M:%S.000000")
        paid = rnd.random() < 0.7
        vip.append((f"BV{i:018d}", user, "middle", 3, 1, "Alipay_AopApp", "alipay", 5400, 5400, int(paid),
                    VIP_INFO, "Asia/Shanghai", at, at))
        recharge.append((f"BR{i:018d}", user, 0, "recharge", "plan", 1, 1000, 0, 0, "alipay_wap", "alipay",
                         "SUCCESSFUL_PAYMENT" if paid else "WAITING_FOR_PAYMENT", SNAPSHOT, at, at))
    return vip, recharge


def _filler_user(_i: int, rnd: random.Random) -> int:
    return FIRST_FILLER_USER + rnd.randrange(FILLER_USERS)


def load(database_url: str, start: int, count: int, with_history_user: bool, batch: int = 50_000) -> None:
    """Adds `count` filler orders of each kind (numbered from `start`), plus the
    history user's orders when asked."""
    chunks = []
    if with_history_user:
        chunks.append(_rows(10**15, HISTORY_USER_ORDERS, lambda _i, _r: HISTORY_USER))
    for s in range(start, start + count, batch):
        chunks.append((s, min(batch, start + count - s)))
    if database_url.startswith("sqlite"):
        _load_sqlite(database_url.split("///", 1)[1], chunks)
    else:
        _load_postgres(database_url, chunks)


def load_user(database_url: str, user_id: int, count: int, start: int = 10**16) -> None:
    """`count` orders of each kind for one user (tests/edge/test_history_plans.py)."""
    chunk = _rows(start, count, lambda _i, _r: user_id)
    if database_url.startswith("sqlite"):
        _load_sqlite(database_url.split("///", 1)[1], [chunk])
    else:
        _load_postgres(database_url, [chunk])


def _materialise(chunk):
    return _rows(chunk[0], chunk[1], _filler_user) if isinstance(chunk[0], int) else chunk


def _load_sqlite(path: str, chunks) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        for chunk in chunks:
            vip, recharge = _materialise(chunk)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO vip_orders ({','.join(VIP_COLUMNS)}) VALUES "
                             f"({','.join('?' * len(VIP_COLUMNS))})", vip)
            conn.executemany(f"INSERT INTO recharge_orders ({','.join(RECHARGE_COLUMNS)}) VALUES "
                             f"({','.join('?' * len(RECHARGE_COLUMNS))})", recharge)
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _load_postgres(url: str, chunks) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=False) as conn:
        for chunk in chunks:
            vip, recharge = _materialise(chunk)
            with conn.cursor() as cur:
                for table, columns, rows in (("vip_orders", VIP_COLUMNS, vip),
                                             ("recharge_orders", RECHARGE_COLUMNS, recharge)):
                    with cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE vip_orders")
        conn.execute("ANALYZE recharge_orders")


def explain(database_url: str, sql: str, params: tuple) -> str:
    """The query plan of one history query, to show which index serves the ORDER BY."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split("///", 1)[1])
        try:
            return "; ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        sql_pg = sql.replace("?", "%s")
        return "; ".join(r[0].strip() for r in conn.execute("EXPLAIN " + sql_pg, params))


def count_orders(database_url: str, user_id: int) -> int:
    sql = "SELECT count(*) FROM vip_orders WHERE user_id = ?"
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split("///", 1)[1])
        try:
            return conn.execute(sql, (user_id,)).fetchone()[0]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute(sql.replace("?", "%s"), (user_id,)).fetchone()[0]

