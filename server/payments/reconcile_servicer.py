"""ReconciliationService: the operator's read of reconciliation runs and reports
(role `admin`, gRPC only: not bound to HTTP). Proto <-> service layer, nothing else."""

from __future__ import annotations

import json

from vipay.payments.v1 import reconciliation_pb2 as pb
from vipay.payments.v1 import reconciliation_pb2_grpc

from server.payments.reconciliation import STATEMENT_CHANNELS, ReconciliationService, check_date
from server.payments.refund_servicer import timestamp
from server.platform.auth import require_role
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.errors import Violations, not_found

CHANNELS = tuple(STATEMENT_CHANNELS.values())
MAX_PAGE = 100


def run_message(row) -> pb.ReconciliationRun:
    summary = json.loads(row.summary or "{}")
    return pb.ReconciliationRun(
        business_date=row.business_date, channel=row.channel, state=row.state, attempts=row.attempts,
        error=row.error or "", counts=summary.get("counts", {}), paid_fen=summary.get("paid_fen", 0),
        refunded_fen=summary.get("refunded_fen", 0), fees_fen=summary.get("fees_fen", 0),
        net_fen=summary.get("net_fen", 0), start_time=timestamp(row.started_at), finish_time=timestamp(row.finished_at),
        success_time=timestamp(row.succeeded_at), next_attempt_time=timestamp(row.next_attempt_at))


def item_message(row) -> pb.ReconciliationItem:
    return pb.ReconciliationItem(
        category=row.category, kind=row.kind, order_number=row.order_number, refund_id=row.refund_no,
        order_kind=row.book, provider_txn_id=row.provider_txn_id, provider_amount_fen=row.provider_amount_fen,
        local_amount_fen=row.local_amount_fen, fee_fen=row.fee_fen, action=row.action, detail=row.detail)


def checked(business_date: str, channel: str, required: bool) -> None:
    v = Violations()
    if business_date or required:
        try:
            check_date(business_date)
        except ValueError:
            v.add("business_date", "The business_date is a date, YYYY-MM-DD.")
    if (channel or required) and channel not in CHANNELS:
        v.add("channel", f"The channel is one of {', '.join(CHANNELS)}.")
    v.raise_if_any()


class ReconciliationServicer(reconciliation_pb2_grpc.ReconciliationServiceServicer):
    def __init__(self, service: ReconciliationService, run: BlockingRunner):
        self._svc = service
        self._run = run

    async def ListReconciliationRuns(self, request, context):
        require_role(current_call.get().principal, "admin")
        checked(request.business_date, request.channel, required=False)
        limit = MAX_PAGE if request.page_size <= 0 else min(request.page_size, MAX_PAGE)
        rows = await self._run(self._svc.runs, request.business_date, request.channel, limit)
        return pb.ListReconciliationRunsResponse(runs=[run_message(r) for r in rows])

    async def GetReconciliationRun(self, request, context):
        require_role(current_call.get().principal, "admin")
        checked(request.business_date, request.channel, required=True)
        rows = await self._run(self._svc.runs, request.business_date, request.channel, 1)
        if not rows:
            raise not_found("reconciliation_run", f"{request.business_date} {request.channel}")
        items = await self._run(self._svc.items, rows[0].id)
        items.sort(key=lambda i: i.category == "matched")  # discrepancies first
        return pb.GetReconciliationRunResponse(run=run_message(rows[0]), items=[item_message(i) for i in items])


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *,
             reconciliation: ReconciliationService) -> str:
    reconciliation_pb2_grpc.add_ReconciliationServiceServicer_to_server(
        ReconciliationServicer(reconciliation, runner), server)
    return pb.DESCRIPTOR.services_by_name["ReconciliationService"].full_name
