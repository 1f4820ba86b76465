"""Membership rules: the catalog, pricing an order, extending and exchanging memberships.

Pure functions over plain data; no database, no transport."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.platform.errors import DomainError, Kind, Violations

LEVELS = ("low", "middle", "high")
RANK = {level: i for i, level in enumerate(LEVELS)}
DURATIONS = (1, 3, 12)
PAY_METHODS = (
    "Alipay_AopApp",
    "Alipay_AopWap",
    "Alipay_AopPage",
    "WechatPay_App",
    "WechatPay_Js",
    "Iap",
)
MAX_QUANTITY = 12
MAX_REQUEST_ID = 64  # the vip_orders.request_id column


class Refusal(StrEnum):
    """Why a membership request is refused (the DomainError reason; membership/thinksns_envelope.py renders it)."""

    VIP_DISABLED = "VIP_DISABLED"
    EXCHANGE_REFUSED = "EXCHANGE_REFUSED"
    PAYMENT_CHANNEL_UNAVAILABLE = "PAYMENT_CHANNEL_UNAVAILABLE"
    NOT_IAP_ORDER = "NOT_IAP_ORDER"
    IAP_VERIFICATION_FAILED = "IAP_VERIFICATION_FAILED"
    IAP_PRODUCT_MISMATCH = "IAP_PRODUCT_MISMATCH"
    ORDER_QUANTITY_MISMATCH = "ORDER_QUANTITY_MISMATCH"
    IAP_ACCOUNT_MISMATCH = "IAP_ACCOUNT_MISMATCH"
    IAP_REFUNDED = "IAP_REFUNDED"
    IAP_ALREADY_REDEEMED = "IAP_ALREADY_REDEEMED"
    APP_STORE_NOT_CONFIGURED = "APP_STORE_NOT_CONFIGURED"


class PayStatus(IntEnum):
    """vip_orders.pay_status (an integer on the wire too: VipOrder.pay_status)."""

    UNPAID = 0
    PAID = 1


@dataclass(frozen=True)
class PriceSetting:
    duration: int
    original_fen: int
    price_fen: int
    iap_price_fen: int
    enable: bool
    iap: str | None = None
    currency: int | None = None


@dataclass(frozen=True)
class LevelConfig:
    level: str
    name: str
    enable: bool
    settings: tuple[PriceSetting, ...]


@dataclass(frozen=True)
class Catalog:
    switch: bool
    exchange: int
    levels: dict[str, LevelConfig]
    protocol_html: str = "<h1>VIP协议</h1>"
    version: int = 0

    def setting(self, level: str, duration: int) -> PriceSetting | None:
        config = self.levels.get(level)
        if config is None:
            return None
        return next((s for s in config.settings if s.duration == duration), None)


@dataclass(frozen=True)
class OrderQuote:
    """What an order costs, and the snapshot kept with it."""

    level: str
    duration: int
    quantity: int
    pay_method: str
    timezone: str
    unit_price_fen: int
    total_fen: int
    vip_info: dict = field(default_factory=dict)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(name) from exc


def _is_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def _check_choice(v: Violations, field_name: str, value, allowed: tuple) -> None:
    """A required field that takes one of `allowed`."""
    if not value:
        v.add(field_name, f"The {field_name} field is required.")
    elif value not in allowed:
        v.add(field_name, f"The {field_name} must be one of " + ", ".join(map(str, allowed)) + ".")


def quote_order(
    catalog: Catalog, *, level: str, duration: int, quantity: int, pay_method: str, timezone_name: str
) -> OrderQuote:
    """Validates a purchase (every bad field reported) and prices it.

    Iap orders are charged at the setting's iap_price (what the App Store shows);
    every other method at `price`."""
    v = Violations()
    quantity = quantity or 1
    if not timezone_name:
        v.add("timezone", "The timezone field is required.")
    elif not _is_zone(timezone_name):
        v.add("timezone", "The timezone must be a valid IANA zone.")
    _check_choice(v, "duration", duration, DURATIONS)
    _check_choice(v, "level", level, LEVELS)
    _check_choice(v, "pay_method", pay_method, PAY_METHODS)
    if not 1 <= quantity <= MAX_QUANTITY:
        v.add("quantity", f"The quantity must be between 1 and {MAX_QUANTITY}.")
    elif pay_method == "Iap" and quantity != 1:
        # One App Store transaction buys one product: it must never pay for several.
        v.add("quantity", "An in-app purchase order is for quantity 1.")
    v.raise_if_any()

    if not catalog.switch:
        raise DomainError(Refusal.VIP_DISABLED, "The VIP feature is switched off.", Kind.FAILED_PRECONDITION)
    config = catalog.levels[level]
    setting = catalog.setting(level, duration)
    if not config.enable or setting is None or not setting.enable:
        v.add("duration", f"The {duration}-month {level} membership is not on sale.")
    elif pay_method == "Iap" and not setting.iap:
        v.add("pay_method", "This membership has no App Store product.")
    v.raise_if_any()
    assert setting is not None

    unit = setting.iap_price_fen if pay_method == "Iap" else setting.price_fen
    vip_info = {
        "level": level,
        "name": config.name,
        "duration": duration,
        "price": setting.price_fen,
        "timezone": timezone_name,
    }
    if setting.iap:
        vip_info["iap"] = setting.iap
        vip_info["iap_price_fen"] = setting.iap_price_fen
    return OrderQuote(
        level=level,
        duration=duration,
        quantity=quantity,
        pay_method=pay_method,
        timezone=timezone_name,
        unit_price_fen=unit,
        total_fen=unit * quantity,
        vip_info=vip_info,
    )


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the day is clamped to the target month (Jan 31 + 1 -> Feb 28/29)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def extend_expiry(current: datetime | None, now: datetime, months: int, timezone_name: str) -> datetime:
    """New expiry (aware UTC) after adding `months` calendar months in the order's zone.

    Renewals stack: an active membership is extended from its expiry, a lapsed
    one from now."""
    start = current if current is not None and current > now else now
    local = start.astimezone(zone(timezone_name))
    return add_months(local, months).astimezone(timezone.utc)


@dataclass(frozen=True)
class Exchange:
    """Outcome of converting lower levels into `target`."""

    target: str
    converted_days: int
    consumed_levels: tuple[str, ...]
    new_target_expiry: datetime


def plan_exchange(
    memberships: dict[str, datetime], target: str, exchange: int, now: datetime
) -> Exchange:
    """The exchange rule.

    Every whole remaining day of a level below `target` is worth
    1 / exchange**(rank gap) days of `target`, rounded down per source level.
    The source levels are consumed (they end now); the target is extended from
    its own expiry when active, else from now. Refused (403) when the target is
    not above any level the user holds or nothing converts to a whole day."""
    if target not in LEVELS:
        v = Violations()
        v.add("level", "The level must be one of low, middle, high.")
        v.raise_if_any()
    exchange = max(exchange, 1)
    days = 0
    consumed = []
    for level, expiry in memberships.items():
        if RANK[level] >= RANK[target] or expiry <= now:
            continue
        remaining = math.floor((expiry - now).total_seconds() / 86400)
        gained = remaining // exchange ** (RANK[target] - RANK[level])
        if gained > 0:
            days += gained
            consumed.append(level)
    if days == 0:
        raise DomainError(
            Refusal.EXCHANGE_REFUSED,
            "No remaining days of a lower level to convert into this level.",
            Kind.PERMISSION_DENIED,
            metadata={"level": target},
        )
    current = memberships.get(target)
    start = current if current is not None and current > now else now
    return Exchange(target, days, tuple(sorted(consumed, key=RANK.get)), start + timedelta(days=days))


def current_level(memberships: dict[str, datetime], now: datetime) -> str:
    active = [level for level, expiry in memberships.items() if expiry > now]
    return max(active, key=RANK.get) if active else ""


def trade_no(local_now: datetime, order_id: int) -> str:
    """Legacy format: local time to the millisecond, "MO", the order id in base 36.

    e.g. 20191224115640878MOB for order 11."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n, tail = order_id, ""
    while True:
        n, r = divmod(n, 36)
        tail = digits[r] + tail
        if n == 0:
            break
    return local_now.strftime("%Y%m%d%H%M%S") + f"{local_now.microsecond // 1000:03d}MO" + tail




def exchange_share(level: str, target: str, start: datetime, end: datetime, exchanged_at: datetime,
                   consumed: dict[str, datetime], exchange: int) -> float:
    """Which share of an exchange's converted days came from the segment [start, end]
    of `level`. At the exchange every consumed level's remainder [exchanged_at,
    its expiry] was converted at 1 / exchange**(rank gap); the segment's part of
    `level`'s remainder is its overlap with that interval. (With one consumed
    level the rate cancels out; with several, today's catalog rate weighs them.)"""
    def worth(lvl: str, seconds: float) -> float:
        return seconds / max(exchange, 1) ** (RANK[target] - RANK[lvl])

    total = sum(worth(lvl, max((expiry - exchanged_at).total_seconds(), 0)) for lvl, expiry in consumed.items())
    overlap = (min(end, consumed.get(level, exchanged_at)) - max(start, exchanged_at)).total_seconds()
    if total <= 0 or overlap <= 0:
        return 0.0
    return min(worth(level, overlap) / total, 1.0)
