"""Typed errors of every API family. The codes are read from ONE declaration,
protos/vipay/legacy/v1/errors.proto (shipped here as vipay.legacy.v1.errors_pb2), which the
server and the other SDKs use too. Every error carries `request_id` (the gateway's
x-request-id, or the one this SDK sent when no answer came) and `retry_after` (seconds)
when the server said when to come back."""

from __future__ import annotations

from enum import IntEnum

from vipay.legacy.v1 import errors_pb2


def _enum(name: str, descriptor, prefix: str) -> type[IntEnum]:
    return IntEnum(name, {v.name.removeprefix(prefix): v.number for v in descriptor.values})


OpenApiStatus = _enum("OpenApiStatus", errors_pb2.OpenApiStatus.DESCRIPTOR, "OPEN_API_STATUS_")
MembershipHttpStatus = _enum("MembershipHttpStatus", errors_pb2.MembershipHttpStatus.DESCRIPTOR, "MEMBERSHIP_HTTP_STATUS_")
RechargeCode = _enum("RechargeCode", errors_pb2.RechargeCode.DESCRIPTOR, "RECHARGE_CODE_")
YoshopStatus = _enum("YoshopStatus", errors_pb2.YoshopStatus.DESCRIPTOR, "YOSHOP_STATUS_")
ErrorReason = _enum("ErrorReason", errors_pb2.ErrorReason.DESCRIPTOR, "ERROR_REASON_")


def _name(enum: type[IntEnum], value: int) -> str | None:
    try:
        return enum(value).name
    except ValueError:
        return None


class VipayError(Exception):
    retryable = False

    def __init__(self, message: str, request_id: str, retry_after: float | None = None):
        super().__init__(message)
        self.request_id, self.retry_after = request_id, retry_after


class NetworkError(VipayError):
    """No answer: connection refused or reset, DNS failure, or the timeout passed."""
    retryable = True


class HttpError(VipayError):
    """api-docs/001: the HTTP status (MembershipHttpStatus) and {"message", "errors"}."""

    def __init__(self, status: int, body: dict, request_id: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status}: {body.get('message', '')}", request_id, retry_after)
        self.status, self.body = status, body
        self.status_name = _name(MembershipHttpStatus, status)
        self.retryable = status in (429, 502, 503, 504)


class EnvelopeError(VipayError):
    """000/002 (`code`: RechargeCode) and 003 (`status`: YoshopStatus), answered with HTTP 200."""

    def __init__(self, code: int, message: str, data, request_id: str, family: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}", request_id, retry_after)
        self.code, self.data, self.family = code, data, family
        self.code_name = _name(YoshopStatus if family == "003" else RechargeCode, code)
        self.retryable = family != "003" and code in (429, 502, 503, 504)


class MerchantError(VipayError):
    """api-docs/004: `status` (OpenApiStatus) of {"status","message","data"}; 4012 carries the
    failed, refunded order in `data`."""

    def __init__(self, status: int, message: str, data, request_id: str, retry_after: float | None = None):
        self.status, self.server_message, self.data = status, message, data
        self.status_name = _name(OpenApiStatus, status)
        super().__init__(f"{status} {self.status_name or ''}: {message}", request_id, retry_after)
        self.retryable = status == OpenApiStatus.INTERNAL or status in (429, 502, 503, 504)


class GrpcError(VipayError):
    """A gRPC refusal: the status code and the ErrorInfo reason (ErrorReason)."""

    def __init__(self, code, message: str, reason_name: str, metadata: dict, request_id: str,
                 violations: list | None = None):
        after = metadata.get("retry_after_seconds")
        super().__init__(f"{code.name} {reason_name}: {message}", request_id, float(after) if after else None)
        self.code, self.reason_name, self.metadata = code, reason_name, metadata
        self.violations = violations or []
        self.reason = ErrorReason[reason_name] if reason_name in ErrorReason.__members__ else ErrorReason.UNSPECIFIED
        import grpc
        self.retryable = code == grpc.StatusCode.UNAVAILABLE or (
            code == grpc.StatusCode.RESOURCE_EXHAUSTED and self.reason == ErrorReason.RATE_LIMITED)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime
    import time
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
