"""OpenApiChargeService (api-docs/004): proto <-> service layer, nothing else.

The bodies arrive raw (google.api.HttpBody) because the signature covers the exact
bytes; the signed headers arrive as (lower-cased) gRPC metadata."""

from __future__ import annotations

from vipay.legacy.v1 import options_pb2 as legacy
from vipay.openapi.v1 import openapi_charge_pb2 as pb
from vipay.openapi.v1 import openapi_charge_pb2_grpc

from server.merchant import rules
from server.merchant.charges import MerchantChargeService, shanghai
from server.merchant.openapi_envelope import openapi_envelope
from server.merchant.service import OpenApi
from server.merchant.views import MerchantOrderView
from server.platform import money
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry


def order_message(order: MerchantOrderView, callback_state: str) -> pb.MerchantOrder:
    return pb.MerchantOrder(
        order_code=order.order_code, biz_code=order.biz_code, account=order.account,
        settlement_price=money.yuan_number(order.settlement_price_fen), product_code=order.product_code,
        state=order.state, fail_reason=order.fail_reason or "", business_id=order.business_id, mobile=order.mobile,
        created_at=shanghai(order.created_at), finished_at=shanghai(order.finished_at), callback_state=callback_state,
    )


class OpenApiChargeServicer(openapi_charge_pb2_grpc.OpenApiChargeServiceServicer):
    def __init__(self, charges: MerchantChargeService, run: BlockingRunner):
        self._svc = charges
        self._run = run

    async def VipCharge(self, request, context):
        call = current_call.get()
        result = await self._run(self._svc.charge, call.metadata, request.http_body.data)
        order = result.order
        return pb.VipChargeResponse(status=result.status, message=result.message, data=pb.ChargeOrder(
            order_code=order.order_code, biz_code=order.biz_code, account=order.account,
            settlement_price=money.yuan_number(order.settlement_price_fen),
        ))

    async def QueryOrder(self, request, context):
        call = current_call.get()
        order, callback_state = await self._run(self._svc.query_order, call.metadata, request.http_body.data)
        return pb.QueryOrderResponse(status=rules.SUCCESS, message="success",
                                     data=order_message(order, callback_state))

    async def QueryBalance(self, request, context):
        call = current_call.get()
        merchant_id, balance = await self._run(self._svc.balance, call.metadata, request.http_body.data)
        return pb.QueryBalanceResponse(status=rules.SUCCESS, message="success", data=pb.MerchantBalance(
            merchant_id=merchant_id, balance=money.yuan_number(balance)))


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, charges: MerchantChargeService) -> str:
    name = pb.DESCRIPTOR.services_by_name["OpenApiChargeService"].full_name
    openapi_charge_pb2_grpc.add_OpenApiChargeServiceServicer_to_server(OpenApiChargeServicer(charges, runner), server)
    envelopes.register(legacy.FAMILY_MERCHANT, openapi_envelope)
    return name


def background(openapi: OpenApi) -> list:
    """Started and stopped with the gRPC server: the status callback dispatcher."""
    return [openapi.dispatcher()] if openapi.dispatcher_enabled else []
