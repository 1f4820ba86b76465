"""ConsoleService (gRPC only): the console's cross-family reads. Proto <-> read model."""

from __future__ import annotations

import json
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
from server.platform.errors import Violations
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.paging import page_token
from server.platform.times import naive
from server.platform.timestamps import timestamp_message
from server.platform.unit_of_work import UnitOfWork
from server.recharge.catalog import RechargeCatalogProvider, save_recharge_catalog
from server.recharge.ledger import check_ledger
from server.recharge.rules import catalog_from_document, catalog_to_document


def order_message(line: OrderLine) -> pb.OrderSummary:
    return pb.OrderSummary(family=line.family, order_number=line.number, user_id=line.user_id,
                           amount_fen=line.amount, amount_display=line.amount_display, channel=line.channel,
                           state=line.state, create_time=timestamp_message(line.created_at),
                           paid_time=timestamp_message(line.paid_at) if line.paid_at else None,
                           description=line.description)


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], run: BlockingRunner,
                 backlog: Callable[[], tuple[int, float]], ledger_check: Callable[[], list[str]],
                 recharge_catalog: RechargeCatalogProvider | None = None, record: Callable | None = None):
        self._uow = uow_factory
        self._recharge_catalog = recharge_catalog
        self._record = record  # record(uow, actor, action, target, before, after, reason): the audit log
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

    async def GetRechargeCatalog(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        catalog = await self._run(self._recharge_catalog.get)
        return pb.GetRechargeCatalogResponse(
            document_json=json.dumps(catalog_to_document(catalog), ensure_ascii=False), version=catalog.version)

    def _save_recharge_catalog(self, actor, document: dict, reason: str) -> int:
        catalog = catalog_from_document(document)  # refuses a bad document (INVALID_ARGUMENT)
        before = catalog_to_document(self._recharge_catalog.get())
        with self._uow() as uow:
            version = save_recharge_catalog(uow, catalog)
            self._record(uow, actor, "recharge_catalog.update", "recharge_catalog", before,
                         catalog_to_document(catalog), reason)
            uow.commit()
        self._recharge_catalog.invalidate()
        return version

    async def UpdateRechargeCatalog(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.CATALOG)
        v = Violations()
        try:
            document = json.loads(request.document_json)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            v.add("document_json", "Not a JSON object.")
        if not request.reason.strip() or len(request.reason) > 500:
            v.add("reason", "A reason is required (at most 500 characters).")
        v.raise_if_any()
        document.pop("version", None)
        version = await self._run(self._save_recharge_catalog, actor, document, request.reason.strip())
        return pb.UpdateRechargeCatalogResponse(version=version)

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
             uow_factory: Callable[[], UnitOfWork], refund_check: Callable[[UnitOfWork], list[str]],
             recharge_catalog: RechargeCatalogProvider, record: Callable) -> str:
    """`refund_check`: the refund service's ledger-check proofs (RefundService.check);
    `record`: the operators' audit log, in the caller's transaction."""
    def ledger_check() -> list[str]:
        with uow_factory() as uow:
            return [str(p) for p in check_ledger(uow)] + refund_check(uow)

    def backlog() -> tuple[int, float]:
        # outbox_gauges is per businessId (depth, oldest pending age, overdue): the console shows the sum
        gauges = outbox_gauges(uow_factory).values()
        return sum(g[0] for g in gauges), max((g[1] for g in gauges), default=0.0)

    console_pb2_grpc.add_ConsoleServiceServicer_to_server(
        ConsoleServicer(uow_factory, runner, backlog, ledger_check,
                        recharge_catalog, record), server)
    return pb.DESCRIPTOR.services_by_name["ConsoleService"].full_name
