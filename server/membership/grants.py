"""What other areas may use of membership: granting (and taking back) membership time
inside their own transaction. Recharge (000 packages) and merchant (004 direct charge)
depend on this module only, never on membership's tables or service (see .importlinter)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from server.membership.rules import LEVELS
from server.platform.unit_of_work import UnitOfWork

__all__ = ["LEVELS", "MembershipGrants"]


class MembershipGrants(Protocol):
    """Implemented by membership.service.MembershipService. (source, source_ref) is unique:
    the same grant twice raises IntegrityError, so callers make their transition idempotent first."""

    def grant_in(self, uow: UnitOfWork, user_id: int, level: str, months: int, timezone_name: str, *,
                 source: str, source_ref: str) -> datetime: ...

    def revoke_in(self, uow: UnitOfWork, user_id: int, level: str, taken: timedelta, *, source: str,
                  source_ref: str) -> datetime: ...
