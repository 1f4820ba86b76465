"""Wallet balances as use cases: a store's totals (003 `personal`), and the internal
wallet operations (debit, credit, the entry history; wallet.proto). Every change goes
through ledger.post, in one transaction each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from server.platform.errors import DomainError, Kind, Violations
from server.platform.unit_of_work import UnitOfWork
from server.recharge import ledger, rules
from server.recharge.ledger import CREDIT, DEBIT, RECHARGE
from server.recharge.rules import Refusal
from server.recharge.tables import WalletEntryRow, WalletRow
from server.recharge.views import WalletEntryView


@dataclass(frozen=True)
class StoreTotals:
    balance: int
    paid: int  # recharges paid (without gifts)
    spent: int  # debits


@dataclass(frozen=True)
class WalletChange:
    entry: WalletEntryView
    balance: int


class Wallets:
    def __init__(self, uow_factory: Callable[[], UnitOfWork]):
        self._uow = uow_factory

    def balance(self, user_id: int, store_id: int = 0) -> int:
        with self._uow() as uow:
            return ledger.balance_of(uow, user_id, store_id)

    def store_totals(self, user_id: int, store_id: int) -> StoreTotals:
        with self._uow() as uow:
            wallet = uow.session.scalar(select(WalletRow).where(WalletRow.user_id == user_id,
                                                                WalletRow.store_id == store_id))
            if wallet is None:
                return StoreTotals(0, 0, 0)
            sums = dict(uow.session.execute(
                select(WalletEntryRow.reason, func.sum(WalletEntryRow.amount))
                .where(WalletEntryRow.wallet_id == wallet.id).group_by(WalletEntryRow.reason)
            ).all())
        return StoreTotals(wallet.balance, int(sums.get(RECHARGE) or 0), -int(sums.get(DEBIT) or 0))

    # ---- internal wallet operations (wallet.proto) ------------------------------

    def wallet_entries(self, user_id: int, store_id: int, offset: int, limit: int, before_id: int | None = None
                       ) -> tuple[int, list[WalletEntryView], bool]:
        """`before_id`: only entries older than it (a keyset page token)."""
        with self._uow() as uow:
            wallet = uow.session.scalar(select(WalletRow).where(WalletRow.user_id == user_id,
                                                                WalletRow.store_id == store_id))
            if wallet is None:
                return 0, [], False
            older = [WalletEntryRow.id < before_id] if before_id is not None else []
            rows = list(uow.session.scalars(
                select(WalletEntryRow).where(WalletEntryRow.wallet_id == wallet.id, *older)
                .order_by(WalletEntryRow.id.desc()).offset(offset).limit(limit + 1)
            ))
        return wallet.balance, [WalletEntryView.of(row) for row in rows[:limit]], len(rows) > limit

    def move(self, user_id: int, store_id: int, amount: int, reference: str, request_id: str, *, debit: bool
             ) -> WalletChange:
        """Debit or credit, idempotent by request_id: a retry (same request_id and
        parameters) gets the first entry back; other parameters are refused."""
        v = Violations()
        if user_id <= 0:
            v.add("user_id", "The user_id is required.")
        if store_id < 0:
            v.add("store_id", "The store_id must be 0 or a store id.")
        if amount <= 0 or amount > rules.MAX_WALLET_MOVE_FEN:
            v.add("amount_fen", "The amount_fen must be a positive number of fen.")
        if not reference or len(reference) > 128:
            v.add("reference", "The reference is required (at most 128 characters).")
        if not request_id or len(request_id) > 64:
            v.add("request_id", "The request_id is required (at most 64 characters).")
        v.raise_if_any()
        reason, signed = (DEBIT, -amount) if debit else (CREDIT, amount)
        with self._uow() as uow:
            wallet = ledger.lock_wallet(uow, user_id, store_id)
            # Looked up under the wallet lock, so concurrent retries see the winner's entry.
            earlier = uow.session.scalar(select(WalletEntryRow).where(WalletEntryRow.wallet_id == wallet.id,
                                                                      WalletEntryRow.request_id == request_id))
            if earlier is not None:
                if (earlier.reason, earlier.amount, earlier.reference) != (reason, signed, reference):
                    raise DomainError(Refusal.REQUEST_ID_REUSED, "The request_id was used for another operation.",
                                      Kind.CONFLICT, metadata={"request_id": request_id})
                return WalletChange(WalletEntryView.of(earlier), wallet.balance)
            try:
                entry = ledger.post(uow, wallet, signed, reason, reference, request_id)
            except IntegrityError as exc:
                raise DomainError(Refusal.DUPLICATE_REFERENCE, "This reference was already booked.", Kind.CONFLICT,
                                  metadata={"reference": reference}) from exc
            uow.commit()
            return WalletChange(WalletEntryView.of(entry), wallet.balance)
