"""api-docs/000 error envelope: HTTP 200, `{"c": code, "m": message, "d": null}`.
gRPC callers get the usual status code and ErrorInfo instead (error_mapping.py)."""

from __future__ import annotations

from server.platform.errors import DomainError
from server.recharge.envelope_codes import code_for, message_of


def charge_envelope(err: DomainError) -> tuple[int, dict]:
    return 200, {"c": code_for(err), "m": message_of(err), "d": None}
