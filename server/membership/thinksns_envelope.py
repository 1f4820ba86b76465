"""api-docs/001 (ThinkSNS+) error envelope: the outcome in the HTTP status,
`{"message": ..., "errors": {field: [..]}}` in the body. Registered as the gateway's
default too (operations that declare no envelope: /ping, the refund and gRPC-only
RPCs), as it was before the declarations. Statuses an operation declares for some
reasons (e.g. IAP_ -> 500 on check-iap-result) are applied on top by
platform/error_mapping.EnvelopeRegistry."""

from __future__ import annotations

from server.platform.errors import DomainError, Kind

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
    errors: dict[str, list[str]] = {}
    for v in err.violations:
        errors.setdefault(v.field, []).append(v.description)
    return THINKSNS_STATUS[err.kind], {"message": err.message, "errors": errors}
