"""The three recharge families' error envelopes (docs/recharge.md lists every code).

All answer HTTP 200 and put the outcome in the body, as those clients expect:
  000 {"c": code, "m": message, "d": null}
  002 {"message": message, "success": false, "code": code, "data": null | {...}}
  003 {"status": 401 | 500, "message": message, "data": []}
gRPC callers get the usual status code and ErrorInfo instead (errors.py)."""

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


def _message(err: DomainError) -> str:
    if err.kind is Kind.UNAUTHENTICATED:
        return NOT_LOGGED_IN
    if err.violations:
        return err.message + " " + " ".join(f"{v.field}: {v.description}" for v in err.violations)
    return err.message


def charge_envelope(err: DomainError) -> tuple[int, dict]:
    """000."""
    return 200, {"c": code_for(err), "m": _message(err), "d": None}


def recharge_envelope(err: DomainError) -> tuple[int, dict]:
    """002. Field errors list every field; captcha codes say where to get the image."""
    data: dict | None = None
    if err.violations:
        errors: dict[str, list[str]] = {}
        for v in err.violations:
            errors.setdefault(v.field, []).append(v.description)
        data = {"errors": errors}
    elif "captcha_url" in err.metadata:
        data = {"captchaUrl": err.metadata["captcha_url"]}
    return 200, {"message": _message(err), "success": False, "code": code_for(err), "data": data}


def yoshop_envelope(err: DomainError) -> tuple[int, dict]:
    """003: status 401 asks the client to sign in; everything else is 500."""
    status = 401 if err.kind is Kind.UNAUTHENTICATED else 500
    return 200, {"status": status, "message": _message(err), "data": []}


NOTIFICATION_STATUS = {Kind.INVALID: 400, Kind.UNAUTHENTICATED: 401, Kind.PERMISSION_DENIED: 403,
                       Kind.NOT_FOUND: 404}


def notification_envelope(err: DomainError) -> tuple[int, dict]:
    """Payment notifications: providers only look at the status. The caller's own faults
    (e.g. a bad bearer token sent along) are 4xx, never 500."""
    return NOTIFICATION_STATUS.get(err.kind, 500), {"message": err.message}
