"""ConsoleService (gRPC only): the console's cross-family reads. Proto <-> read model."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc

from server.console import health
from server.console.order_rpcs import OrderRpcs
from server.console.orders import OrderFilter, OrderLine, search_orders
from server.merchant.callbacks import outbox_gauges
from server.operators.roles import Permission, require_permission
from server.operators.servicer import page_bounds
from server.payments.order_actions import OrderActions
from server.platform.calls import BlockingRunner, current_call
from server.platform.errors import Violations
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.paging import keyset_from_token, keyset_token, page_token
from server.platform.times import naive
from server.platform.timestamps import timestamp_message
from server.platform.unit_of_work import UnitOfWork
from server.membership.grants import LEVELS
from server.membership.views import GrantView
from server.recharge import catalog_bodies
from server.recharge.catalog import RechargeCatalogProvider, save_recharge_catalog
from server.recharge.ledger import check_ledger
from server.recharge.rules import catalog_from_document, catalog_to_document


def _document(text: str, v: Violations) -> dict:
    """A recharge catalog document from the console (its `version` is the server's to set)."""
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        v.add("document_json", "Not a JSON object.")
        return {}
    document.pop("version", None)
    return document


def grant_message(g: GrantView) -> pb.MembershipGrant:
    return pb.MembershipGrant(
        id=g.id, level=g.level, source=g.source, source_ref=g.source_ref,
        previous_expire_time=timestamp_message(g.previous_expires_at) if g.previous_expires_at else None,
        expire_time=timestamp_message(g.expires_at), create_time=timestamp_message(g.created_at),
        added_seconds=int(g.added.total_seconds()))


def order_message(line: OrderLine) -> pb.OrderSummary:
    return pb.OrderSummary(family=line.family, order_number=line.number, user_id=line.user_id,
                           amount_fen=line.amount, amount_display=line.amount_display, channel=line.channel,
                           state=line.state, create_time=timestamp_message(line.created_at),
                           paid_time=timestamp_message(line.paid_at) if line.paid_at else None,
                           description=line.description)


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, uow_factory: Callable[[], UnitOfWork], run: BlockingRunner,
                 backlog: Callable[[], tuple[int, float]], ledger_check: Callable[[], list[str]],
                 recharge_catalog: RechargeCatalogProvider | None = None, record: Callable | None = None,
                 grants: Callable | None = None, orders: OrderRpcs | None = None):
        self._uow = uow_factory
        self._grants = grants  # (user_id, before_id, limit) -> (MembershipView, GrantChain)
        self._orders = orders  # GetOrderDetail, RequeryOrder, CloseOrder (order_rpcs.py)
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
        document = _document(request.document_json, v)
        if not request.reason.strip() or len(request.reason) > 500:
            v.add("reason", "A reason is required (at most 500 characters).")
        v.raise_if_any()
        version = await self._run(self._save_recharge_catalog, actor, document, request.reason.strip())
        return pb.UpdateRechargeCatalogResponse(version=version)

    async def PreviewRechargeCatalog(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        v = Violations()
        document = _document(request.document_json, v)
        if len(request.client) > 32:
            v.add("client", "At most 32 characters.")
        v.raise_if_any()
        charge_index, recharge, center = catalog_bodies.preview(catalog_from_document(document), request.client)
        return pb.PreviewRechargeCatalogResponse(charge_index_json=charge_index, recharge_json=recharge,
                                                 recharge_center_json=center)

    async def ListMembershipGrants(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        v = Violations()
        if request.user_id <= 0:
            v.add("user_id", "A user id is required.")
        if request.page_size < 0:
            v.add("page_size", "The page_size must not be negative.")
        v.raise_if_any()
        status, chain = await self._run.read(self._grants, request.user_id, keyset_from_token(request.page_token),
                                             min(request.page_size or 50, 200))
        return pb.ListMembershipGrantsResponse(
            terms=[pb.MembershipTerm(level=level, expire_time=timestamp_message(expiry), active=expiry > status.now)
                   for level, expiry in sorted(status.levels.items(), key=lambda item: LEVELS.index(item[0]))],
            current_level=status.current_level or "", grants=[grant_message(g) for g in chain.grants],
            total_size=chain.total, next_page_token=keyset_token(chain.grants[-1].id) if chain.more else "")

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

    # ---- one order (order_rpcs.py) ----

    async def GetOrderDetail(self, request, context):
        return await self._orders.get_detail(request)

    async def RequeryOrder(self, request, context):
        return await self._orders.requery(request)

    async def CloseOrder(self, request, context):
        return await self._orders.close(request)


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *,
             uow_factory: Callable[[], UnitOfWork], refund_check: Callable[[UnitOfWork], list[str]],
             recharge_catalog: RechargeCatalogProvider, record: Callable,
             membership_status: Callable, grant_chain: Callable, order_actions: OrderActions,
             audited: Callable) -> str:
    """`refund_check`: the refund service's ledger-check proofs (RefundService.check);
    `record`: the operators' audit log, in the caller's transaction; `audited`: the same
    in a transaction of its own; `membership_status`, `grant_chain`: the membership ledger's
    reads (MembershipLedger.status, .grant_chain); `order_actions`: re-query and close
    (payments/order_actions.py)."""
    def ledger_check() -> list[str]:
        with uow_factory() as uow:
            return [str(p) for p in check_ledger(uow)] + refund_check(uow)

    def backlog() -> tuple[int, float]:
        # outbox_gauges is per businessId (depth, oldest pending age, overdue): the console shows the sum
        gauges = outbox_gauges(uow_factory).values()
        return sum(g[0] for g in gauges), max((g[1] for g in gauges), default=0.0)

    def grants(user_id: int, before_id: int | None, limit: int):
        return membership_status(user_id), grant_chain(user_id, before_id, limit)

    console_pb2_grpc.add_ConsoleServiceServicer_to_server(
        ConsoleServicer(uow_factory, runner, backlog, ledger_check, recharge_catalog, record, grants,
                        OrderRpcs(uow_factory, runner, order_actions, audited, order_message)), server)
    return pb.DESCRIPTOR.services_by_name["ConsoleService"].full_name
