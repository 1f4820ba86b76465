"""Domain errors -> transport.

gRPC callers get a status code plus exactly one google.rpc.ErrorInfo and, for bad
input, one google.rpc.BadRequest listing every violation (AIP-193).

Callers coming through the gateway get their API family's legacy envelope (each
RPC declares its family: protos/vipay/legacy/v1/options.proto; each family's
rendering lives in its own *_envelope module): the server sends it as initial
metadata (`x-http-code`, `x-http-body`), which the gateway's Lua filter turns into
the HTTP status and body."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from server.platform import legacy_operations
from server.platform.errors import DomainError, FieldViolation, Kind
from server.platform.notification_envelope import notification_envelope

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


class EnvelopeRegistry:
    """Each RPC's gateway errors in the envelope its declaration names
    (legacy_operations: family / error_envelope), with the statuses it declares for
    some reasons applied on top. Areas register the renderers of their families."""

    def __init__(self):
        self._families: dict[int, Envelope] = {}
        # Methods that declare no family; until an area registers one, a bare status.
        self._default: Envelope = notification_envelope
        self._methods: dict[str, Envelope] = {}  # method -> envelope, resolved once

    def register(self, family: int, envelope: Envelope, *, default: bool = False) -> None:
        """`default`: also the envelope of methods that declare no family."""
        if self._families.setdefault(family, envelope) is not envelope:
            raise ValueError(f"family {family} already has an envelope")  # one renderer per family
        if default:
            self._default = envelope
        self._methods.clear()

    def for_method(self, method: str) -> Envelope:
        try:
            return self._methods[method]
        except KeyError:
            envelope = self._methods[method] = self._resolve(legacy_operations.declared(method))
            return envelope

    def _resolve(self, operation: legacy_operations.Operation) -> Envelope:
        envelope = self._families.get(legacy_operations.envelope_family(operation), self._default)
        rules = legacy_operations.reason_statuses(operation)
        if not rules:
            return envelope

        def with_declared_statuses(err: DomainError) -> tuple[int, dict]:
            status, body = envelope(err)
            return next((code for prefix, code in rules if err.reason.startswith(prefix)), status), body

        return with_declared_statuses


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
    headers = (("x-http-code", str(status)), ("x-http-body", json.dumps(body, ensure_ascii=True)))
    # Unavailable or shed: when to come back, whatever status the family answers with.
    retry_after = err.metadata.get("retry_after_seconds")
    if retry_after is not None and err.kind in (Kind.UNAVAILABLE, Kind.RESOURCE_EXHAUSTED):
        headers += (("retry-after", retry_after),)
    return headers


def internal_error() -> DomainError:
    return DomainError("INTERNAL", "Server Error", Kind.INTERNAL)


