"""What other areas may use of membership: granting (and taking back) membership time
inside their own transaction. Recharge (000 packages) and merchant (004 direct charge)
depend on this module only, never on membership's tables or service (see .importlinter)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from server.membership.rules import LEVELS
from server.payments.refund_tables import RefundRow
from server.platform.unit_of_work import UnitOfWork

__all__ = ["LEVELS", "MembershipGrants"]


class MembershipGrants(Protocol):
    """Implemented by membership.ledger.MembershipLedger. (source, source_ref) is unique:
    the same grant twice raises IntegrityError, so callers make their transition idempotent first."""

    def grant_in(self, uow: UnitOfWork, user_id: int, level: str, months: int, timezone_name: str, *,
                 source: str, source_ref: str) -> datetime: ...

    def revoke_in(self, uow: UnitOfWork, user_id: int, level: str, taken: timedelta, *, source: str,
                  source_ref: str) -> datetime: ...

    # Refunds (payments/refunds.py): take back `fraction` of what one grant (grant_source,
    # grant_ref) added — following an exchange into a higher level — recorded under the
    # refund number; give it back if the refund fails; prove it was recorded exactly once.
    def refund_take_back_in(self, uow: UnitOfWork, user_id: int, grant_source: str, grant_ref: str,
                            fraction: float, refund_no: str) -> dict: ...

    def refund_restore_in(self, uow: UnitOfWork, user_id: int, refund_no: str, summary: dict) -> None: ...

    def check_refund_take_back(self, uow: UnitOfWork, refund: RefundRow) -> list[str]: ...
