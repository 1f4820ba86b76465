"""Rate limits: fixed-window counters in the database (so every replica counts
together, on PostgreSQL as on SQLite). A generic primitive: the areas name their
actions and choose their limits (server/app.py composes them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import BigInteger, Connection, Integer, String, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base
from server.platform.errors import DomainError, Kind
from server.platform.group_commit import single_commits
from server.platform.unit_of_work import UnitOfWork


class RateCounterRow(Base):
    """Fixed-window request counters, in the database so every replica shares them."""

    __tablename__ = "rate_counters"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class RateLimit:
    """Attempts at one action per user and per client IP in each fixed window."""

    per_user: int
    per_ip: int
    window_seconds: int


def rate_limited(retry_after: int) -> DomainError:
    return DomainError("RATE_LIMITED", "Too many requests; please retry later.", Kind.RESOURCE_EXHAUSTED,
                       metadata={"retry_after_seconds": str(retry_after)})


class RateLimiter:
    """Counts attempts at named actions; `rates`: action -> RateLimit (an action
    without one is not limited)."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], rates: Mapping[str, RateLimit] | None = None, *,
                 clock: Callable[[], float] = time.time, writes: Callable | None = None):
        # Counter updates share the group commit of the orders they guard (group_commit.py
        # GroupCommit): a transaction of their own per request cost an fsync per order.
        self._writes = writes or single_commits(uow_factory)
        self._clock = clock
        self._rates = MappingProxyType(dict(rates or {}))  # fixed when built: other limits, another limiter

    @property
    def rates(self) -> Mapping[str, RateLimit]:
        """action -> RateLimit, read-only."""
        return self._rates

    def hit_all(self, keys: list[str], window_seconds: int) -> dict[str, int]:
        """Counts one request for each key in the current window, in one transaction
        (committed even when the request then fails); returns each key's count."""
        window = int(self._clock()) // window_seconds * window_seconds
        return self._writes(lambda conn: _count(conn, keys, window))  # re-runnable: a failed batch rolls back first

    def attempt(self, action: str, user_id: int, client_ip: str) -> Callable[[Connection], DomainError | None]:
        """A write job (a function of a Connection) that counts one attempt at `action`
        and answers its refusal, or None. An order path runs it inside its own write
        job, so the count shares the order's transaction and commit; a refused
        attempt's count commits too (the refusal is returned, not raised)."""
        rate = self._rates.get(action)
        if rate is None:
            return lambda conn: None
        now = int(self._clock())
        window = now // rate.window_seconds * rate.window_seconds
        user_key, ip_key = f"{action}:user:{user_id}", f"{action}:ip:{client_ip}"

        def count(conn: Connection) -> DomainError | None:
            counts = _count(conn, [user_key, ip_key] if client_ip else [user_key], window)
            if counts[user_key] > rate.per_user or counts.get(ip_key, 0) > rate.per_ip:
                return rate_limited(rate.window_seconds - now % rate.window_seconds)
            return None

        return count

    def limit(self, action: str, user_id: int, client_ip: str) -> None:
        """Counts one attempt at `action` in a transaction of its own; over the user's
        or the IP's limit it is refused (RESOURCE_EXHAUSTED: 429 or code 429 in the
        family's envelope)."""
        refusal = self._writes(self.attempt(action, user_id, client_ip))
        if refusal is not None:
            raise refusal


# Built once: constructing (and cache-keying) the upsert per request cost more than running it.
_UPSERT = {
    name: dialect.insert(RateCounterRow)
    .values(key=bindparam("key"), window_start=bindparam("window"), count=1)
    .on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": RateCounterRow.count + 1})
    .returning(RateCounterRow.count)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_FORGET_OLDER = delete(RateCounterRow).where(RateCounterRow.key == bindparam("key"),
                                             RateCounterRow.window_start < bindparam("window"))


def _count(conn: Connection, keys: list[str], window: int) -> dict[str, int]:
    """Counts one hit for each key in `window`; keys in sorted order, so concurrent
    requests lock their rows in one order."""
    counts = {}
    for key in sorted(set(keys)):
        counts[key] = conn.execute(_UPSERT[conn.dialect.name], {"key": key, "window": window}).scalar_one()
        if counts[key] == 1:  # first hit of a window: forget the key's older windows
            conn.execute(_FORGET_OLDER, {"key": key, "window": window})
    return counts
