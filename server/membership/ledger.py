"""The membership ledger: every change to a user's membership expiries, recorded as a
grant row (source, source_ref unique), inside the caller's transaction. Implements
MembershipGrants (grants.py) for the other areas; also exchanges, and taking back what
one grant added, following an exchange that converted its days (rules.exchange_share)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from server.membership import rules
from server.membership.tables import MembershipGrantRow, MembershipRow, VipCatalogRow
from server.membership.views import GrantChain, GrantView
from server.payments.channels import REFUND_FAILED
from server.payments.refund_tables import RefundRow
from server.platform.cached_catalog import CatalogProvider
from server.platform.times import naive, utc
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1)
REFUND_SOURCE, REFUND_UNDO = "order_refund", "order_refund_undo"  # membership_grants.source of refund take-backs


@dataclass(frozen=True)
class MembershipView:
    user_id: int
    levels: dict[str, datetime]  # level -> aware UTC expiry
    now: datetime

    @property
    def current_level(self) -> str:
        return rules.current_level(self.levels, self.now)


class MembershipLedger:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], catalog: CatalogProvider,
                 clock: Callable[[], datetime]):
        self._uow = uow_factory
        self._catalog = catalog
        self._clock = clock

    # ---- use cases (one transaction each) ---------------------------------------

    def status(self, user_id: int) -> MembershipView:
        with self._uow() as uow:
            rows = uow.session.scalars(select(MembershipRow).where(MembershipRow.user_id == user_id)).all()
        return MembershipView(
            user_id,
            {r.level: utc(r.expires_at) for r in rows if r.expires_at > EPOCH},
            self._clock(),
        )

    def exchange(self, user_id: int, target: str) -> tuple[int, MembershipView]:
        catalog = self._catalog.get()
        now = self._clock()
        with self._uow() as uow:
            locked = {level: self._lock_membership(uow, user_id, level) for level in rules.LEVELS}
            held = {lvl: utc(row.expires_at) for lvl, row in locked.items() if row.expires_at > EPOCH}
            plan = rules.plan_exchange(held, target, catalog.exchange, now)
            ref = f"{user_id}:{now.isoformat()}"
            for level in plan.consumed_levels:
                self._record(uow, locked[level], now, now, "exchange_out", ref, held[level])
            self._record(uow, locked[target], plan.new_target_expiry, now, "exchange_in", ref, held.get(target))
            uow.commit()
        return plan.converted_days, self.status(user_id)

    def grant_chain(self, user_id: int, before_id: int | None, limit: int) -> GrantChain:
        """A page of the user's membership ledger, newest (highest id) first, after
        `before_id` when given (keyset paging)."""
        mine = MembershipGrantRow.user_id == user_id
        q = select(*(getattr(MembershipGrantRow, f) for f in GrantView._fields)).where(mine)
        if before_id is not None:
            q = q.where(MembershipGrantRow.id < before_id)
        with self._uow() as uow:
            rows = uow.session.execute(q.order_by(MembershipGrantRow.id.desc()).limit(limit + 1)).all()
            total = uow.session.scalar(select(func.count()).select_from(MembershipGrantRow).where(mine))
        return GrantChain([GrantView._make(r) for r in rows[:limit]], len(rows) > limit, total)

    def count_grants(self, source_ref: str) -> int:
        """Operator check: how many times one source was granted (must be 0 or 1)."""
        with self._uow() as uow:
            return uow.session.scalar(
                select(func.count()).select_from(MembershipGrantRow).where(MembershipGrantRow.source_ref == source_ref)
            )

    # ---- MembershipGrants: inside the caller's transaction ------------------------

    def grant_in(
        self, uow: UnitOfWork, user_id: int, level: str, months: int, timezone_name: str, *, source: str,
        source_ref: str,
    ) -> datetime:
        """Extends a membership inside the caller's transaction (other areas, e.g.
        recharge packages and merchant direct charges, grant through this).
        (source, source_ref) is unique: granting the same thing twice raises
        IntegrityError, so callers must make their own transition idempotent first.
        Returns the new expiry (aware UTC)."""
        now = self._clock()
        membership = self._lock_membership(uow, user_id, level)
        previous = utc(membership.expires_at)
        expiry = rules.extend_expiry(previous, now, months, timezone_name)
        self._record(uow, membership, expiry, now, source, source_ref, previous)
        return expiry

    def revoke_in(
        self, uow: UnitOfWork, user_id: int, level: str, taken: timedelta, *, source: str, source_ref: str,
    ) -> datetime:
        """Takes `taken` off a membership inside the caller's transaction (a refunded
        or revoked purchase). Recorded as a grant row with a negative effect; the
        same (source, source_ref) twice raises IntegrityError, like grant_in."""
        now = self._clock()
        membership = self._lock_membership(uow, user_id, level)
        previous = utc(membership.expires_at)
        expiry = max(previous - taken, now) if previous > now else previous
        self._record(uow, membership, expiry, now, source, source_ref, previous)
        return expiry

    def granted_span(self, uow: UnitOfWork, source: str, source_ref: str, level: str) -> timedelta:
        """How much one earlier grant added (expires_at - max(previous, granted at))."""
        grant = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.source == source, MembershipGrantRow.source_ref == source_ref,
            MembershipGrantRow.level == level))
        if grant is None:
            return timedelta(0)
        start = max(grant.previous_expires_at or grant.created_at, grant.created_at)
        return grant.expires_at - start

    @staticmethod
    def has_grant(uow: UnitOfWork, source: str, source_ref: str) -> bool:
        return uow.session.scalar(select(MembershipGrantRow.id).where(
            MembershipGrantRow.source == source, MembershipGrantRow.source_ref == source_ref)) is not None

    @staticmethod
    def _lock_membership(uow: UnitOfWork, user_id: int, level: str) -> MembershipRow:
        return uow.lock_or_create(MembershipRow, {"expires_at": EPOCH, "updated_at": EPOCH}, user_id=user_id,
                                  level=level)

    def _record(self, uow, membership, expiry, now, source, source_ref, previous) -> None:
        membership.expires_at = naive(expiry)
        membership.updated_at = naive(now)
        uow.session.add(
            MembershipGrantRow(
                user_id=membership.user_id,
                level=membership.level,
                source=source,
                source_ref=source_ref,
                previous_expires_at=naive(previous) if previous and previous > EPOCH.replace(tzinfo=timezone.utc) else None,
                expires_at=naive(expiry),
                created_at=naive(now),
            )
        )
        uow.session.flush()

    # ---- taking back ----------------------------------------------------------------

    def take_back_in(self, uow: UnitOfWork, user_id: int, grant_source: str, grant_ref: str, fraction: float, *,
                     source: str, source_ref: str) -> list[tuple[str, timedelta]]:
        """Takes back `fraction` (0..1] of what one grant (grant_source, grant_ref)
        added, inside the caller's transaction: where an exchange converted the
        grant's days into a higher level, from that level (rules.trace_grant).
        Recorded as (source, source_ref) rows per level, so twice raises IntegrityError."""
        grants = uow.session.scalars(select(MembershipGrantRow).where(
            MembershipGrantRow.source == grant_source, MembershipGrantRow.source_ref == grant_ref)).all()
        spans: dict[str, timedelta] = {}
        for grant in grants:
            start = max(grant.previous_expires_at or grant.created_at, grant.created_at)
            for level, span in self._trace(uow, user_id, grant.level, start, grant.expires_at, grant.created_at):
                spans[level] = spans.get(level, timedelta(0)) + span * fraction
        taken = []
        for level, span in sorted(spans.items(), key=lambda item: rules.RANK[item[0]]):
            span = timedelta(seconds=round(span.total_seconds()))
            if span > timedelta(0):
                self.revoke_in(uow, user_id, level, span, source=source, source_ref=source_ref)
                taken.append((level, span))
        return taken

    def _trace(self, uow: UnitOfWork, user_id: int, level: str, start: datetime, end: datetime, since: datetime,
               depth: int = 0) -> list[tuple[str, timedelta]]:
        """Where the segment [start, end] of `level`'s timeline (granted at `since`)
        went: still on `level`, or converted by a later exchange into its target."""
        out = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.user_id == user_id, MembershipGrantRow.level == level,
            MembershipGrantRow.source == "exchange_out", MembershipGrantRow.created_at >= since,
        ).order_by(MembershipGrantRow.created_at, MembershipGrantRow.id).limit(1))
        if out is None or depth > 3:
            return [(level, end - start)]
        moved = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.source == "exchange_in", MembershipGrantRow.source_ref == out.source_ref))
        consumed = uow.session.scalars(select(MembershipGrantRow).where(
            MembershipGrantRow.source == "exchange_out", MembershipGrantRow.source_ref == out.source_ref)).all()
        if moved is None:
            return [(level, end - start)]
        exchanged_at = out.created_at
        share = rules.exchange_share(
            level, moved.level, start, end, exchanged_at,
            {row.level: row.previous_expires_at for row in consumed if row.previous_expires_at},
            uow.session.scalar(select(VipCatalogRow.exchange)) or 1,  # same transaction: no second session
        )
        in_start = max(moved.previous_expires_at or moved.created_at, moved.created_at)
        span = (moved.expires_at - in_start) * share
        if span <= timedelta(0):
            return []
        return self._trace(uow, user_id, moved.level, in_start, in_start + span, moved.created_at, depth + 1)

    # ---- refunds of any area (payments/refunds.py, through MembershipGrants) ---------

    def refund_take_back_in(self, uow: UnitOfWork, user_id: int, grant_source: str, grant_ref: str,
                            fraction: float, refund_no: str) -> dict:
        """For any area's refund: takes back `fraction` of one grant, recorded under
        the refund number; returns the summary kept on the refund row."""
        taken = self.take_back_in(uow, user_id, grant_source, grant_ref, min(fraction, 1.0),
                                  source=REFUND_SOURCE, source_ref=refund_no)
        return {"membership": {level: int(span.total_seconds()) for level, span in taken}}

    def refund_restore_in(self, uow: UnitOfWork, user_id: int, refund_no: str, summary: dict) -> None:
        """The refund failed at the provider: gives the taken span back."""
        # Rank order, like every other multi-level lock (exchange), so two transactions never deadlock.
        for level, seconds in sorted(summary.get("membership", {}).items(), key=lambda item: rules.RANK[item[0]]):
            now = self._clock()
            membership = self._lock_membership(uow, user_id, level)
            previous = utc(membership.expires_at)
            self._record(uow, membership, max(previous, now) + timedelta(seconds=seconds), now, REFUND_UNDO,
                         refund_no, previous)

    @staticmethod
    def check_refund_take_back(uow: UnitOfWork, refund: RefundRow) -> list[str]:
        """The membership part of a refund's take-back is recorded exactly once (and
        undone exactly once when the refund failed)."""
        wanted = sorted(json.loads(refund.take_back).get("membership", {}))
        problems = []
        for source, expect in ((REFUND_SOURCE, wanted), (REFUND_UNDO, wanted if refund.state == REFUND_FAILED else [])):
            levels = sorted(uow.session.scalars(select(MembershipGrantRow.level).where(
                MembershipGrantRow.source == source, MembershipGrantRow.source_ref == refund.refund_no)))
            if levels != expect:
                problems.append(f"{source} rows for levels {levels}, expected {expect}")
        return problems
