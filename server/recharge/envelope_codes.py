"""What the recharge families' envelopes share (docs/recharge.md lists every code):
one numeric code per reason for 000 (`c`) and 002 (`code`), and the message they show."""

from __future__ import annotations

from server.platform.errors import DomainError, Kind

# One numeric code per reason, shared by 000 (`c`) and 002 (`code`).
REASON_CODES = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "PLAN_NOT_FOUND": 404,
    "PACKAGE_NOT_FOUND": 404,
    "CHANNEL_NOT_FOUND": 404,
    "RECHARGE_CLOSED": 1001,
    "PRICE_MISMATCH": 1002,
    "CUSTOM_AMOUNT_DISABLED": 1003,
    "AMOUNT_TOO_LOW": 1004,
    "CAPTCHA_REQUIRED": 1010,
    "CAPTCHA_INVALID": 1011,
    "STORE_REQUIRED": 1020,
    "INTERNAL": 500,
}
KIND_CODES = {
    Kind.INVALID: 400,
    Kind.UNAUTHENTICATED: 401,
    Kind.PERMISSION_DENIED: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.FAILED_PRECONDITION: 1000,
    Kind.RESOURCE_EXHAUSTED: 429,
    Kind.UNAVAILABLE: 503,
    Kind.INTERNAL: 500,
}
NOT_LOGGED_IN = "请先登录"


def code_for(err: DomainError) -> int:
    return REASON_CODES.get(err.reason, KIND_CODES[err.kind])


def message_of(err: DomainError) -> str:
    if err.kind is Kind.UNAUTHENTICATED:
        return NOT_LOGGED_IN
    if err.violations:
        return err.message + " " + " ".join(f"{v.field}: {v.description}" for v in err.violations)
    return err.message
