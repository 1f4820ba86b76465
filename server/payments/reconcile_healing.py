"""Healing what reconciliation found (docs/reconciliation.md), only through the paths a
provider notification takes, so each healing is its own idempotent transaction: a
payment through the order book's settle(), a refund through RefundService.receive_statement."""

from __future__ import annotations

from server.payments.channels import REFUND_SUCCEEDED, Notification, RefundStatement
from server.payments.refunds import RefundService
from server.payments.settlement import OrderBook
from server.payments.statements import StatementLine


class Healer:
    def __init__(self, refunds: RefundService):
        self._refunds = refunds

    @staticmethod
    def payment(book: OrderBook, order_id: int, channel, line: StatementLine) -> str:
        reply = book.settle(order_id, channel, Notification(line.trade_no, line.amount_fen, True, line.provider_txn_id,
                                                              via="statement"))
        if reply.status >= 300:
            return f"settlement refused: {reply.body[:100].decode(errors='replace')}"
        return "applied: paid through the notification path"

    def refund(self, channel, line: StatementLine) -> str:
        reply = self._refunds.receive_statement(channel, RefundStatement(
            line.trade_no, REFUND_SUCCEEDED, line.refund_no, line.amount_fen,
            provider_refund_id=line.provider_refund_id, provider_txn_id=line.provider_txn_id))
        row = self._refunds.get(line.refund_no)
        if reply.status >= 300 or row is None or row.state != REFUND_SUCCEEDED:
            return f"refund path refused: {reply.body[:100].decode(errors='replace') or 'not applied'}"
        return "applied: taken back through the refund path"
