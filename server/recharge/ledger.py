"""The wallet ledger. A balance changes only through `post`, which writes the entry
and the new balance in the caller's transaction, with the wallet row locked; so a
wallet's balance always equals the sum of its entries (`check_ledger` proves it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from server.platform.errors import DomainError, Kind
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork
from server.recharge.rules import Refusal
from server.recharge.tables import WalletEntryRow, WalletRow

EPOCH = datetime(1970, 1, 1)
# Entry reasons (wallet_entries.reason).
RECHARGE = "recharge"
GIFT = "recharge_gift"
DEBIT = "debit"
CREDIT = "credit"
REFUND = "refund"  # a refund takes the refunded share of amount + gift back
REFUND_UNDO = "refund_undo"  # the refund failed at the provider: given back


def lock_wallet(uow: UnitOfWork, user_id: int, store_id: int = 0) -> WalletRow:
    """The wallet, created on first use, locked until the transaction ends
    (FOR UPDATE on PostgreSQL; SQLite already holds the write lock from BEGIN IMMEDIATE)."""
    return uow.lock_or_create(WalletRow, {"balance": 0, "updated_at": EPOCH}, user_id=user_id, store_id=store_id)


def post(uow: UnitOfWork, wallet: WalletRow, amount: int, reason: str, reference: str,
         request_id: str | None = None, allow_negative: bool = False) -> WalletEntryRow:
    """Adds one signed entry to a locked wallet. Refuses to take the balance below
    zero. (wallet, reason, reference) is unique: the same cause twice raises IntegrityError."""
    if amount == 0:
        raise ValueError("a ledger entry moves money")
    balance = wallet.balance + amount
    if balance < 0 and not allow_negative:
        raise DomainError(Refusal.INSUFFICIENT_BALANCE, "The balance is not enough.", Kind.FAILED_PRECONDITION,
                          metadata={"balance_fen": str(wallet.balance), "amount_fen": str(-amount)})
    now = naive_now()
    entry = WalletEntryRow(wallet_id=wallet.id, amount=amount, balance_after=balance, reason=reason,
                           reference=reference, request_id=request_id, created_at=now)
    wallet.balance = balance
    wallet.updated_at = now
    uow.session.add(entry)
    uow.session.flush()
    return entry


def balance_of(uow: UnitOfWork, user_id: int, store_id: int = 0) -> int:
    return uow.session.scalar(
        select(WalletRow.balance).where(WalletRow.user_id == user_id, WalletRow.store_id == store_id)
    ) or 0


@dataclass(frozen=True)
class LedgerProblem:
    wallet_id: int
    user_id: int
    store_id: int
    balance: int
    entries_sum: int
    last_balance_after: int | None

    def __str__(self) -> str:
        return (f"wallet {self.wallet_id} (user {self.user_id}, store {self.store_id}): balance {self.balance} "
                f"!= sum of entries {self.entries_sum} (last balance_after {self.last_balance_after})")


def check_ledger(uow: UnitOfWork) -> list[LedgerProblem]:
    """Every wallet whose balance differs from the sum of its entries, or from its
    newest entry's balance_after, or is negative. Empty means the ledger holds."""
    sums = (
        select(WalletEntryRow.wallet_id, func.sum(WalletEntryRow.amount).label("total"),
               func.max(WalletEntryRow.id).label("last_id"))
        .group_by(WalletEntryRow.wallet_id)
        .subquery()
    )
    rows = uow.session.execute(
        select(WalletRow, func.coalesce(sums.c.total, 0), WalletEntryRow.balance_after)
        .outerjoin(sums, sums.c.wallet_id == WalletRow.id)
        .outerjoin(WalletEntryRow, WalletEntryRow.id == sums.c.last_id)
    ).all()
    problems = []
    for wallet, total, last_after in rows:
        total = int(total)
        if wallet.balance != total or wallet.balance < 0 or (last_after is not None and last_after != wallet.balance):
            problems.append(LedgerProblem(wallet.id, wallet.user_id, wallet.store_id, wallet.balance, total, last_after))
    return problems
