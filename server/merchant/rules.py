"""Merchant OpenAPI (api-docs/004): the status code table, the signing string and
strict parsing of what a merchant sends. Pure rules; crypto lives in
merchant/signing.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from vipay.legacy.v1 import errors_pb2

from server.platform.errors import DomainError, Kind

SUCCESS = 200

class Refusal(StrEnum):
    """Why a merchant request is refused (the DomainError reason; STATUS gives its body status)."""

    OPENAPI_INVALID_PARAMS = "OPENAPI_INVALID_PARAMS"
    OPENAPI_TIMESTAMP_EXPIRED = "OPENAPI_TIMESTAMP_EXPIRED"
    OPENAPI_NONCE_REPLAYED = "OPENAPI_NONCE_REPLAYED"
    OPENAPI_SIGN_INVALID = "OPENAPI_SIGN_INVALID"
    OPENAPI_SIGN_TYPE_UNSUPPORTED = "OPENAPI_SIGN_TYPE_UNSUPPORTED"
    OPENAPI_BUSINESS_MISMATCH = "OPENAPI_BUSINESS_MISMATCH"
    OPENAPI_BUSINESS_UNKNOWN = "OPENAPI_BUSINESS_UNKNOWN"
    OPENAPI_MERCHANT_DISABLED = "OPENAPI_MERCHANT_DISABLED"
    OPENAPI_PRODUCT_NOT_ALLOWED = "OPENAPI_PRODUCT_NOT_ALLOWED"
    OPENAPI_BIZ_CODE_CONFLICT = "OPENAPI_BIZ_CODE_CONFLICT"
    OPENAPI_INSUFFICIENT_BALANCE = "OPENAPI_INSUFFICIENT_BALANCE"
    OPENAPI_ORDER_FAILED = "OPENAPI_ORDER_FAILED"
    OPENAPI_ORDER_NOT_FOUND = "OPENAPI_ORDER_NOT_FOUND"
    INTERNAL = "INTERNAL"
    MERCHANT_ADMIN = "MERCHANT_ADMIN"  # an operator's merchant command refused (CLI only; no body status)


class OrderState(StrEnum):
    """merchant_orders.state (also the `state` a merchant reads in QueryOrder and callbacks)."""

    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    REFUNDED = "refunded"


# reason -> (status code in the body, message). The codes are declared once, in
# protos/vipay/legacy/v1/errors.proto (OpenApiStatus), which the SDKs' typed errors
# are generated from; docs/openapi.md mirrors this table.
_MESSAGES = {
    Refusal.OPENAPI_INVALID_PARAMS: "invalid parameters",
    Refusal.OPENAPI_TIMESTAMP_EXPIRED: "timestamp outside the allowed window",
    Refusal.OPENAPI_NONCE_REPLAYED: "nonce already used",
    Refusal.OPENAPI_SIGN_INVALID: "signature verification failed",
    Refusal.OPENAPI_SIGN_TYPE_UNSUPPORTED: "sign type not enabled for this merchant",
    Refusal.OPENAPI_BUSINESS_MISMATCH: "businessId does not match the merchant",
    Refusal.OPENAPI_BUSINESS_UNKNOWN: "unknown businessId",
    Refusal.OPENAPI_MERCHANT_DISABLED: "merchant disabled",
    Refusal.OPENAPI_PRODUCT_NOT_ALLOWED: "product not allowed",
    Refusal.OPENAPI_BIZ_CODE_CONFLICT: "bizCode already used with other parameters",
    Refusal.OPENAPI_INSUFFICIENT_BALANCE: "insufficient balance",
    Refusal.OPENAPI_ORDER_FAILED: "account not found; order failed and refunded",
    Refusal.OPENAPI_ORDER_NOT_FOUND: "order not found",
    Refusal.INTERNAL: "internal error",
}
STATUS = {reason: (errors_pb2.OpenApiStatus.Value("OPEN_API_STATUS_" + reason.removeprefix("OPENAPI_")), message)
          for reason, message in _MESSAGES.items()}
KINDS = {
    Refusal.OPENAPI_INVALID_PARAMS: Kind.INVALID,
    Refusal.OPENAPI_TIMESTAMP_EXPIRED: Kind.UNAUTHENTICATED,
    Refusal.OPENAPI_NONCE_REPLAYED: Kind.UNAUTHENTICATED,
    Refusal.OPENAPI_SIGN_INVALID: Kind.UNAUTHENTICATED,
    Refusal.OPENAPI_SIGN_TYPE_UNSUPPORTED: Kind.UNAUTHENTICATED,
    Refusal.OPENAPI_BUSINESS_MISMATCH: Kind.PERMISSION_DENIED,
    Refusal.OPENAPI_BUSINESS_UNKNOWN: Kind.UNAUTHENTICATED,
    Refusal.OPENAPI_MERCHANT_DISABLED: Kind.PERMISSION_DENIED,
    Refusal.OPENAPI_PRODUCT_NOT_ALLOWED: Kind.PERMISSION_DENIED,
    Refusal.OPENAPI_BIZ_CODE_CONFLICT: Kind.CONFLICT,
    Refusal.OPENAPI_INSUFFICIENT_BALANCE: Kind.FAILED_PRECONDITION,
    Refusal.OPENAPI_ORDER_NOT_FOUND: Kind.NOT_FOUND,
}

SIGN_TYPES = ("SHA256-RSA", "MD5")
TIMESTAMP_WINDOW_MS = 5 * 60 * 1000
NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # ids and codes: no separators of the signing string
DIGITS = re.compile(r"^[1-9][0-9]{0,15}$")  # no leading zeros: the signing string has one spelling

CHARGE_FIELDS = {"merchantId": True, "businessId": True, "productCode": True, "mobile": False,
                 "account": True, "bizCode": True, "callbackUrl": False}
QUERY_ORDER_FIELDS = {"merchantId": True, "businessId": True, "bizCode": False, "orderCode": False}
BALANCE_FIELDS = {"merchantId": True, "businessId": True}



@dataclass(frozen=True)
class ChargeRequest:
    """The body of a direct charge (004 VIPCharge), checked by parse_body(CHARGE_FIELDS);
    optional fields are "" when absent."""

    merchant_id: str
    business_id: str
    product_code: str
    account: str
    biz_code: str
    mobile: str = ""
    callback_url: str = ""

    @classmethod
    def of(cls, body: dict[str, str]) -> ChargeRequest:
        return cls(merchant_id=body["merchantId"], business_id=body["businessId"], product_code=body["productCode"],
                   account=body["account"], biz_code=body["bizCode"], mobile=body["mobile"],
                   callback_url=body["callbackUrl"])


# Status callbacks: the first attempt at once, then these delays (seconds), then undelivered.
DEFAULT_BACKOFF = (15, 30, 180, 600, 1200, 1800, 3600, 10800, 21600)


def refusal(reason: Refusal, detail: str = "", **metadata: str) -> DomainError:
    code, message = STATUS[reason]
    text = f"{message}: {detail}" if detail else message
    return DomainError(reason, text, KINDS.get(reason, Kind.INTERNAL), metadata={"status": str(code), **metadata})


def status_of(err: DomainError) -> int:
    """The body status of any error reaching a merchant (also the shared ones, e.g. a bad
    bearer token the interceptor refuses before our code runs)."""
    if err.reason in STATUS:
        return STATUS[err.reason][0]
    by_kind = {Kind.INVALID: "OPENAPI_INVALID_PARAMS", Kind.UNAUTHENTICATED: "OPENAPI_SIGN_INVALID"}
    return STATUS[by_kind.get(err.kind, "INTERNAL")][0]


@dataclass(frozen=True)
class SignedHeaders:
    business_id: str
    nonce: str
    timestamp_ms: int
    sign: str
    sign_type: str


def parse_headers(metadata: dict[str, str]) -> SignedHeaders:
    """Headers arrive lower-cased (HTTP/2, gRPC metadata)."""
    missing = [h for h in ("businessid", "nonce", "timestamp", "sign") if not metadata.get(h)]
    if missing:
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "missing header " + ", ".join(missing))
    business_id, nonce, timestamp, sign = (metadata[h] for h in ("businessid", "nonce", "timestamp", "sign"))
    sign_type = metadata.get("signtype") or "SHA256-RSA"
    if not TOKEN.match(business_id):
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "bad businessId header")
    if not NONCE.match(nonce):
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "nonce must be 8-64 of [A-Za-z0-9_-]")
    if not DIGITS.match(timestamp):
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "timestamp must be milliseconds since the epoch")
    if sign_type not in SIGN_TYPES:
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "signType must be SHA256-RSA or MD5")
    return SignedHeaders(business_id, nonce, int(timestamp), sign, sign_type)


def check_timestamp(timestamp_ms: int, now_ms: int) -> None:
    if abs(now_ms - timestamp_ms) > TIMESTAMP_WINDOW_MS:
        raise refusal(Refusal.OPENAPI_TIMESTAMP_EXPIRED)


def signing_string(method: str, path: str, business_id: str, timestamp_ms: int | str, nonce: str,
                   body: bytes) -> bytes:
    """METHOD \\n PATH \\n businessId \\n timestamp \\n nonce \\n body \\n — the body verbatim."""
    head = f"{method}\n{path}\n{business_id}\n{timestamp_ms}\n{nonce}\n".encode()
    return head + body + b"\n"


def callback_signing_string(merchant_id: str, business_id: str, timestamp_ms: int | str, nonce: str,
                            body: bytes) -> bytes:
    """What the platform signs for a status callback. It names the merchant: every
    merchant's callbacks share one platform key, so a merchant verifying with its own
    merchantId can never be handed a report signed for another."""
    return f"CALLBACK\n{merchant_id}\n{business_id}\n{timestamp_ms}\n{nonce}\n".encode() + body + b"\n"


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def parse_body(raw: bytes, fields: dict[str, bool]) -> dict[str, str]:
    """A flat JSON object of strings; unknown or duplicate keys are refused so that
    what we act on is exactly what was signed, read one way."""
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested ~1000 deep
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "body must be a JSON object (UTF-8, no duplicate keys)") from None
    if not isinstance(body, dict):
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "body must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:  # names quoted short: the message travels in a response header
        shown = ", ".join(name[:32] + ("..." if len(name) > 32 else "") for name in unknown[:3])
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "unknown field " + shown + (" ..." if len(unknown) > 3 else ""))
    out: dict[str, str] = {}
    for name, required in fields.items():
        value = body.get(name)
        if value is None or value == "":
            if required:
                raise refusal(Refusal.OPENAPI_INVALID_PARAMS, f"{name} is required")
            out[name] = ""
            continue
        if not isinstance(value, str):
            raise refusal(Refusal.OPENAPI_INVALID_PARAMS, f"{name} must be a string")
        if len(value) > 512 or (name != "callbackUrl" and len(value) > 64):
            raise refusal(Refusal.OPENAPI_INVALID_PARAMS, f"{name} is too long")
        if not value.isprintable():  # NUL, controls, lone surrogates: no database stores them
            raise refusal(Refusal.OPENAPI_INVALID_PARAMS, f"{name} has characters that are not allowed")
        out[name] = value
    return out


def check_callback_url(url: str) -> None:
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise refusal(Refusal.OPENAPI_INVALID_PARAMS, "callbackUrl must be an http(s) URL")


def parse_backoff(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())
