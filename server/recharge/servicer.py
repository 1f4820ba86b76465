"""RechargeService and WalletService: proto <-> service layer, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import json
from urllib.parse import urlencode

from google.api import httpbody_pb2
from vipay.legacy.v1 import options_pb2 as legacy
from vipay.recharge.v1 import recharge_pb2 as pb
from vipay.recharge.v1 import recharge_pb2_grpc

from server.payments.channels import PayData
from server.platform import money
from server.platform.auth import require_user
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.errors import DomainError, Kind, Violations
from server.platform.notification_envelope import notification_envelope
from server.platform.rate_limits import RateLimiter
from server.recharge import catalog_bodies as bodies
from server.recharge.captchas import CAPTCHA, CHARGE_PAY
from server.recharge.catalog_bodies import NULL, nullable
from server.recharge.charge_envelope import charge_envelope
from server.recharge.recharge_envelope import recharge_envelope
from server.recharge.yoshop_envelope import yoshop_envelope
from server.recharge.profiles import DEFAULTS as PROFILE_DEFAULTS
from server.recharge.profiles import UserProfiles
from server.recharge.rules import Refusal
from server.recharge.service import RechargeService, local_text
from server.recharge.views import RechargeOrderView
from server.recharge.wallet import StoreTotals

def call_pay_info(pay: PayData) -> str:
    """000: the Alipay order string, or WeChat Pay client parameters as JSON text."""
    if pay.order_string is not None:
        return pay.order_string
    return json.dumps(pay.client_params or {}, ensure_ascii=False, separators=(",", ":"))


def payment_request(pay: PayData, order_number: str) -> pb.PaymentRequest:
    """002 {url, method, body}: a form to post to the provider's gateway; an app
    SDK string (method "sdk", no url); or WeChat JSAPI parameters (method "jsapi")."""
    if pay.order_string is not None:
        if pay.gateway_url:
            body = pay.order_string
            if body.startswith(pay.gateway_url + "?"):
                body = body[len(pay.gateway_url) + 1:]
            return pb.PaymentRequest(url=pay.gateway_url, method="post", body=body, order_number=order_number)
        return pb.PaymentRequest(url="", method="sdk", body=pay.order_string, order_number=order_number)
    params = {k: str(v) for k, v in (pay.client_params or {}).items()}
    return pb.PaymentRequest(url="", method="jsapi", body=urlencode(params), order_number=order_number)


def record(row: RechargeOrderView, refunded_fen: int = 0) -> pb.RechargeRecord:
    return pb.RechargeRecord(id=row.id, order_number=row.order_number, amount=money.yuan_string_trimmed(row.amount),
                             state=row.state, created_date=local_text(row.created_at), snapshot=row.snapshot,
                             refunded_amount=money.yuan_string_trimmed(refunded_fen))


def masked_mobile(mobile: str) -> str:
    """003 shows 130****0000: the middle four digits of a mainland number hidden."""
    if len(mobile) == 11 and mobile.isdigit():
        return f"{mobile[:3]}****{mobile[7:]}"
    return mobile


def personal(user_id: int, profile, totals: StoreTotals, platform_header: str) -> pb.Personal:
    """003 `personal`: the store wallet's figures from the ledger, the rest from the
    user's stored profile (defaults when there is none; `platform` then is the header's)."""
    p = {name: getattr(profile, name) for name in PROFILE_DEFAULTS} if profile else dict(PROFILE_DEFAULTS)
    return pb.Personal(
        user_id=user_id, mobile=masked_mobile(p["mobile"]), nick_name=p["nick_name"], avatar_id=p["avatar_id"],
        gender=p["gender"], address_id=p["address_id"], balance=money.yuan_string_2dp(totals.balance),
        points=p["points"], pay_money=money.yuan_string_2dp(totals.paid),
        expend_money=money.yuan_string_2dp(totals.spent), grade_id=p["grade_id"],
        platform=p["platform"] or platform_header, last_login_time=p["last_login_time"],
    )


def store_id_from(metadata: dict[str, str]) -> int:
    text = metadata.get("storeid", "").strip()
    # Store ids are positive BIGINTs: a larger number overflowed the database (a 500 before).
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:  # "²".isdigit() is True
        raise DomainError(Refusal.STORE_REQUIRED, "The storeId header is required.", Kind.INVALID,
                          metadata={"header": "storeId"})
    return int(text)


class RechargeServicer(recharge_pb2_grpc.RechargeServiceServicer):
    def __init__(self, service: RechargeService, profiles: UserProfiles, run: BlockingRunner,
                 refunded: Callable[[list[int]], dict[int, int]] = lambda ids: {}, *, limiter: RateLimiter):
        self._svc = service
        self._limiter = limiter  # counts CHARGE_PAY and CAPTCHA attempts (docs/recharge.md: Limits)
        self._profiles = profiles
        self._run = run
        self._read = run.read  # hot reads: their own threads (BlockingRunner)
        self._refunded = refunded  # order id -> fen refunded (docs/refunds.md)

    # ---- 000 ----------------------------------------------------------------

    async def GetChargeIndex(self, request, context):
        return bodies.charge_index(await self._run(self._svc.catalog.get))

    async def CreateChargePayment(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        created = await self._run(self._svc.order_package, user_id, package_id=request.id, pay_type=request.pay_type,
                                  attempt=self._limiter.attempt(CHARGE_PAY, user_id, call.client_ip))
        return pb.CreateChargePaymentResponse(c=0, m=NULL, d=pb.ChargePayment(
            pay_order_id=nullable(created.order.order_number), out_pay_order_id=NULL,
            call_pay_info=call_pay_info(created.pay_data), pay_callback_info=NULL,
        ))

    # ---- 002 ----------------------------------------------------------------

    async def GetRecharge(self, request, context):
        principal = current_call.get().principal
        answer = bodies.recharge_amounts(await self._run(self._svc.catalog.get))
        if principal is not None:  # absent, not empty, for anonymous callers (the document's rule)
            answer.data.balance = money.yuan_string_trimmed(await self._run(self._svc.wallet.balance,
                                                                            principal.user_id))
        return answer

    async def CreateRechargeOrder(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        created = await self._run(
            self._svc.order_recharge, user_id, plan_id=request.id, price=request.price,
            pay_mode_id=request.pay_mode_id, goods_id=request.goods_id if request.HasField("goods_id") else None,
            verify_code=request.verify_code, client_ip=call.client_ip, openid=request.openid,
        )
        return pb.CreateRechargeOrderResponse(message="ok", success=True, code=0,
                                              data=payment_request(created.pay_data, created.order.order_number))

    async def GetRechargeHistory(self, request, context):
        user_id = require_user(current_call.get().principal)
        total, rows = await self._read(
            self._svc.history, user_id, page=request.page or 1, rows=request.rows or 10,
            start=request.start_date, end=request.end_date, state=request.order_state,
        )
        refunded = await self._read(self._refunded, [r.id for r in rows])
        return pb.GetRechargeHistoryResponse(message="ok", success=True, code=0, data=pb.RechargeHistory(
            total=total, rows=[record(r, refunded.get(r.id, 0)) for r in rows]))

    async def GetRechargeCaptcha(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        await self._run(self._limiter.limit, CAPTCHA, user_id, call.client_ip)
        png = await self._run(self._svc.captchas.issue, user_id)
        return httpbody_pb2.HttpBody(content_type="image/png", data=png)

    # ---- 003 ----------------------------------------------------------------

    async def GetRechargeCenter(self, request, context):
        call = current_call.get()
        store_id = store_id_from(call.metadata)
        user_id = require_user(call.principal)
        if not request.client:
            v = Violations()
            v.add("client", "The client parameter is required.")
            v.raise_if_any()
        catalog = await self._run(self._svc.catalog.get)
        totals = await self._run(self._svc.wallet.store_totals, user_id, store_id)
        profile = await self._run(self._profiles.get, user_id, store_id)
        answer = bodies.recharge_center(catalog, request.client)
        answer.data.personal.CopyFrom(personal(user_id, profile, totals, call.metadata.get("platform", "")))
        return answer

    # ---- notifications ----------------------------------------------------

    async def HandleRechargeNotification(self, request, context):
        call = current_call.get()
        channel, _, suffix = request.callback.rpartition("-")
        if suffix != "callback" or not channel:
            channel = ""
        reply = await self._run(self._svc.handle_notification, request.order, channel, request.http_body.data,
                                request.http_body.content_type, call.metadata)
        call.set_http_status(reply.status)
        return httpbody_pb2.HttpBody(content_type=reply.content_type, data=reply.body)


# Each RPC declares its family (protos/vipay/recharge/v1/recharge.proto); these render them.
FAMILIES = {
    legacy.FAMILY_CHARGE: charge_envelope,
    legacy.FAMILY_RECHARGE: recharge_envelope,
    legacy.FAMILY_YOSHOP: yoshop_envelope,
    legacy.FAMILY_NOTIFICATION: notification_envelope,
}


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, recharges: RechargeService,
             profiles: UserProfiles, refunded: Callable[[list[int]], dict[int, int]], limiter: RateLimiter) -> str:
    """`refunded`: order id -> fen refunded (the refund service)."""
    name = pb.DESCRIPTOR.services_by_name["RechargeService"].full_name
    servicer = RechargeServicer(recharges, profiles, runner, refunded, limiter=limiter)
    recharge_pb2_grpc.add_RechargeServiceServicer_to_server(servicer, server)
    for family, envelope in FAMILIES.items():
        envelopes.register(family, envelope)
    return name
