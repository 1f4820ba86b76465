"""VIP orders (001) as the refund service sees them (payments/refund_book.py RefundBook):
a refund takes back the refunded share of the months the order granted (following an
exchange into a higher level)."""

from __future__ import annotations

from server.membership import rules
from server.membership.ledger import MembershipLedger
from server.membership.orders import VipOrders
from server.membership.tables import VipOrderRow
from server.payments.refund_book import OrderFacts, OrderRefunds, share
from server.payments.refund_tables import RefundRow
from server.platform.unit_of_work import UnitOfWork


class VipOrderRefunds(OrderRefunds):
    name = "vip_orders"
    row = VipOrderRow
    number = "trade_no"

    def __init__(self, orders: VipOrders, ledger: MembershipLedger):
        self._orders = orders
        self._ledger = ledger

    def facts(self, order: VipOrderRow) -> OrderFacts:
        return OrderFacts(self.name, order.id, order.trade_no or "", order.channel,
                          order.pay_status == rules.PayStatus.PAID, order.pay_amount, order.provider_txn_id or "")

    def fulfil(self, uow: UnitOfWork, *, order_id: int, provider_txn_id: str) -> None:
        self._orders.fulfil(uow, uow.session.get(VipOrderRow, order_id), provider_txn_id)

    def take_back(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, amount_fen: int,
                  refunded_before_fen: int, strict: bool) -> dict:
        order = uow.session.get(VipOrderRow, facts.id)
        return self._ledger.refund_take_back_in(uow, order.user_id, "vip_order", str(order.id),
                                                share(refunded_before_fen, amount_fen, order.pay_amount), refund_no)

    def restore(self, uow: UnitOfWork, *, facts: OrderFacts, refund_no: str, summary: dict) -> None:
        order = uow.session.get(VipOrderRow, facts.id)
        self._ledger.refund_restore_in(uow, order.user_id, refund_no, summary)

    def check(self, uow: UnitOfWork, *, refund: RefundRow) -> list[str]:
        return self._ledger.check_refund_take_back(uow, refund)
