"""Abuse control for order creation: fixed-window counters in the database (so
every replica counts together, on PostgreSQL as on SQLite) and one-time image
captchas that let a client past the limit."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Connection, DateTime, Index, Integer, String, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base, BigId
from server.platform.errors import DomainError, Kind
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork, single_commits


class RateCounterRow(Base):
    """Fixed-window request counters, in the database so every replica shares them."""

    __tablename__ = "rate_counters"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class CaptchaRow(Base):
    """An image captcha issued to a user: valid once, until expires_at."""

    __tablename__ = "recharge_captchas"
    __table_args__ = (Index("ix_recharge_captchas_user", "user_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


# No 0/O, 1/I/L: the image must be readable by people.
CAPTCHA_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CAPTCHA_PATH = "/api/recharge/captcha"


@dataclass(frozen=True)
class Limits:
    per_user: int
    per_ip: int
    window_seconds: int
    captcha_ttl_seconds: int = 300
    captcha_length: int = 4


@dataclass(frozen=True)
class RateLimit:
    """Attempts at one action per user and per client IP in each fixed window."""

    per_user: int
    per_ip: int
    window_seconds: int


# The order-creating paths (and captcha images) without 002's captcha way past the limit.
VIP_ORDER, CHARGE_PAY, CHECK_IAP, CAPTCHA = "vip_order", "charge_pay", "check_iap", "captcha"


def rate_limited(retry_after: int) -> DomainError:
    return DomainError("RATE_LIMITED", "Too many requests; please retry later.", Kind.RESOURCE_EXHAUSTED,
                       metadata={"retry_after_seconds": str(retry_after)})


def captcha_required() -> DomainError:
    return DomainError("CAPTCHA_REQUIRED", "Too many requests: enter the image verification code.",
                       Kind.RESOURCE_EXHAUSTED, metadata={"captcha_url": CAPTCHA_PATH})


def captcha_invalid() -> DomainError:
    return DomainError("CAPTCHA_INVALID", "The verification code is wrong or expired; fetch a new one.",
                       Kind.FAILED_PRECONDITION, metadata={"captcha_url": CAPTCHA_PATH})


class AbuseGuard:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], limits: Limits, render_png: Callable[[str], bytes],
                 clock: Callable[[], float] = time.time, rates: dict[str, RateLimit] | None = None,
                 writes: Callable | None = None):
        self._uow = uow_factory
        # Counter updates share the group commit of the orders they guard (unit_of_work.py
        # GroupCommit): a transaction of their own per request cost an fsync per order.
        self._writes = writes or single_commits(uow_factory)
        self.limits = limits
        self._render = render_png
        self._clock = clock
        self.rates = dict(rates or {})  # action -> RateLimit (mutable: tests tighten them)

    def hit(self, key: str, window_seconds: int | None = None) -> int:
        """Counts one request for `key` in the current window (its own transaction,
        committed even when the request then fails); returns the window's count."""
        return self.hit_all([key], window_seconds)[key]

    def hit_all(self, keys: list[str], window_seconds: int | None = None) -> dict[str, int]:
        """hit() for several keys in one transaction (one commit per request, not per key)."""
        size = window_seconds or self.limits.window_seconds
        window = int(self._clock()) // size * size
        return self._writes(lambda conn: _count(conn, keys, window))  # re-runnable: a failed batch rolls back first

    def check(self, user_id: int, client_ip: str, verify_code: str) -> None:
        """Counts the attempt; over either limit it needs a valid captcha code."""
        user_key, ip_key = f"recharge_order:user:{user_id}", f"recharge_order:ip:{client_ip}"
        counts = self.hit_all([user_key, ip_key] if client_ip else [user_key])
        if counts[user_key] <= self.limits.per_user and counts.get(ip_key, 0) <= self.limits.per_ip:
            return
        if not verify_code:
            raise captcha_required()
        self.redeem(user_id, verify_code)

    def attempt(self, action: str, user_id: int, client_ip: str) -> Callable[[Connection], DomainError | None]:
        """A write job (a function of a Connection) that counts one attempt at `action`
        and answers its refusal, or None. An order path runs it inside its own write
        job, so the count shares the order's transaction and commit; a refused
        attempt's count commits too (the refusal is returned, not raised)."""
        rate = self.rates.get(action)
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

    def issue(self, user_id: int) -> bytes:
        """A new captcha for the user (older unused ones stop counting); the PNG."""
        code = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(self.limits.captcha_length))
        now = naive_now()
        with self._uow() as uow:
            uow.session.execute(update(CaptchaRow).where(CaptchaRow.user_id == user_id, CaptchaRow.used_at.is_(None))
                                .values(used_at=now))
            uow.session.add(CaptchaRow(user_id=user_id, code=code, created_at=now,
                                       expires_at=now + timedelta(seconds=self.limits.captcha_ttl_seconds)))
            uow.commit()
        return self._render(code)

    def redeem(self, user_id: int, verify_code: str) -> None:
        """Uses up the user's current captcha whatever the answer (no second guess);
        only a matching, unexpired, unused one passes."""
        now = naive_now()
        with self._uow() as uow:
            row = uow.session.scalar(select(CaptchaRow).where(CaptchaRow.user_id == user_id, CaptchaRow.used_at.is_(None))
                                     .order_by(CaptchaRow.id.desc()).limit(1))
            if row is None:
                raise captcha_invalid()
            won = uow.session.execute(update(CaptchaRow).where(CaptchaRow.id == row.id, CaptchaRow.used_at.is_(None))
                                      .values(used_at=now)).rowcount
            uow.commit()
        if won != 1 or row.expires_at < now or not secrets.compare_digest(row.code, verify_code.strip().upper()):
            raise captcha_invalid()


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


def png_captcha(code: str) -> bytes:
    """A real distorted image from the maintained `captcha` library."""
    from captcha.image import ImageCaptcha

    return ImageCaptcha(width=160, height=60).generate(code, format="png").getvalue()
