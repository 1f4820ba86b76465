"""An operator's two actions on one provider-paid order (the console, docs/console.md):
re-query the provider, and close an unpaid order. Both go through the settlement's
own paths — a paid answer is applied by the book's settle(), the one idempotent
code path a notification takes, so it grants / credits exactly once however often
it is asked — and neither holds a transaction while talking to the provider.

Close: the provider is asked first (a trade paid there is settled, not closed), then
told to close (where the channel can: the sandbox, and any channel with `close`),
then the order is closed by the book's conditional UPDATE (open -> closed), so a
notification racing it wins or loses cleanly. A payment that still lands after the
close is honoured by settle() as before (the money was taken: a closed VIP order is
marked paid and granted, a FAILED recharge order becomes PAID and credited)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import case, select, update

from server.payments.channels import ChannelRegistry, ChannelUnavailable, Notification
from server.payments.settlement import OrderBook
from server.platform.errors import DomainError, Kind, not_found
from server.platform.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ActionResult:
    book: str
    number: str
    state_before: str  # unpaid | paid | closed
    state_after: str
    provider: str  # what the provider said: paid | closed | not_paid | unknown_trade | "" (not asked)
    settled: bool  # this action marked the order paid (and so granted / credited)


def provider_says(note: Notification | None) -> str:
    if note is None:
        return "unknown_trade"
    return "paid" if note.paid else "closed" if note.closed else "not_paid"


def unavailable(exc: Exception) -> DomainError:
    return DomainError("PAYMENT_CHANNEL_UNAVAILABLE", f"The payment channel did not answer: {exc}", Kind.UNAVAILABLE)


class OrderActions:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], channels: ChannelRegistry, books: list[OrderBook],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._uow = uow_factory
        self._channels = channels
        self._books = books
        self._clock = clock

    def can_query(self, channel_name: str) -> bool:
        return hasattr(self._channels.by_name(channel_name), "query")

    def _find(self, number: str) -> tuple[OrderBook, int, str, int]:
        with self._uow() as uow:
            for book in self._books:
                row = uow.session.execute(select(book.table.id, book.table.channel, book.amount)
                                          .where(book.number == number)).first()
                if row is not None:
                    return book, row[0], row[1], row[2]
        raise not_found("order", number)

    def _state(self, book: OrderBook, order_id: int) -> str:
        with self._uow() as uow:
            return uow.session.scalar(select(case((book.is_paid(), "paid"), (book.is_open(), "unpaid"),
                                                  else_="closed")).where(book.table.id == order_id))

    def _ask(self, book: OrderBook, order_id: int, number: str, channel_name: str) -> tuple[Notification | None, bool]:
        """The provider's answer, applied through the book's settle() when it has one, and
        whether that settle() marked the order paid (not a concurrent notification or re-query)."""
        channel = self._channels.by_name(channel_name)
        query = getattr(channel, "query", None)
        if query is None:
            raise DomainError("CHANNEL_CANNOT_QUERY", f"Orders paid through {channel_name} cannot be re-queried.",
                              Kind.FAILED_PRECONDITION, metadata={"channel": channel_name})
        try:
            note = query(number)
        except ChannelUnavailable as exc:
            raise unavailable(exc) from exc
        if note is None:
            return None, False
        return note, book.settle(order_id, channel, replace(note, via="query")).settled

    def requery(self, number: str) -> ActionResult:
        book, order_id, channel_name, _ = self._find(number)
        before = self._state(book, order_id)
        note, settled = self._ask(book, order_id, number, channel_name)
        return ActionResult(book.name, number, before, self._state(book, order_id), provider_says(note), settled)

    def close(self, number: str) -> ActionResult:
        book, order_id, channel_name, amount = self._find(number)
        before = self._state(book, order_id)
        if before != "unpaid":
            raise DomainError("ORDER_NOT_OPEN", f"Only unpaid orders can be closed; this one is {before}.",
                              Kind.FAILED_PRECONDITION, metadata={"order_number": number, "state": before})
        channel = self._channels.by_name(channel_name)
        asked = hasattr(channel, "query")  # a channel that cannot be asked (App Store) is closed on our side only
        note, settled = self._ask(book, order_id, number, channel_name) if asked else (None, False)
        if note is None or not note.paid:
            close_there = getattr(channel, "close", None)
            try:
                closed_there = close_there(number, amount) if close_there is not None else True
            except ChannelUnavailable as exc:
                raise unavailable(exc) from exc
            if not closed_there:  # paid there after all (between our question and the close): settle it
                note, settled = self._ask(book, order_id, number, channel_name)
            else:
                with self._uow() as uow:
                    uow.session.execute(update(book.table).where(book.table.id == order_id, book.is_open())
                                        .values(**book.close_values(self._clock()))
                                        .execution_options(synchronize_session=False))
                    uow.commit()
        after = self._state(book, order_id)
        return ActionResult(book.name, number, before, after, provider_says(note) if asked else "", settled)
