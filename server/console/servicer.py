"""ConsoleService (gRPC only): the console's cross-family reads. Proto <-> read model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc

from server.console import health
from server.console.orders import OrderFilter, OrderLine, search_orders
from server.merchant.callbacks import outbox_gauges
from server.operators.roles import Permission, require_permission
from server.operators.servicer import page_bounds
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.paging import page_token
from server.platform.times import naive
from server.platform.timestamps import timestamp_message
from server.platform.unit_of_work import UnitOfWork
from server.recharge.ledger import check_ledger


def order_message(line: OrderLine) -> pb.OrderSummary:
    return pb.OrderSummary(family=line.family, order_number=line.number, user_id=line.user_id,
                           amount_fen=line.amount, amount_display=line.amount_display, channel=line.channel,
                           state=line.state, create_time=timestamp_message(line.created_at),
                           paid_time=timestamp_message(line.paid_at) if line.paid_at else None,
                           description=line.description)


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], run: BlockingRunner,
                 backlog: Callable[[], tuple[int, float]], ledger_check: Callable[[], list[str]]):
        self._uow = uow_factory
        self._run = run
        self._backlog = backlog  # (pending merchant callbacks, oldest age in seconds)
        self._ledger_check = ledger_check  # problems of the wallet ledger and refunds

    def _today(self, tz):
        with self._uow() as uow:
            return health.today(uow, tz, datetime.now(timezone.utc))

    async def GetHealth(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        tz = health.zone(request.time_zone)
        error = await self._run(health.database_ready, self._uow)
        answer = pb.GetHealthResponse(database_ready=not error, database_error=error)
        if error:
            return answer  # nothing else can be counted
        for day in await self._run(self._today, tz):
            answer.families.append(pb.FamilyDay(family=day.family, orders=day.orders, paid_orders=day.paid,
                                                revenue_fen=day.revenue_fen, revenue_display=day.revenue_display,
                                                refunded_fen=day.refunded_fen))
        answer.callback_backlog, answer.oldest_pending_callback_seconds = await self._run(self._backlog)
        return answer

    async def RunLedgerCheck(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        problems = await self._run(self._ledger_check)
        return pb.RunLedgerCheckResponse(ok=not problems, problems=problems)

    def _search(self, f: OrderFilter, offset: int, limit: int):
        with self._uow() as uow:
            return search_orders(uow, f, offset, limit)

    async def SearchOrders(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        offset, limit = page_bounds(request.page_size, request.page_token)
        f = OrderFilter(
            family=request.family, order_number=request.order_number, user_id=request.user_id,
            channel=request.channel, state=request.state, order_by=request.order_by,
            created_from=naive(request.create_time_from.ToDatetime(tzinfo=timezone.utc))
            if request.HasField("create_time_from") else None,
            created_to=naive(request.create_time_to.ToDatetime(tzinfo=timezone.utc))
            if request.HasField("create_time_to") else None,
        )
        lines, total = await self._run.read(self._search, f, offset, limit)
        return pb.SearchOrdersResponse(orders=[order_message(line) for line in lines], total_size=total,
                                       next_page_token=page_token(offset + limit) if offset + limit < total else "")


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *,
             uow_factory: Callable[[], UnitOfWork], refund_check: Callable[[UnitOfWork], list[str]]) -> str:
    """`refund_check`: the refund service's ledger-check proofs (RefundService.check)."""
    def ledger_check() -> list[str]:
        with uow_factory() as uow:
            return [str(p) for p in check_ledger(uow)] + refund_check(uow)

    console_pb2_grpc.add_ConsoleServiceServicer_to_server(
        ConsoleServicer(uow_factory, runner, lambda: outbox_gauges(uow_factory), ledger_check), server)
    return pb.DESCRIPTOR.services_by_name["ConsoleService"].full_name
