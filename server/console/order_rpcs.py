"""ConsoleService's one-order RPCs (GetOrderDetail, RequeryOrder, CloseOrder): proto <->
the detail read model (order_detail.py) and the settlement's OrderActions. Kept apart
from servicer.py, which delegates to it."""

from __future__ import annotations

from collections.abc import Callable

from vipay.console.v1 import console_pb2 as pb

from server.console.order_detail import OrderDetail, order_detail
from server.console.orders import display
from server.operators.roles import Permission, require_permission
from server.operators.service import require_reason
from server.payments.order_actions import ActionResult, OrderActions
from server.platform.calls import BlockingRunner, current_call
from server.platform.errors import DomainError, Kind
from server.platform.timestamps import timestamp_message
from server.platform.unit_of_work import UnitOfWork


def _time(value):
    return timestamp_message(value) if value is not None else None


def detail_message(d: OrderDetail, can_requery: bool, order: pb.OrderSummary) -> pb.GetOrderDetailResponse:
    family = d.line.family
    return pb.GetOrderDetailResponse(
        order=order,
        payment_fields=[pb.OrderField(name=k, value=v or "") for k, v in d.payment],
        notifications=[pb.OrderNotification(
            source=n.source, channel=n.channel, provider_txn_id=n.provider_txn_id, amount_fen=n.amount_fen,
            amount_display=display(family, n.amount_fen), paid=n.paid, closed=n.closed, outcome=n.outcome,
            receive_time=_time(n.received_at)) for n in d.notes],
        grants=[pb.OrderGrant(level=g.level, source=g.source, source_ref=g.source_ref,
                              previous_expire_time=_time(g.previous_expires_at), expire_time=_time(g.expires_at),
                              create_time=_time(g.created_at)) for g in d.grants],
        wallet_entries=[pb.OrderWalletEntry(
            reason=e.kind, amount_fen=e.amount_fen, amount_display=display(family, e.amount_fen),
            balance_after_fen=e.balance_after_fen, reference=e.reference, create_time=_time(e.created_at))
            for e in d.wallet],
        merchant_balance_entries=[pb.OrderMerchantBalanceEntry(
            kind=e.kind, amount_fen=e.amount_fen, amount_display=display(family, e.amount_fen),
            balance_after_fen=e.balance_after_fen, note=e.reference, create_time=_time(e.created_at))
            for e in d.merchant_balance],
        refunds=[pb.OrderRefund(refund_no=r.refund_no, amount_fen=r.amount_fen,
                                amount_display=display(family, r.amount_fen), state=r.state, reason=r.reason,
                                origin=r.origin, create_time=_time(r.created_at), finish_time=_time(r.finished_at))
                 for r in d.refunds],
        callbacks=[pb.OrderCallback(url=c.url, state=c.state, attempts=c.attempts, last_error=c.last_error,
                                    deliver_time=_time(c.delivered_at), create_time=_time(c.created_at))
                   for c in d.callbacks],
        can_requery=can_requery, can_close=d.can_close,
    )


def result_message(r: ActionResult) -> pb.OrderActionResult:
    return pb.OrderActionResult(state_before=r.state_before, state_after=r.state_after,
                                provider_answer=r.provider, settled=r.settled)


def audit_values(r: ActionResult) -> tuple[dict, dict]:
    return {"state": r.state_before}, {"state": r.state_after, "provider": r.provider, "settled": r.settled}


class OrderRpcs:
    """`order_message`: OrderLine -> OrderSummary (servicer.py); `audited(actor, action,
    target, before, after, reason)`: the audit log, in a transaction of its own after
    the action (which commits in the settlement's own transactions, as refunds do)."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], run: BlockingRunner, actions: OrderActions,
                 audited: Callable, order_message: Callable):
        self._uow = uow_factory
        self._run = run
        self._actions = actions
        self._audited = audited
        self._order_message = order_message

    def _detail(self, number: str) -> OrderDetail:
        with self._uow() as uow:
            return order_detail(uow, number)

    async def get_detail(self, request) -> pb.GetOrderDetailResponse:
        require_permission(current_call.get().principal, Permission.READ)
        d = await self._run(self._detail, request.order_number)
        can_requery = d.line.family != "004" and self._actions.can_query(d.line.channel)
        return detail_message(d, can_requery, self._order_message(d.line))

    async def _act(self, action: str, request, do: Callable[[str], ActionResult]) -> pb.OrderActionResult:
        actor = require_permission(current_call.get().principal, Permission.REFUND)
        reason = require_reason(request.reason)
        detail = await self._run(self._detail, request.order_number)  # an unknown number is refused here
        if detail.line.family == "004":
            raise DomainError("CHANNEL_CANNOT_QUERY", "Merchant orders (004) are paid from the prepaid balance: "
                              "there is no provider to ask and nothing to close.", Kind.FAILED_PRECONDITION)
        result = await self._run(do, request.order_number)
        before, after = audit_values(result)
        await self._run(self._audited, actor, action, request.order_number, before, after, reason)
        return result_message(result)

    async def requery(self, request) -> pb.RequeryOrderResponse:
        return pb.RequeryOrderResponse(result=await self._act("order.requery", request, self._actions.requery))

    async def close(self, request) -> pb.CloseOrderResponse:
        return pb.CloseOrderResponse(result=await self._act("order.close", request, self._actions.close))
