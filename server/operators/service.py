"""Operator accounts, console sessions and the audit log: one unit of work per use case."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from server.operators.passwords import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    hash_password,
    new_totp_secret,
    verify_password,
    verify_totp,
)
from server.operators.roles import Role
from server.operators.tables import AuditEntryRow, OperatorRow, OperatorSessionRow
from server.platform.auth import Principal, TokenKey, issue_service_token
from server.platform.errors import DomainError, Kind, Violations, unauthenticated
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
CREDENTIAL_SECONDS = 300  # the console refreshes before this; logout revokes it (its `sid` names the session)
NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
REASON_MAX = 500
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))  # unknown names cost the same time as known ones


@dataclass(frozen=True)
class Login:
    operator: OperatorRow
    credential: str
    expires_at: datetime
    session_token: str


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntryRow]
    total: int
    more: bool


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def to_json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class Operators:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], credential_key: TokenKey | None):
        self._uow = uow_factory
        self._key = credential_key

    # accounts -------------------------------------------------------------------------------

    def create(self, name: str, role: str, password: str, *, totp: bool = False) -> OperatorRow:
        v = Violations()
        if not NAME.fullmatch(name or ""):
            v.add("name", "1-64 letters, digits or _ . @ -.")
        if role not in set(Role):
            v.add("role", "One of admin, finance, support.")
        if len(password) < MIN_PASSWORD_LENGTH or len(password.encode()) > MAX_PASSWORD_BYTES:
            v.add("password", f"At least {MIN_PASSWORD_LENGTH} characters.")
        v.raise_if_any()
        with self._uow() as uow:
            if uow.session.scalar(select(OperatorRow.id).where(OperatorRow.name == name)) is not None:
                raise DomainError("OPERATOR_EXISTS", f"operator {name} exists", Kind.CONFLICT)
            row = OperatorRow(name=name, role=role, password_hash=hash_password(password),
                              totp_secret=new_totp_secret() if totp else None, failed_logins=0,
                              created_at=naive_now())
            uow.session.add(row)
            uow.session.flush()
            uow.commit()
        return row

    def get(self, operator_id: int) -> OperatorRow | None:
        with self._uow() as uow:
            return uow.session.get(OperatorRow, operator_id)

    # sessions -------------------------------------------------------------------------------

    def login(self, name: str, password: str, totp_code: str = "") -> Login:
        """Refusals: UNAUTHENTICATED for a wrong name, password or code (one message for
        all, so names cannot be probed); PERMISSION_DENIED ACCOUNT_LOCKED while locked.
        A failure is counted in its own committed transaction."""
        now = naive_now()
        with self._uow() as uow:
            row = uow.session.scalar(select(OperatorRow).where(OperatorRow.name == name[:64]).with_for_update())
            if row is None:
                verify_password(password, DUMMY_HASH)
                raise unauthenticated("Wrong name, password or code.")
            if row.locked_until is not None and row.locked_until > now:
                raise _locked(row.locked_until)
            ok = verify_password(password, row.password_hash) and (
                row.totp_secret is None or verify_totp(row.totp_secret, totp_code))
            if not ok:
                row.failed_logins += 1
                locked = row.failed_logins >= MAX_FAILED_LOGINS
                if locked:
                    row.locked_until, row.failed_logins = now + LOCKOUT, 0
                uow.commit()
                raise _locked(now + LOCKOUT) if locked else unauthenticated("Wrong name, password or code.")
            row.failed_logins, row.locked_until = 0, None
            token = secrets.token_urlsafe(32)
            uow.session.add(OperatorSessionRow(token_hash=_token_hash(token), operator_id=row.id, created_at=now,
                                               expires_at=now + SESSION_LIFETIME))
            uow.commit()
        credential, expires = self._credential(row, _token_hash(token))
        return Login(row, credential, expires, token)

    def refresh(self, session_token: str) -> tuple[str, datetime]:
        with self._uow() as uow:
            row = self._live_session(uow, session_token)
            operator = uow.session.get(OperatorRow, row.operator_id)
        return self._credential(operator, row.token_hash)

    def logout(self, session_token: str) -> None:
        with self._uow() as uow:
            row = uow.session.get(OperatorSessionRow, _token_hash(session_token), with_for_update=True)
            if row is not None and row.ended_at is None:
                row.ended_at = naive_now()
                uow.commit()

    def session_ended(self, session_id: str) -> bool:
        """For the token verifier: a credential's session (its `sid`, the session token's
        hash) is over once logged out or expired, and with it every credential it issued."""
        with self._uow() as uow:
            row = uow.session.get(OperatorSessionRow, session_id)
            return row is None or row.ended_at is not None or row.expires_at <= naive_now()

    def _live_session(self, uow: UnitOfWork, session_token: str) -> OperatorSessionRow:
        row = uow.session.get(OperatorSessionRow, _token_hash(session_token)) if session_token else None
        if row is None or row.ended_at is not None or row.expires_at <= naive_now():
            raise unauthenticated("The session has ended; log in again.")
        return row

    def _credential(self, operator: OperatorRow, session_id: str) -> tuple[str, datetime]:
        if self._key is None:
            raise DomainError("NO_SERVICE_KEY", "SERVICE_JWT_SECRET is not set", Kind.UNAVAILABLE)
        token = issue_service_token(self._key, operator.id, operator.role, CREDENTIAL_SECONDS,
                                    session=session_id)
        return token, naive_now() + timedelta(seconds=CREDENTIAL_SECONDS)

    # audit ----------------------------------------------------------------------------------

    @staticmethod
    def record(uow: UnitOfWork, actor: Principal, action: str, target: str, before, after, reason: str) -> None:
        """Adds an audit entry to the caller's transaction: it commits with the change it
        describes, or not at all."""
        operator = uow.session.get(OperatorRow, actor.user_id) if actor.role in set(Role) else None
        uow.session.add(AuditEntryRow(
            operator_id=actor.user_id, operator_name=operator.name if operator else f"{actor.role}#{actor.user_id}",
            operator_role=actor.role, created_at=naive_now(), action=action[:64], target=target[:128],
            before_json=to_json(before), after_json=to_json(after), reason=reason[:REASON_MAX]))

    def audited(self, actor: Principal, action: str, target: str, before, after, reason: str) -> None:
        """An audit entry in a transaction of its own, for a change another service has
        already committed (its own transaction)."""
        with self._uow() as uow:
            self.record(uow, actor, action, target, before, after, reason)
            uow.commit()

    def audit_log(self, offset: int, limit: int, *, action: str = "", target: str = "",
                  operator_name: str = "") -> AuditPage:
        query = select(AuditEntryRow)
        for column, value in ((AuditEntryRow.action, action), (AuditEntryRow.target, target),
                              (AuditEntryRow.operator_name, operator_name)):
            if value:
                query = query.where(column == value)
        with self._uow() as uow:
            total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
            rows = list(uow.session.scalars(query.order_by(AuditEntryRow.id.desc()).offset(offset).limit(limit)))
        return AuditPage(rows, total or 0, offset + len(rows) < (total or 0))


def require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        v = Violations()
        v.add("reason", f"A reason is required (at most {REASON_MAX} characters).")
        v.raise_if_any()
    return reason


def _locked(until: datetime) -> DomainError:
    return DomainError("ACCOUNT_LOCKED", "Too many failed logins; the account is locked for a while.",
                       Kind.PERMISSION_DENIED, metadata={"locked_until": until.isoformat() + "Z"})
