"""Domain errors -> transport.

gRPC callers get a status code plus exactly one google.rpc.ErrorInfo and, for bad
input, one google.rpc.BadRequest listing every violation (AIP-193).

Callers coming through the gateway get their API family's legacy envelope: the
server sends it as initial metadata (`x-http-code`, `x-http-body`), which the
gateway's Lua filter turns into the HTTP status and body."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from server.platform.errors import DomainError, FieldViolation, Kind

DOMAIN = "vipay.example.com"

GRPC_CODE = {
    Kind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Kind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Kind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    Kind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Kind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def rich_status(err: DomainError) -> status_pb2.Status:
    code = GRPC_CODE[err.kind]
    details = []
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    details.append(info)
    if err.violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in err.violations
        ]))
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return status_pb2.Status(code=code.value[0], message=err.message, details=packed)


# An envelope renders a domain error as (HTTP status, JSON body) for one API family.
Envelope = Callable[[DomainError], tuple[int, dict]]

THINKSNS_STATUS = {
    Kind.INVALID: 422,
    Kind.UNAUTHENTICATED: 401,
    Kind.PERMISSION_DENIED: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.FAILED_PRECONDITION: 422,
    Kind.RESOURCE_EXHAUSTED: 429,
    Kind.UNAVAILABLE: 503,
    Kind.INTERNAL: 500,
}


def thinksns_envelope(err: DomainError) -> tuple[int, dict]:
    """api-docs/001: `{"message": ..., "errors": {field: [..]}}`. IAP verification
    failures answer 500, as the document specifies for check-iap-result."""
    errors: dict[str, list[str]] = {}
    for v in err.violations:
        errors.setdefault(v.field, []).append(v.description)
    status = 500 if err.reason.startswith("IAP_") else THINKSNS_STATUS[err.kind]
    return status, {"message": err.message, "errors": errors}


class EnvelopeRegistry:
    """Which envelope each RPC's gateway errors use, by method-name prefix."""

    def __init__(self, default: Envelope = thinksns_envelope):
        self._prefixes: list[tuple[str, Envelope]] = []
        self._default = default

    def register(self, method_prefix: str, envelope: Envelope) -> None:
        self._prefixes.append((method_prefix, envelope))
        self._prefixes.sort(key=lambda p: -len(p[0]))  # longest prefix wins

    def for_method(self, method: str) -> Envelope:
        return next((env for prefix, env in self._prefixes if method.startswith(prefix)), self._default)


# Error details travel in response headers (x-http-body, grpc-message, grpc-status-details-bin).
# Envoy drops the whole shared upstream connection on an oversized header, failing
# other clients' requests too, so every piece copied from input is cut short here.
MAX_TEXT = 300
MAX_VIOLATIONS = 20


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def bounded(err: DomainError) -> DomainError:
    """The error with every text short enough for a header (the same error when it already is)."""
    violations = err.violations[:MAX_VIOLATIONS]
    if (len(err.message) <= MAX_TEXT and len(violations) == len(err.violations)
            and all(len(v.field) <= 100 and len(v.description) <= MAX_TEXT for v in violations)
            and all(len(k) <= 100 and len(v) <= MAX_TEXT for k, v in err.metadata.items())):
        return err
    return DomainError(
        err.reason, _cut(err.message), err.kind,
        metadata={_cut(k, 100): _cut(v) for k, v in list(err.metadata.items())[:MAX_VIOLATIONS]},
        violations=[FieldViolation(_cut(v.field, 100), _cut(v.description)) for v in violations],
    )


def gateway_error_headers(err: DomainError, envelope: Envelope) -> tuple[tuple[str, str], ...]:
    status, body = envelope(err)
    # ensure_ascii: gRPC metadata must be ASCII; \u escapes parse to the same text.
    return (("x-http-code", str(status)), ("x-http-body", json.dumps(body, ensure_ascii=True)))


def internal_error() -> DomainError:
    return DomainError("INTERNAL", "Server Error", Kind.INTERNAL)


