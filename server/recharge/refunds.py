"""Recharge orders (000/002/003) as the refund service sees them (payments/refund_book.py
RefundBook). A refund takes the refunded share of the credited amount and of its gift
back from the wallet (and of a package's membership). Never below zero: an operator
refund is refused when the wallet no longer holds it (REFUND_EXCEEDS_BALANCE); a refund
made in the provider's console, whose money is already gone, takes what is there and
records the shortfall (docs/refunds.md)."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from server.membership.grants import MembershipGrants
from server.payments.channels import REFUND_FAILED
from server.payments.refund_book import OrderFacts, OrderRefunds, share
from server.payments.refund_tables import RefundRow
from server.platform.errors import DomainError, Kind
from server.platform.unit_of_work import UnitOfWork
from server.recharge import ledger, rules
from server.recharge.ledger import REFUND, REFUND_UNDO
from server.recharge.rules import Refusal
from server.recharge.tables import RechargeOrderRow, WalletEntryRow


class RechargeOrderRefunds(OrderRefunds):
    name = "recharge_orders"
    row = RechargeOrderRow
    number = "order_number"

    def __init__(self, fulfil: Callable[[UnitOfWork, RechargeOrderRow, str], bool], memberships: MembershipGrants):
        self._fulfil = fulfil  # RechargeService's: marks paid and credits, once
        self._memberships = memberships

    def facts(self, order: RechargeOrderRow) -> OrderFacts:
        return OrderFacts(self.name, order.id, order.order_number or "", order.channel,
                          order.state == rules.OrderState.PAID, order.amount, order.provider_txn_id or "")

    def fulfil(self, uow: UnitOfWork, *, order_id: int, provider_txn_id: str) -> None:
        self._fulfil(uow, uow.session.get(RechargeOrderRow, order_id), provider_txn_id)

    def take_back(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, amount_fen: int,
                  refunded_before_fen: int, strict: bool) -> dict:
        order = uow.session.get(RechargeOrderRow, facts.id)
        before, total = refunded_before_fen, max(order.amount, 1)
        # The gift's share, cumulative so that partial refunds add up to the whole gift.
        gift = order.gift_amount * (before + amount_fen) // total - order.gift_amount * before // total
        due = amount_fen + gift
        wallet = ledger.lock_wallet(uow, order.user_id, order.store_id)
        if strict and wallet.balance < due:
            raise DomainError(Refusal.REFUND_EXCEEDS_BALANCE, "The wallet no longer holds what this refund takes back.",
                              Kind.FAILED_PRECONDITION,
                              metadata={"balance_fen": str(wallet.balance), "take_back_fen": str(due)})
        take = min(due, wallet.balance)
        if take > 0:
            ledger.post(uow, wallet, -take, REFUND, f"refund:{refund_no}")
        summary = {"wallet": take, "shortfall": due - take}
        if order.vip_months and order.vip_level:
            summary.update(self._memberships.refund_take_back_in(
                uow, order.user_id, "recharge_order", str(order.id), share(before, amount_fen, order.amount),
                refund_no))
        return summary

    def restore(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, summary: dict) -> None:
        order = uow.session.get(RechargeOrderRow, facts.id)
        if summary.get("wallet"):
            ledger.post(uow, ledger.lock_wallet(uow, order.user_id, order.store_id), summary["wallet"], REFUND_UNDO,
                        f"refund:{refund_no}")
        self._memberships.refund_restore_in(uow, order.user_id, refund_no, summary)

    def check(self, uow: UnitOfWork, *, refund: RefundRow) -> list[str]:
        summary = json.loads(refund.take_back)
        taken = summary.get("wallet", 0)
        rows = uow.session.execute(select(WalletEntryRow.reason, WalletEntryRow.amount).where(
            WalletEntryRow.reference == f"refund:{refund.refund_no}")).all()
        expect = ([(REFUND, -taken)] if taken else []) + (
            [(REFUND_UNDO, taken)] if taken and refund.state == REFUND_FAILED else [])
        problems = [] if sorted(rows) == sorted(expect) else [f"wallet entries {sorted(rows)}, expected {expect}"]
        return problems + self._memberships.check_refund_take_back(uow, refund)
