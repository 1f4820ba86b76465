"""002's abuse control for POST /api/recharge/order: past the per-user / per-IP
limit an order needs a one-time image captcha (GET /api/recharge/captcha).
Counting is the platform's rate limiter; the captchas, their limits and their
refusals are this area's (docs/recharge.md: Limits)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Index, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base, BigId
from server.platform.errors import DomainError, Kind
from server.platform.rate_limits import RateLimiter
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork
from server.recharge.rules import Refusal

# The rate-limited actions of this area (server/app.py gives them their limits).
CHARGE_PAY, CAPTCHA = "charge_pay", "captcha"


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


def captcha_required() -> DomainError:
    return DomainError(Refusal.CAPTCHA_REQUIRED, "Too many requests: enter the image verification code.",
                       Kind.RESOURCE_EXHAUSTED, metadata={"captcha_url": CAPTCHA_PATH})


def captcha_invalid() -> DomainError:
    return DomainError(Refusal.CAPTCHA_INVALID, "The verification code is wrong or expired; fetch a new one.",
                       Kind.FAILED_PRECONDITION, metadata={"captcha_url": CAPTCHA_PATH})


class CaptchaGuard:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], counter: RateLimiter, limits: Limits,
                 render_png: Callable[[str], bytes]):
        self._uow = uow_factory
        self._counter = counter
        self._limits = limits  # fixed when built (build_app hands in RechargeSettings)
        self._render = render_png

    @property
    def limits(self) -> Limits:
        return self._limits

    def check(self, user_id: int, client_ip: str, verify_code: str) -> None:
        """Counts the attempt; over either limit it needs a valid captcha code."""
        user_key, ip_key = f"recharge_order:user:{user_id}", f"recharge_order:ip:{client_ip}"
        counts = self._counter.hit_all([user_key, ip_key] if client_ip else [user_key], self._limits.window_seconds)
        if counts[user_key] <= self._limits.per_user and counts.get(ip_key, 0) <= self._limits.per_ip:
            return
        if not verify_code:
            raise captcha_required()
        self.redeem(user_id, verify_code)

    def issue(self, user_id: int) -> bytes:
        """A new captcha for the user (older unused ones stop counting); the PNG."""
        code = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(self._limits.captcha_length))
        now = naive_now()
        with self._uow() as uow:
            uow.session.execute(update(CaptchaRow).where(CaptchaRow.user_id == user_id, CaptchaRow.used_at.is_(None))
                                .values(used_at=now))
            uow.session.add(CaptchaRow(user_id=user_id, code=code, created_at=now,
                                       expires_at=now + timedelta(seconds=self._limits.captcha_ttl_seconds)))
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


def png_captcha(code: str) -> bytes:
    """A real distorted image from the maintained `captcha` library."""
    from captcha.image import ImageCaptcha

    return ImageCaptcha(width=160, height=60).generate(code, format="png").getvalue()
