"""Recharge rules: the catalog (plans, charge packages, pay modes, payment methods,
setting), quoting an order from it, and order states.

Pure functions over plain data; no database, no transport. Money is fen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from server.platform import money
from server.platform.errors import DomainError, Kind, Violations, not_found


class Refusal(StrEnum):
    """Why a recharge request is refused (the DomainError reason; envelope_codes.py gives its 002/003 code)."""

    RECHARGE_CLOSED = "RECHARGE_CLOSED"
    PRICE_MISMATCH = "PRICE_MISMATCH"
    CUSTOM_AMOUNT_DISABLED = "CUSTOM_AMOUNT_DISABLED"
    AMOUNT_TOO_LOW = "AMOUNT_TOO_LOW"
    CAPTCHA_REQUIRED = "CAPTCHA_REQUIRED"
    CAPTCHA_INVALID = "CAPTCHA_INVALID"
    STORE_REQUIRED = "STORE_REQUIRED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    REFUND_EXCEEDS_BALANCE = "REFUND_EXCEEDS_BALANCE"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    DUPLICATE_REFERENCE = "DUPLICATE_REFERENCE"
    PAYMENT_CHANNEL_UNAVAILABLE = "PAYMENT_CHANNEL_UNAVAILABLE"


class OrderState(StrEnum):
    """recharge_orders.state (also the `orderState` clients filter their history by)."""

    WAITING = "WAITING_FOR_PAYMENT"
    PAID = "SUCCESSFUL_PAYMENT"
    FAILED = "FAILURE_TO_PAY"


STATES = tuple(OrderState)

# Months granted per time unit of a VIP-giving package (membership grants whole months).
TIME_TYPE_MONTHS = {"MONTH": 1, "YEAR": 12}
MAX_AMOUNT_FEN = 100_000_000  # ¥1,000,000 per order
MAX_WALLET_MOVE_FEN = 100 * MAX_AMOUNT_FEN  # ¥100,000,000 per internal debit/credit
ZONE = ZoneInfo("Asia/Shanghai")  # 002 history dates and createdDate


@dataclass(frozen=True)
class Setting:
    is_entrance: bool = True
    is_custom: bool = True
    lowest_money_fen: int = 1
    is_match_plan: bool = True
    describe: str = ""


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    money_fen: int
    gift_fen: int = 0


@dataclass(frozen=True)
class Package:
    """000 charge package; a VIP-giving one also grants `level` for time_len time_type."""

    id: int
    amount_fen: int
    giving_vip: bool = False
    time_type: str | None = None
    time_len: int | None = None
    level: str = "low"
    bg_url: str | None = None
    comment: str | None = None
    sort_order: int | None = None
    add_time: str | None = None
    deleted: bool = False

    @property
    def vip_months(self) -> int:
        if not self.giving_vip or not self.time_type or not self.time_len:
            return 0
        return TIME_TYPE_MONTHS[self.time_type] * self.time_len


@dataclass(frozen=True)
class ChargePayType:
    """000 pay type: typeName -> the channel pay method."""

    type_name: str
    comment: str
    pay_method: str
    thumbnail: str | None = None


@dataclass(frozen=True)
class PayType:
    id: int
    code: str
    name: str
    icon: str = ""


@dataclass(frozen=True)
class PayMode:
    """002 pay mode: a pay type through one client flavour -> the channel pay method."""

    id: int
    code: str
    name: str
    pay_type_id: int
    pay_method: str
    enabled: bool = True


@dataclass(frozen=True)
class PaymentMethod:
    """003 payment method for one client."""

    key: int
    method: str
    client: str
    template_id: int = 0
    is_must_template: bool = True
    is_enable: bool = True
    is_default: bool = False


@dataclass(frozen=True)
class RechargeCatalog:
    setting: Setting = field(default_factory=Setting)
    plans: tuple[Plan, ...] = ()
    packages: tuple[Package, ...] = ()
    charge_pay_types: tuple[ChargePayType, ...] = ()
    pay_types: tuple[PayType, ...] = ()
    pay_modes: tuple[PayMode, ...] = ()
    payment_methods: tuple[PaymentMethod, ...] = ()
    version: int = 0

    def plan(self, plan_id: int) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def package(self, package_id: int) -> Package | None:
        return next((p for p in self.packages if p.id == package_id and not p.deleted), None)

    def pay_type(self, pay_type_id: int) -> PayType | None:
        return next((t for t in self.pay_types if t.id == pay_type_id), None)

    def pay_mode(self, pay_mode_id: int) -> PayMode | None:
        return next((m for m in self.pay_modes if m.id == pay_mode_id and m.enabled), None)

    def charge_pay_type(self, type_name: str) -> ChargePayType | None:
        return next((t for t in self.charge_pay_types if t.type_name == type_name), None)

    def methods_for(self, client: str) -> list[PaymentMethod]:
        return [m for m in self.payment_methods if m.client == client]


# ---- catalog <-> JSON document (the stored form and the operator's file) ----

_PARTS = {
    "plans": Plan,
    "packages": Package,
    "charge_pay_types": ChargePayType,
    "pay_types": PayType,
    "pay_modes": PayMode,
    "payment_methods": PaymentMethod,
}


def catalog_to_document(catalog: RechargeCatalog) -> dict:
    doc = {"setting": asdict(catalog.setting)}
    for name in _PARTS:
        doc[name] = [asdict(item) for item in getattr(catalog, name)]
    return doc


def catalog_from_document(doc: dict, version: int = 0) -> RechargeCatalog:
    """Parses and validates an operator's document; every problem is reported at once."""
    v = Violations()
    try:
        setting = Setting(**doc.get("setting", {}))
    except TypeError as exc:
        v.add("setting", str(exc))
        setting = Setting()
    parts = {name: _parse_part(v, doc, name, cls) for name, cls in _PARTS.items()}
    _check_parts(v, parts)
    if setting.lowest_money_fen < 1:
        v.add("setting.lowest_money_fen", "The lowest amount must be at least 1 fen.")
    v.raise_if_any()
    return RechargeCatalog(setting=setting, version=version, **parts)


def _parse_part(v: Violations, doc: dict, name: str, cls: type) -> tuple:
    """One list of the document (plans, packages, ...), its items' ids unique."""
    items = []
    for i, raw in enumerate(doc.get(name, [])):
        try:
            items.append(cls(**raw))
        except TypeError as exc:
            v.add(f"{name}[{i}]", str(exc))
    ids = [getattr(x, "id", getattr(x, "type_name", getattr(x, "key", None))) for x in items]
    if len(ids) != len(set(ids)) and name != "payment_methods":
        v.add(name, "Ids must be unique.")
    return tuple(items)


def _check_parts(v: Violations, parts: dict[str, tuple]) -> None:
    for p in parts.get("plans", ()):
        if p.money_fen <= 0 or p.gift_fen < 0:
            v.add(f"plans[{p.id}]", "money must be > 0 and gift >= 0.")
    for p in parts.get("packages", ()):
        if p.amount_fen <= 0:
            v.add(f"packages[{p.id}]", "amount must be > 0.")
        if p.giving_vip and (p.time_type not in TIME_TYPE_MONTHS or not p.time_len or p.time_len < 1):
            v.add(f"packages[{p.id}]", "A VIP-giving package needs time_type MONTH|YEAR and time_len >= 1.")
    type_ids = {t.id for t in parts.get("pay_types", ())}
    for m in parts.get("pay_modes", ()):
        if m.pay_type_id not in type_ids:
            v.add(f"pay_modes[{m.id}]", "pay_type_id names no pay type.")


# ---- quoting ----------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What an order will charge and credit, fixed at order time."""

    kind: str  # plan | custom | package
    title: str
    amount_fen: int  # paid and credited
    gift_fen: int  # credited on top
    plan_id: int | None = None
    package_id: int | None = None
    vip_level: str | None = None
    vip_months: int = 0

    def snapshot(self) -> dict:
        snap = {"title": self.title, "price": money.yuan_string_trimmed(self.amount_fen)}
        if self.gift_fen:
            snap["gift"] = money.yuan_string_trimmed(self.gift_fen)
        if self.vip_months:
            snap["vip"] = {"level": self.vip_level, "months": self.vip_months}
        return snap


def parse_price(text: str, field_name: str = "price") -> int:
    v = Violations()
    try:
        fen = money.parse_yuan(text) if str(text).strip() else None
    except ValueError:
        fen = None
    if fen is None or fen <= 0 or fen > MAX_AMOUNT_FEN:
        v.add(field_name, f"The {field_name} must be an amount in yuan between 0.01 and 1000000, "
                          "with at most two decimals.")
    v.raise_if_any()
    assert fen is not None  # raise_if_any refused None above
    return fen


def matched_gift(plans: tuple[Plan, ...], amount_fen: int) -> Plan | None:
    """The largest plan whose money is not above the amount."""
    eligible = [p for p in plans if p.money_fen <= amount_fen]
    return max(eligible, key=lambda p: (p.money_fen, p.gift_fen), default=None)


def quote_plan(catalog: RechargeCatalog, plan_id: int, amount_fen: int) -> Quote:
    """A plan (plan_id > 0, the price must be the plan's) or a custom amount (plan_id 0)."""
    s = catalog.setting
    if not s.is_entrance:
        raise DomainError(Refusal.RECHARGE_CLOSED, "Recharge is not open.", Kind.FAILED_PRECONDITION)
    if plan_id:
        plan = catalog.plan(plan_id)
        if plan is None:
            raise not_found("plan", plan_id)
        if amount_fen != plan.money_fen:
            raise DomainError(Refusal.PRICE_MISMATCH, "The price does not match the recharge amount.",
                              Kind.FAILED_PRECONDITION,
                              metadata={"plan_id": str(plan_id), "price": money.yuan_string_trimmed(plan.money_fen)})
        return Quote("plan", plan.name, plan.money_fen, plan.gift_fen, plan_id=plan.id)
    if not s.is_custom:
        raise DomainError(Refusal.CUSTOM_AMOUNT_DISABLED, "Custom amounts are not allowed.", Kind.FAILED_PRECONDITION)
    if amount_fen < s.lowest_money_fen:
        raise DomainError(Refusal.AMOUNT_TOO_LOW, f"The lowest amount is {money.yuan_string_trimmed(s.lowest_money_fen)}.",
                          Kind.FAILED_PRECONDITION, metadata={"lowest": money.yuan_string_2dp(s.lowest_money_fen)})
    match = matched_gift(catalog.plans, amount_fen) if s.is_match_plan else None
    title = f"{money.yuan_string_trimmed(amount_fen)}元自定义充值"
    return Quote("custom", title, amount_fen, match.gift_fen if match else 0, plan_id=match.id if match else None)


def quote_package(catalog: RechargeCatalog, package_id: int, amount_fen: int | None = None) -> Quote:
    """A charge package; when a price is given (002 goodsId) it must be the package's."""
    if not catalog.setting.is_entrance:
        raise DomainError(Refusal.RECHARGE_CLOSED, "Recharge is not open.", Kind.FAILED_PRECONDITION)
    package = catalog.package(package_id)
    if package is None:
        raise not_found("package", package_id)
    if amount_fen is not None and amount_fen != package.amount_fen:
        raise DomainError(Refusal.PRICE_MISMATCH, "The price does not match the package.", Kind.FAILED_PRECONDITION,
                          metadata={"package_id": str(package_id),
                                    "price": money.yuan_string_trimmed(package.amount_fen)})
    title = package.comment or f"{money.yuan_string_trimmed(package.amount_fen)}元充值"
    if package.vip_months:
        title += f"（赠送会员{package.time_len}{'个月' if package.time_type == 'MONTH' else '年'}）"
    return Quote("package", title, package.amount_fen, 0, package_id=package.id,
                 vip_level=package.level if package.vip_months else None, vip_months=package.vip_months)


def order_number(local_now: datetime, order_id: int) -> str:
    """RC + local time to the second + the id, zero padded: RC2020080116501400000012."""
    return f"RC{local_now:%Y%m%d%H%M%S}{order_id:08d}"


def demo_catalog() -> RechargeCatalog:
    """The documents' examples: 002's 28元 amount and pay mode, 003's setting, plans
    and H5 payment methods, 000's pay types and package (plus one VIP-giving
    package and an Alipay pay mode so every path has something to pay)."""
    return RechargeCatalog(
        setting=Setting(
            is_entrance=True,
            is_custom=True,
            lowest_money_fen=1,
            is_match_plan=True,
            describe="1. 賬戶充值僅限微信在線方式支付,充值金額實時到賬;\n2. 賬戶充值套餐贈送的金額即時到賬;\n"
                     "3. 賬戶余額有效期:自充值日起至用完即止;\n4. 若有其它疑問,可撥打客服電話400-000-1234",
        ),
        plans=(
            Plan(1, "28元", 2800, 0),
            Plan(10001, "套餐A", 50000, 5000),
            Plan(10002, "套餐B", 100000, 15000),
        ),
        packages=(
            Package(1, 10000),
            Package(2, 3000, giving_vip=True, time_type="MONTH", time_len=1, level="low", comment="30元送1个月会员"),
        ),
        charge_pay_types=(
            ChargePayType("ALIPAYCASH", "支付宝支付", "Alipay_AopApp"),
            ChargePayType("WX_APP", "微信支付", "WechatPay_App"),
        ),
        pay_types=(
            PayType(1, "wechat", "微信支付", "https://xxx.jpg"),
            PayType(2, "alipay", "支付宝支付", "https://xxx.jpg"),
        ),
        pay_modes=(
            PayMode(1, "h5", "H5支付", 1, "WechatPay_Js"),
            PayMode(2, "h5", "H5支付", 2, "Alipay_AopWap"),
        ),
        payment_methods=(
            PaymentMethod(1, "wechat", "H5", template_id=10001, is_default=True),
            PaymentMethod(2, "alipay", "H5", template_id=10003, is_default=False),
        ),
    )
