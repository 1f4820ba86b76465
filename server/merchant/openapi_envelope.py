"""api-docs/004 (merchant open API) error envelope."""

from __future__ import annotations

from server.merchant import rules
from server.platform.errors import DomainError, Kind


def openapi_envelope(err: DomainError) -> tuple[int, dict]:
    """api-docs/004: HTTP 200 and `{"status", "message", "data": null}` for every
    documented refusal; 500 only for our own failures, 503 (+ Retry-After) while the
    database is unavailable."""
    status = rules.status_of(err)
    http = {Kind.INTERNAL: 500, Kind.UNAVAILABLE: 503}.get(err.kind, 200)
    return http, {"status": status, "message": err.message, "data": None}
