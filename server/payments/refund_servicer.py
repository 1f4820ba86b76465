"""RefundService: the operator's refund RPCs (role `admin`, gRPC only) and the
providers' refund notify path. Proto <-> service layer, nothing else."""

from __future__ import annotations

from datetime import datetime, timezone

from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2
from vipay.payments.v1 import refunds_pb2 as pb
from vipay.payments.v1 import refunds_pb2_grpc

from server.payments.refund_views import RefundView
from server.payments.refunds import RefundService
from server.operators.roles import Permission, require_permission
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.replace(tzinfo=timezone.utc))
    return stamp


def refund_message(row: RefundView) -> pb.Refund:
    return pb.Refund(refund_id=row.refund_no, order_number=row.order_number, order_id=row.order_id,
                     order_kind=row.book, channel=row.channel, amount_fen=row.amount_fen, state=row.state,
                     origin=row.origin, reason=row.reason, provider_refund_id=row.provider_refund_id or "",
                     take_back_json=row.take_back, create_time=timestamp(row.created_at),
                     finish_time=timestamp(row.finished_at))


def refund_summary(row: RefundView) -> dict:
    return {"refund_id": row.refund_no, "amount_fen": row.amount_fen, "state": row.state, "reason": row.reason}


class RefundServicer(refunds_pb2_grpc.RefundServiceServicer):
    def __init__(self, service: RefundService, run: BlockingRunner, audited=None):
        self._svc = service
        self._run = run
        # audited(actor, action, target, before, after, reason): the audit log
        # (docs/console.md). The refund commits in RefundService's own transactions, so
        # its entry follows in one of its own.
        self._audited = audited

    async def RefundOrder(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.REFUND)
        before = await self._run(self._svc.by_order_number, request.order_number)
        row = await self._run(self._svc.refund, request.order_number,
                              amount_fen=request.amount_fen or None, reason=request.reason,
                              refund_no=request.refund_id)
        if self._audited is not None and row.refund_no not in {r.refund_no for r in before}:  # not a retry
            await self._run(self._audited, actor, "order.refund", request.order_number,
                            [refund_summary(r) for r in before],
                            [refund_summary(r) for r in before] + [refund_summary(row)], request.reason)
        return pb.RefundOrderResponse(refund=refund_message(row))

    async def ListOrderRefunds(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        rows = await self._run(self._svc.by_order_number, request.order_number)
        return pb.ListOrderRefundsResponse(refunds=[refund_message(r) for r in rows])

    async def HandleRefundNotification(self, request, context):
        call = current_call.get()
        channel, _, suffix = request.callback.rpartition("-")
        if suffix != "callback" or not channel:
            channel = ""  # unknown channel: the service answers not found
        reply = await self._run(self._svc.handle_notification, channel, request.http_body.data,
                                request.http_body.content_type, call.metadata)
        call.set_http_status(reply.status)
        return httpbody_pb2.HttpBody(content_type=reply.content_type, data=reply.body)


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, refunds: RefundService,
             audited=None) -> str:
    """`audited`: the operators' audit log (docs/console.md)."""
    refunds_pb2_grpc.add_RefundServiceServicer_to_server(RefundServicer(refunds, runner, audited), server)
    return pb.DESCRIPTOR.services_by_name["RefundService"].full_name
