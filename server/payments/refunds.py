"""Refunds for every order book: the operator's (CLI, admin RPC) and the providers'
(refunds started in a provider's console arrive as notifications).

An operator refund works like a payment, in three steps:
1. one transaction: lock the order, check it, write the refund row (`pending`, keyed
   by our refund number, unique) and take back what the refunded share bought —
   through the area's RefundBook (wallet, membership, merchant balance);
2. outside any transaction: ask the provider (it dedupes on our refund number, so
   sending the same request again never refunds twice);
3. one transaction: apply the answer — `succeeded`, `processing`, `abnormal` keep the
   take-back; `failed` gives it back.
An unknown outcome (timeout, provider down) stays pending / processing and the
settlement loop asks again until it is final. Every change to an order's refunds
happens with the order row locked (FOR UPDATE; SQLite has one writer), so
duplicates, concurrent operators and notifications on several replicas serialise."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from server.payments.channels import (
    REFUND_ABNORMAL,
    REFUND_FAILED,
    REFUND_NOT_FOUND,
    REFUND_PROCESSING,
    REFUND_SUCCEEDED,
    ChannelRegistry,
    ChannelUnavailable,
    NotificationRejected,
    PaymentChannel,
    RefundRequest,
    RefundStatement,
    Reply,
)
from server.payments.refund_book import OrderFacts, RefundBook
from server.payments.refund_records import (
    OPEN_STATES,
    PENDING,
    RefundRecords,
    counted_fen,
    succeeded_fen,
)
from server.payments.refund_tables import RefundRow
from server.payments.refund_views import RefundView
from server.platform.errors import DomainError, Kind, Violations, not_found
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# The provider's state -> the states a refund may move to it from.
MOVES_FROM = {REFUND_SUCCEEDED: (PENDING, REFUND_PROCESSING, REFUND_ABNORMAL),
              REFUND_PROCESSING: (PENDING,),
              REFUND_FAILED: (PENDING, REFUND_PROCESSING),
              REFUND_ABNORMAL: (PENDING, REFUND_PROCESSING)}
REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")  # WeChat Pay's out_refund_no alphabet (Alipay's is wider)
NOTIFY_PATH = "/api/refunds/{channel}-callback"


@dataclass
class RefundReport:
    queried: int = 0
    finished: int = 0
    failed: int = 0


def refund_error(reason: str, message: str, kind: Kind = Kind.FAILED_PRECONDITION, **metadata) -> DomainError:
    return DomainError(reason, message, kind, metadata={k: str(v) for k, v in metadata.items()})


def default_refund_no(order_number: str, amount_fen: int | None) -> str:
    """Deterministic, so re-running the same command is the same refund."""
    return f"R{order_number}-{amount_fen if amount_fen is not None else 'ALL'}"


def console_refund_fen(statement: RefundStatement, counted: int, facts: OrderFacts) -> int:
    """What a refund made in the provider's console adds (0: nothing new), never more
    than is left of the payment."""
    if statement.amount_fen is not None:
        amount = statement.amount_fen
    else:  # Alipay states the trade's refunded total; what we do not know of yet is new
        amount = (statement.refunded_total_fen or 0) - counted
    remaining = facts.paid_fen - counted
    if amount > 0 and amount > remaining:
        log.error("provider refunded more than was left to refund", extra={"order": facts.number,
                                                                             "amount_fen": amount})
        amount = max(remaining, 0)
    return amount


class RefundService(RefundRecords):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry, books: list[RefundBook],
                 public_base_url: str, *, requery_after: timedelta = timedelta(seconds=120),
                 requery_every: timedelta = timedelta(seconds=60), batch_size: int = 50,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), reads: Callable | None = None):
        super().__init__(uow_factory, books, reads)
        self._channels = channels
        self._base_url = public_base_url.rstrip("/")
        self._requery_after, self._requery_every, self._batch = requery_after, requery_every, batch_size
        self._clock = clock

    # ---- operator refunds -------------------------------------------------------

    def refund(self, order_number: str, *, amount_fen: int | None, reason: str, refund_no: str = "") -> RefundView:
        """Refunds `amount_fen` (None: everything not yet refunded) of a paid order.
        Idempotent by refund_no: the same number again answers the same refund."""
        reason = (reason or "").strip()
        v = Violations()
        if not order_number:
            v.add("order_number", "The order_number is required.")
        if not reason:
            v.add("reason", "The reason is required.")
        elif len(reason) > 255:
            v.add("reason", "The reason is at most 255 characters.")
        if amount_fen is not None and amount_fen <= 0:
            v.add("amount", "The amount must be positive.")
        if refund_no and not REFUND_NO.fullmatch(refund_no):
            v.add("refund_no", "The refund_no is 1-64 characters of letters, digits, _ - | * @.")
        v.raise_if_any()
        book, order_id = self._find(order_number)
        refund_no = refund_no or default_refund_no(order_number, amount_fen)
        created, facts = self._open(book, order_id, refund_no, amount_fen, reason)
        if created and not book.internal:
            self._ask(book, self.get(refund_no), facts, send=True)
        return self.get(refund_no)

    def _find(self, number: str) -> tuple[RefundBook, int]:
        with self._uow() as uow:
            for book in self.books.values():
                order_id = book.find(uow, number=number)
                if order_id is not None:
                    return book, order_id
        raise refund_error("ORDER_NOT_FOUND", f"No order {number}.", Kind.NOT_FOUND, order_number=number)

    def _open(self, book: RefundBook, order_id: int, refund_no: str, amount_fen: int | None, reason: str
              ) -> tuple[bool, OrderFacts]:
        """Step 1. Returns (created, order facts)."""
        with self._uow() as uow:
            facts = book.lock(uow, order_id=order_id)
            existing = uow.session.scalar(select(RefundRow).where(RefundRow.refund_no == refund_no))
            if existing is not None:
                if (existing.book, existing.order_id) != (book.name, order_id) or (
                        amount_fen is not None and existing.amount_fen != amount_fen):
                    raise refund_error("REFUND_NO_REUSED", "The refund number was used for another refund.",
                                       Kind.CONFLICT, refund_no=refund_no)
                return False, facts
            if not facts.paid:
                raise refund_error("ORDER_NOT_PAID", "The order is not paid.", order_number=facts.number)
            channel = self._channels.by_name(facts.channel)
            if not book.internal and getattr(channel, "refund", None) is None:
                raise refund_error("REFUND_NOT_SUPPORTED", f"Orders paid through {facts.channel} are refunded by "
                                   "the provider (App Store refunds arrive as notifications).", channel=facts.channel)
            before = counted_fen(uow, book.name, order_id)
            remaining = facts.paid_fen - before
            if remaining <= 0:
                raise refund_error("ALREADY_REFUNDED", "The order is refunded in full.", order_number=facts.number)
            amount = remaining if amount_fen is None else amount_fen
            if amount > remaining:
                raise refund_error("REFUND_EXCEEDS_PAYMENT", "The amount is more than what is left to refund.",
                                   remaining_fen=remaining, amount_fen=amount)
            if book.full_only and amount != facts.paid_fen:
                raise refund_error("PARTIAL_REFUND_NOT_SUPPORTED", "These orders are refunded in full only.",
                                   paid_fen=facts.paid_fen)
            now = naive(self._clock())
            row = RefundRow(refund_no=refund_no, book=book.name, order_id=order_id, order_number=facts.number,
                            channel=facts.channel, amount_fen=amount, reason=reason, state=PENDING, origin="operator",
                            take_back="{}", created_at=now, updated_at=now)
            uow.session.add(row)
            try:
                uow.session.flush()
            except IntegrityError as exc:  # the same number, concurrently, for another order
                raise refund_error("REFUND_NO_REUSED", "The refund number is in use.", Kind.CONFLICT,
                                   refund_no=refund_no) from exc
            row.take_back = json.dumps(book.take_back(uow, facts=facts, refund_no=refund_no, amount_fen=amount,
                                                      refunded_before_fen=before, strict=True), sort_keys=True)
            if book.internal:
                row.state, row.finished_at = REFUND_SUCCEEDED, now
                book.on_refunded(uow, facts=facts, refunded_fen=succeeded_fen(uow, book.name, order_id))
            uow.commit()
        log.warning("refund opened", extra={"refund_no": refund_no, "order": facts.number, "amount_fen": amount})
        return True, facts

    # ---- the provider -------------------------------------------------------------

    def _ask(self, book: RefundBook, row: RefundView, facts: OrderFacts, *, send: bool) -> None:
        """Step 2 (no transaction open): send the refund, or ask about it."""
        channel = self._channels.by_name(row.channel)
        request = RefundRequest(row.refund_no, row.order_number, facts.provider_txn_id, row.amount_fen,
                                facts.paid_fen, row.reason,
                                self._base_url + NOTIFY_PATH.format(channel=row.channel))
        try:
            if send:
                statement = channel.refund(request)
            else:
                statement = channel.query_refund(row.refund_no, row.order_number)
                if statement.state == REFUND_NOT_FOUND:
                    if row.state != PENDING:
                        return
                    statement = channel.refund(request)  # it never arrived: send again (deduped by refund_no)
        except ChannelUnavailable as exc:
            log.warning("refund outcome unknown; asked again by the settlement loop",
                        extra={"refund_no": row.refund_no, "channel": row.channel, "why": str(exc)})
            return
        if statement.state == REFUND_NOT_FOUND:
            return
        with self._uow() as uow:
            facts = book.lock(uow, order_id=row.order_id)
            current = uow.session.scalar(select(RefundRow).where(RefundRow.refund_no == row.refund_no))
            self._transition(uow, book, facts, current, statement)
            uow.commit()

    def _transition(self, uow: UnitOfWork, book: RefundBook, facts: OrderFacts, row: RefundRow,
                    statement: RefundStatement) -> bool:
        """Step 3, with the order locked: moves one refund to the provider's state."""
        now = naive(self._clock())
        state = statement.state
        sources = MOVES_FROM.get(state, ())
        if row.state not in sources:
            return False
        values = {"state": state, "updated_at": now}
        if statement.provider_refund_id:
            values["provider_refund_id"] = statement.provider_refund_id[:64]
        if state in (REFUND_SUCCEEDED, REFUND_FAILED):
            values["finished_at"] = now
        won = uow.session.execute(update(RefundRow).where(RefundRow.id == row.id, RefundRow.state.in_(sources))
                                  .values(**values).execution_options(synchronize_session=False)).rowcount == 1
        if not won:
            return False
        if state == REFUND_FAILED:
            book.restore(uow, facts=facts, refund_no=row.refund_no, summary=json.loads(row.take_back))
            log.error("refund failed at the provider: take-back given back", extra={"refund_no": row.refund_no})
        elif state == REFUND_SUCCEEDED:
            book.on_refunded(uow, facts=facts, refunded_fen=succeeded_fen(uow, book.name, facts.id))
        elif state == REFUND_ABNORMAL:
            log.error("refund abnormal at the provider (operator action needed)", extra={"refund_no": row.refund_no})
        return True

    # ---- provider statements (notifications) ----------------------------------------

    def handle_notification(self, channel_name: str, body: bytes, content_type: str,
                            headers: Mapping[str, str]) -> Reply:
        """The refund notify path (/api/refunds/{channel}-callback): WeChat Pay sends
        our refunds' results here, and those started in its merchant console."""
        channel = self._channels.by_name(channel_name)
        if channel is None:
            raise not_found("channel", channel_name)
        try:
            note = channel.verify_notification(body, content_type, headers)
        except NotificationRejected as exc:
            log.warning("refund notification rejected", extra={"channel": channel_name, "why": str(exc)})
            return channel.nack(str(exc))
        if note.refund is None:
            return channel.nack("not a refund notification")
        return self.receive_statement(channel, note.refund)

    def receive_statement(self, channel: PaymentChannel, statement: RefundStatement) -> Reply:
        """A verified refund notification (any channel): ours, or one started in the
        provider's console, applied once. A refund proves the payment, so an order
        whose payment notification has not arrived yet is marked paid first."""
        try:
            book, order_id = self._find(statement.trade_no)
        except DomainError:
            log.warning("refund notification for an unknown trade", extra={"trade_no": statement.trade_no})
            return channel.nack("unknown trade")
        with self._uow() as uow:
            facts = book.lock(uow, order_id=order_id)
            if facts.channel != channel.name:
                return channel.nack("not this channel's order")
            if statement.total_fen is not None and statement.total_fen != facts.paid_fen:
                log.error("refund notification amount mismatch", extra={"trade_no": statement.trade_no})
                return channel.nack("amount mismatch")
            if not facts.paid:
                book.fulfil(uow, order_id=order_id, provider_txn_id=statement.provider_txn_id)
                facts = book.lock(uow, order_id=order_id)
            row = None
            if statement.refund_no:
                row = uow.session.scalar(select(RefundRow).where(RefundRow.refund_no == statement.refund_no))
                if row is not None and (row.book, row.order_id) != (book.name, order_id):
                    return channel.nack("refund number of another order")
            if row is not None:
                self._transition(uow, book, facts, row, statement)
            elif statement.state == REFUND_SUCCEEDED:
                self._record_console_refund(uow, book, facts, channel.name, statement)
            uow.commit()
        return channel.ack()

    def _record_console_refund(self, uow: UnitOfWork, book: RefundBook, facts: OrderFacts, channel_name: str,
                               statement: RefundStatement) -> None:
        counted = counted_fen(uow, book.name, facts.id)
        amount = console_refund_fen(statement, counted, facts)
        if amount <= 0:
            return
        refund_no = statement.refund_no or f"{channel_name.upper()}-{facts.number}-{statement.refunded_total_fen}"
        now = naive(self._clock())
        row = RefundRow(refund_no=refund_no[:64], book=book.name, order_id=facts.id, order_number=facts.number,
                        channel=channel_name, amount_fen=amount, reason="refunded in the provider's console",
                        state=REFUND_SUCCEEDED, origin="provider",
                        provider_refund_id=(statement.provider_refund_id or None), take_back="{}",
                        created_at=now, updated_at=now, finished_at=now)
        uow.session.add(row)
        uow.session.flush()
        # The money is already gone: take back what is there (never below zero).
        row.take_back = json.dumps(book.take_back(uow, facts=facts, refund_no=row.refund_no, amount_fen=amount,
                                                  refunded_before_fen=counted, strict=False), sort_keys=True)
        book.on_refunded(uow, facts=facts, refunded_fen=succeeded_fen(uow, book.name, facts.id))
        log.warning("console refund applied", extra={"refund_no": row.refund_no, "order": facts.number,
                                                      "amount_fen": amount})

    # ---- settlement: unknown outcomes -------------------------------------------------

    def run_once(self) -> RefundReport:
        """Asks the provider about every refund still pending / processing (claimed
        with SKIP LOCKED on PostgreSQL so replicas split the work)."""
        now = self._clock()
        report = RefundReport()
        query = (select(RefundRow).where(
            RefundRow.state.in_(OPEN_STATES),
            RefundRow.created_at <= naive(now - self._requery_after),
            or_(RefundRow.last_queried_at.is_(None), RefundRow.last_queried_at <= naive(now - self._requery_every)),
        ).order_by(RefundRow.created_at).limit(self._batch))
        with self._uow() as uow:
            if uow.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = list(uow.session.scalars(query))
            if claimed:
                uow.session.execute(update(RefundRow).where(RefundRow.id.in_([r.id for r in claimed]))
                                    .values(last_queried_at=naive(now)).execution_options(synchronize_session=False))
            uow.commit()
        for row in claimed:
            book = self.books.get(row.book)
            if book is None or book.internal:
                continue
            report.queried += 1
            with self._uow() as uow:
                facts = book.lock(uow, order_id=row.order_id)
            self._ask(book, RefundView.of(row), facts, send=False)
            after = self.get(row.refund_no)
            report.finished += int(after.state not in OPEN_STATES)
        return report
