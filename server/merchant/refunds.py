"""Merchant orders (004) as the refund service sees them (payments/refund_book.py
RefundBook): refunded in full by the operator to the merchant's prepaid balance (no
provider), the membership taken back, the order's state becomes `refunded` and a signed
`refunded` status callback is queued."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select, update

from server.membership.grants import MembershipGrants
from server.merchant.rules import OrderState
from server.merchant.tables import MerchantBalanceEntryRow, MerchantOrderRow, MerchantRow
from server.payments.refund_book import OrderFacts, OrderRefunds, share
from server.payments.refund_tables import RefundRow
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork


class MerchantOrderRefunds(OrderRefunds):
    name = "merchant_orders"
    row = MerchantOrderRow
    number = "order_code"
    internal = True  # refunded by us, final at once
    full_only = True

    def __init__(self, memberships: MembershipGrants, post_balance: Callable[..., None],
                 enqueue_callback: Callable[[UnitOfWork, MerchantOrderRow, str, object], None]):
        self._memberships = memberships
        self._post_balance = post_balance  # MerchantChargeService._ledger: a balance entry after a change
        self._enqueue_callback = enqueue_callback  # MerchantChargeService._enqueue_callback

    def facts(self, order: MerchantOrderRow) -> OrderFacts:
        return OrderFacts(self.name, order.id, order.order_code, "merchant_balance",
                          order.state in (OrderState.SUCCESS, OrderState.REFUNDED), order.settlement_price_fen)

    def fulfil(self, uow: UnitOfWork, *, order_id: int, provider_txn_id: str) -> None:
        return None  # paid from the balance when created: never awaiting a provider

    def take_back(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, amount_fen: int,
                  refunded_before_fen: int, strict: bool) -> dict:
        order = uow.session.get(MerchantOrderRow, facts.id)
        now = naive_now()
        uow.session.execute(update(MerchantRow).where(MerchantRow.id == order.merchant_pk)
                            .values(balance_fen=MerchantRow.balance_fen + amount_fen))
        self._post_balance(uow, order.merchant_pk, "refund", amount_fen, order.id, now, note=refund_no)
        summary = {"merchant_balance": amount_fen}
        summary.update(self._memberships.refund_take_back_in(
            uow, order.user_id, "merchant_order", str(order.id),
            share(refunded_before_fen, amount_fen, order.settlement_price_fen), refund_no))
        return summary

    def restore(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, summary: dict) -> None:
        raise AssertionError("merchant refunds are final at once")  # internal books never fail at a provider

    def check(self, uow: UnitOfWork, *, refund: RefundRow) -> list[str]:
        summary = json.loads(refund.take_back)
        rows = uow.session.scalars(select(MerchantBalanceEntryRow.amount_fen).where(
            MerchantBalanceEntryRow.kind == "refund", MerchantBalanceEntryRow.note == refund.refund_no)).all()
        problems = [] if list(rows) == [summary.get("merchant_balance")] else [
            f"merchant balance refunds {list(rows)}, expected {summary.get('merchant_balance')}"]
        return problems + self._memberships.check_refund_take_back(uow, refund)

    def on_refunded(self, uow: UnitOfWork, *, facts: OrderFacts, refunded_fen: int) -> None:
        order = uow.session.get(MerchantOrderRow, facts.id)
        if refunded_fen < order.settlement_price_fen or order.state == OrderState.REFUNDED:
            return
        order.state = OrderState.REFUNDED
        uow.session.flush()
        merchant = uow.session.get(MerchantRow, order.merchant_pk)
        self._enqueue_callback(uow, order, merchant.merchant_id, naive_now())
