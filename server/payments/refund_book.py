"""The port between the refund service (refunds.py) and the areas: what refunding needs
to know of an order (OrderFacts), what an area does when one of its orders is refunded
(RefundBook, one `<area>/refunds.py` each), and the pieces every area shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from sqlalchemy import select

from server.payments.refund_tables import RefundRow
from server.platform.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class OrderFacts:
    """What refunding needs to know of an order, whatever its area."""

    book: str
    id: int
    number: str
    channel: str
    paid: bool
    paid_fen: int
    provider_txn_id: str = ""


class RefundBook(Protocol):
    """One area's orders as the refund service sees them (implemented by each area's
    refunds.py, the shared part by OrderRefunds below). Every method runs in the
    caller's transaction; take_back/restore return/receive a JSON-able summary of what
    was taken, kept on the refund row (and proven by check)."""

    name: str
    internal: bool  # refunded by us (merchant prepaid balance), final at once
    full_only: bool

    def find(self, uow: UnitOfWork, *, number: str) -> int | None:
        """The order's id by its number (None: not this book's)."""

    def lock(self, uow: UnitOfWork, *, order_id: int) -> OrderFacts:
        """The order row, locked (FOR UPDATE)."""

    def fulfil(self, uow: UnitOfWork, *, order_id: int, provider_txn_id: str) -> None:
        """A refund proves the payment: marks the order paid if it is not yet."""

    def take_back(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, amount_fen: int,
                  refunded_before_fen: int, strict: bool) -> dict:
        """Takes back what `amount_fen` bought. refunded_before_fen (the order's earlier
        refunds) makes shares cumulative, so partial refunds add up exactly to a full
        one; strict (operator) refuses what it cannot take. Returns the summary."""

    def restore(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, summary: dict) -> None:
        """Undoes a take-back (the refund failed at the provider)."""

    def check(self, uow: UnitOfWork, *, refund: RefundRow) -> list[str]:
        """Problems with the refund's take-back (it must be recorded exactly once)."""

    def on_refunded(self, uow: UnitOfWork, *, facts: OrderFacts, refunded_fen: int) -> None:
        """After a refund succeeded: refunded_fen is the order's succeeded total."""


def share(before: int, amount: int, total: int) -> float:
    """The fraction of what an order bought that one refund takes back: cumulative, so
    the refunds of an order add up to exactly 1 when they add up to its payment."""
    total = max(total, 1)
    return min((before + amount) / total, 1.0) - min(before / total, 1.0)


class OrderRefunds:
    """What every area's RefundBook shares: finding the order by its number and locking
    its row. A subclass names its table (`row`, `number`) and says what the locked row
    means (`facts`)."""

    name: ClassVar[str]
    row: ClassVar[type]  # the area's order table (a mapped class with an `id` column)
    number: ClassVar[str]  # the attribute holding the order's number (trade_no, order_code, ...)
    internal: ClassVar[bool] = False
    full_only: ClassVar[bool] = False

    def find(self, uow: UnitOfWork, *, number: str) -> int | None:
        return uow.session.scalar(select(self.row.id).where(getattr(self.row, self.number) == number))

    def lock(self, uow: UnitOfWork, *, order_id: int) -> OrderFacts:
        return self.facts(self.locked(uow, order_id))

    def locked(self, uow: UnitOfWork, order_id: int):
        """The order row, locked, read afresh (not the session's stale copy)."""
        return uow.session.scalars(select(self.row).where(self.row.id == order_id).with_for_update()
                                   .execution_options(populate_existing=True)).one()

    def facts(self, order) -> OrderFacts:
        raise NotImplementedError

    def on_refunded(self, uow: UnitOfWork, *, facts: OrderFacts, refunded_fen: int) -> None:
        return None
