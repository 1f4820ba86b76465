"""The sandbox provider's own books: which sandbox trades the (pretend) provider saw
paid or closed. A stand-in for the state a real provider keeps on its side, so the
sandbox answers a re-query and a close the way Alipay and WeChat Pay do. Only the
sandbox channel reads and writes it; our order code never looks at it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, String, update
from sqlalchemy.orm import Mapped, mapped_column

from server.platform.database import Base
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

PAID, CLOSED = "PAID", "CLOSED"


class SandboxTradeRow(Base):
    __tablename__ = "sandbox_trades"
    trade_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))  # PAID | CLOSED
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    txn_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SandboxBooks:
    def __init__(self, uow_factory: Callable[[], UnitOfWork]):
        self._uow = uow_factory

    def trade(self, trade_no: str) -> tuple[str, int, str] | None:
        """(state, amount fen, txn id) of a trade the provider saw, else None."""
        with self._uow() as uow:
            row = uow.session.get(SandboxTradeRow, trade_no)
            return (row.state, row.amount_fen, row.txn_id) if row is not None else None

    def pay(self, trade_no: str, amount_fen: int, txn_id: str) -> None:
        """The buyer paid at the provider (also after a close: a payment that crossed it)."""
        now = naive(datetime.now(timezone.utc))
        with self._uow() as uow:
            row = uow.session.get(SandboxTradeRow, trade_no)
            if row is None:
                uow.session.add(SandboxTradeRow(trade_no=trade_no, state=PAID, amount_fen=amount_fen, txn_id=txn_id,
                                                updated_at=now))
            elif row.state != PAID:
                row.state, row.amount_fen, row.txn_id, row.updated_at = PAID, amount_fen, txn_id, now
            uow.commit()

    def close(self, trade_no: str, amount_fen: int) -> bool:
        """The provider closes an unpaid trade; False when it was already paid there."""
        now = naive(datetime.now(timezone.utc))
        with self._uow() as uow:
            row = uow.session.get(SandboxTradeRow, trade_no)
            if row is None:
                uow.session.add(SandboxTradeRow(trade_no=trade_no, state=CLOSED, amount_fen=amount_fen, txn_id="",
                                                updated_at=now))
                uow.commit()
                return True
            closed = uow.session.execute(update(SandboxTradeRow).where(
                SandboxTradeRow.trade_no == trade_no, SandboxTradeRow.state != PAID).values(
                state=CLOSED, updated_at=now).execution_options(synchronize_session=False)).rowcount == 1
            uow.commit()
            return closed
