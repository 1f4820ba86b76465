"""Payment notification error envelope: providers only look at the status. The
caller's own faults (e.g. a bad bearer token sent along) are 4xx, never 500; an
outage is 503, so the provider sends the notification again later."""

from __future__ import annotations

from server.platform.errors import DomainError, Kind

NOTIFICATION_STATUS = {Kind.INVALID: 400, Kind.UNAUTHENTICATED: 401, Kind.PERMISSION_DENIED: 403,
                       Kind.NOT_FOUND: 404, Kind.UNAVAILABLE: 503}


def notification_envelope(err: DomainError) -> tuple[int, dict]:
    return NOTIFICATION_STATUS.get(err.kind, 500), {"message": err.message}
