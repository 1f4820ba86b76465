"""Records how callback attempts ended (merchant/callbacks.py), for a whole round at once.

Two statements for all the outcomes, each run once per outcome with its values
(executemany: one pipeline on PostgreSQL). Reading each row first (a SELECT of the
attempt, a SELECT ... FOR UPDATE of the report, each flushing the one before) took four
round trips per outcome, most of a fast receiver's time on PostgreSQL (issue 17 §3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from server.merchant.tables import MerchantCallbackAttemptRow, MerchantCallbackRow


@dataclass(frozen=True)
class Outcome:
    callback_pk: int
    attempt: int
    ok: bool
    text: str  # "SUCCESS" or what went wrong


def record_outcomes(session: Session, outcomes: list[Outcome], now: datetime, backoff: tuple[float, ...]) -> None:
    if not outcomes:
        return
    attempts, reports = MerchantCallbackAttemptRow.__table__, MerchantCallbackRow.__table__
    connection = session.connection()
    connection.execute(
        update(attempts).where(attempts.c.callback_pk == bindparam("pk"), attempts.c.attempt == bindparam("n"))
        .values(outcome=bindparam("text"), finished_at=now),
        [{"pk": o.callback_pk, "n": o.attempt, "text": o.text} for o in outcomes])
    # Only the claim we hold may decide (an operator re-send or a newer claim wins): the
    # WHERE checks it under the row's lock.
    connection.execute(
        update(reports).where(reports.c.id == bindparam("pk"), reports.c.attempts == bindparam("n"),
                              reports.c.state == "pending")
        .values(state=bindparam("new_state"), last_error=bindparam("error"), delivered_at=bindparam("delivered"),
                next_attempt_at=bindparam("next_at"), updated_at=now),
        [_decision(o, now, backoff) for o in outcomes])


def _decision(o: Outcome, now: datetime, backoff: tuple[float, ...]) -> dict:
    """The report's next state: delivered; undelivered after the last attempt; else pending
    until the backoff of this attempt has passed."""
    decided = {"pk": o.callback_pk, "n": o.attempt, "error": None if o.ok else o.text, "delivered": None,
               "next_at": now}
    if o.ok:
        return decided | {"new_state": "delivered", "delivered": now}
    if o.attempt > len(backoff):
        return decided | {"new_state": "undelivered"}
    return decided | {"new_state": "pending", "next_at": now + timedelta(seconds=backoff[o.attempt - 1])}
