"""api-docs/003 (YoShop) error envelope: HTTP 200, `{"status": 401 | 500, "message", "data": []}`."""

from __future__ import annotations

from server.platform.errors import DomainError, Kind
from server.recharge.envelope_codes import message_of


def yoshop_envelope(err: DomainError) -> tuple[int, dict]:
    """status 401 asks the client to sign in; everything else is 500."""
    status = 401 if err.kind is Kind.UNAUTHENTICATED else 500
    return 200, {"status": status, "message": message_of(err), "data": []}
