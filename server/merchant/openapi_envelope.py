"""api-docs/004 (merchant open API) error envelope."""

from __future__ import annotations

from server.merchant import rules
from server.platform.errors import DomainError, Kind


def openapi_envelope(err: DomainError) -> tuple[int, dict]:
    """api-docs/004: HTTP 200 and `{"status", "message", "data": null}` for every
    documented refusal; 500 only for our own failures."""
    status = rules.status_of(err)
    http = 500 if err.kind in (Kind.INTERNAL, Kind.UNAVAILABLE) else 200
    return http, {"status": status, "message": err.message, "data": None}
