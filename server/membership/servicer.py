"""MembershipService: proto <-> service layer, nothing else."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from datetime import datetime
from functools import partial

from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2
from vipay.legacy.v1 import options_pb2 as legacy
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.membership.rules import LEVELS, Catalog, LevelConfig, PriceSetting
from server.membership.ledger import MembershipView
from server.membership.service import MembershipService
from server.membership.thinksns_envelope import thinksns_envelope
from server.membership.views import StoredVipInfo, VipOrderView
from server.payments.channels import PayData
from server.platform import money
from server.membership.limits import CHECK_IAP, VIP_ORDER
from server.operators.roles import Permission, require_permission
from server.platform.auth import require_user
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.rate_limits import RateLimiter
from server.platform.errors import Violations
from server.platform.paging import keyset_token, position_from_token
from server.platform.timestamps import timestamp_message

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def fmt_time(value: datetime) -> str:
    """TIME_FORMAT. A naive time (as the database hands them back) by isoformat: the same
    text at a third of strftime's cost, which was a fifth of a history page's order."""
    return value.isoformat(" ", "seconds") if value.tzinfo is None else value.strftime(TIME_FORMAT)


def nullable_time(value: datetime | None) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=fmt_time(value)) if value is not None else NULL


def vip_info_message(info: Mapping) -> pb.VipInfo:
    """One message per stored vip_info text (views.StoredVipInfo is hashable; pb copies
    it into each order), else built."""
    return _stored_vip_info_message(info) if isinstance(info, StoredVipInfo) else _vip_info_message(info)


def _vip_info_message(info: Mapping) -> pb.VipInfo:
    message = pb.VipInfo(
        level=info["level"],
        name=info["name"],
        duration=info["duration"],
        price=info["price"],
        timezone=info.get("timezone", ""),
    )
    if info.get("iap"):
        message.iap = info["iap"]
        message.iap_price = message.ipa_price = money.yuan_number(info["iap_price_fen"])
    return message


_stored_vip_info_message = functools.lru_cache(maxsize=1024)(_vip_info_message)


def order_message(row: VipOrderView, refunded_fen: int = 0) -> pb.VipOrder:
    refund_status = 0 if not refunded_fen else (2 if refunded_fen >= row.pay_amount else 1)
    return pb.VipOrder(
        refund_status=refund_status,
        refunded_amount=refunded_fen,
        id=row.id,
        trade_no=row.trade_no,
        user_id=row.user_id,
        total_amount=row.total_amount,
        quantity=row.quantity,
        pay_method=row.pay_method,
        pay_amount=row.pay_amount,
        pay_status=row.pay_status,
        level=row.level,
        duration=row.duration,
        vip_info=vip_info_message(row.vip_info),
        paid_at=nullable_time(row.paid_at),
        user_deleted_at=nullable_time(row.user_deleted_at),
        platform_deleted_at=nullable_time(row.platform_deleted_at),
        created_at=fmt_time(row.created_at),
        updated_at=fmt_time(row.updated_at),
    )


# A history page's orders: the message is a function of the row (all its columns and the
# fen refunded), so a page read again, the most common signed-in read, reuses them; the page
# copies each into its answer. Building them was a fifth of the page's GIL time (py-spy).
_page_order_message = functools.lru_cache(maxsize=4096)(order_message)


def page_order_message(row: VipOrderView, refunded_fen: int) -> pb.VipOrder:
    """A history page's order, built once per distinct row (read-only: copied into the page)."""
    if isinstance(row.vip_info, StoredVipInfo):  # hashable: the whole row is a key
        return _page_order_message(row, refunded_fen)
    return order_message(row, refunded_fen)


def created_message(row: VipOrderView, pay_data: PayData | None) -> pb.CreateVipOrderResponse:
    message = pb.CreateVipOrderResponse(
        pay_method=row.pay_method,
        quantity=row.quantity,
        duration=str(row.duration),
        level=row.level,
        vip_info=vip_info_message(row.vip_info),
        user_id=row.user_id,
        pay_amount=row.pay_amount,
        total_amount=row.total_amount,
        pay_status=row.pay_status,
        updated_at=fmt_time(row.updated_at),
        created_at=fmt_time(row.created_at),
        id=row.id,
        trade_no=row.trade_no,
    )
    if pay_data is not None and pay_data.order_string is not None:
        message.pay_data_alipay = pay_data.order_string
        message.pay_data.string_value = pay_data.order_string
    elif pay_data is not None and pay_data.client_params is not None:
        message.pay_data_wechat.CopyFrom(wechat_pay_data(pay_data.client_params))
        message.pay_data.struct_value.update(pay_data.client_params)
    return message


# JSAPI parameter names -> WechatPayData fields (App parameters map one to one).
JSAPI_FIELDS = {"appId": "jsapi_app_id", "timeStamp": "jsapi_time_stamp", "nonceStr": "jsapi_nonce_str",
                "paySign": "jsapi_pay_sign", "signType": "jsapi_sign_type"}


def wechat_pay_data(params: dict) -> pb.WechatPayData:
    return pb.WechatPayData(**{JSAPI_FIELDS.get(k, k): v for k, v in params.items()})


def catalog_levels_message(catalog: Catalog) -> pb.VipLevels:
    def setting(s: PriceSetting) -> pb.VipSetting:
        message = pb.VipSetting(
            duration=s.duration,
            original=money.yuan_number(s.original_fen),
            iap=struct_pb2.Value(string_value=s.iap) if s.iap else NULL,
            iap_price=money.yuan_number(s.iap_price_fen),
            price=money.yuan_number(s.price_fen),
            enable=s.enable,
        )
        if s.currency is not None:
            message.currency = s.currency
        return message

    def level(cfg: LevelConfig) -> pb.VipLevelConfig:
        return pb.VipLevelConfig(enable=cfg.enable, level=cfg.level, name=cfg.name,
                                 setting=[setting(s) for s in cfg.settings])

    return pb.VipLevels(**{name: level(catalog.levels[name]) for name in LEVELS})


def configs_json(catalog: Catalog) -> dict:
    """The catalog as GET /api/v2/vip/configs shows it (proto JSON, every field)."""
    message = pb.GetVipConfigsResponse(switch=catalog.switch, exchange=catalog.exchange,
                                       config=catalog_levels_message(catalog))
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def catalog_from_message(request: pb.UpdateVipCatalogRequest, current: Catalog) -> Catalog:
    v = Violations()
    levels = {}
    for name in LEVELS:
        cfg = getattr(request.config, name)
        settings = []
        for i, s in enumerate(cfg.setting):
            try:
                fen = {k: money.parse_yuan(repr(getattr(s, k))) for k in ("original", "price", "iap_price")}
            except ValueError:
                v.add(f"config.{name}.setting[{i}]", "Prices must be yuan with at most two decimals.")
                continue
            iap = s.iap.string_value if s.iap.WhichOneof("kind") == "string_value" else None
            settings.append(PriceSetting(s.duration, fen["original"], fen["price"], fen["iap_price"], s.enable,
                                         iap or None, s.currency if s.HasField("currency") else None))
        if not settings:
            v.add(f"config.{name}.setting", "Every level needs at least one setting.")
        levels[name] = LevelConfig(name, cfg.name or name, cfg.enable, tuple(settings))
    if request.exchange < 1:
        v.add("exchange", "The exchange must be at least 1.")
    v.raise_if_any()
    return Catalog(request.switch, request.exchange, levels, request.protocol_html or current.protocol_html)


def grpc_status_message(view: MembershipView) -> pb.GetMembershipStatusResponse:
    return pb.GetMembershipStatusResponse(
        user_id=view.user_id,
        is_vip=bool(view.current_level),
        current_level=view.current_level,
        levels=[
            pb.LevelTerm(level=level, expire_time=timestamp_message(view.levels[level]),
                         active=view.levels[level] > view.now)
            for level in LEVELS
            if level in view.levels
        ],
    )


def status_message(view: MembershipView) -> pb.MembershipStatus:
    current = view.current_level
    return pb.MembershipStatus(
        user_id=view.user_id,
        is_vip=bool(current),
        current_level=current,
        levels=[
            pb.LevelMembership(level=level, expires_at=fmt_time(view.levels[level]), active=view.levels[level] > view.now)
            for level in LEVELS
            if level in view.levels
        ],
    )


class MembershipServicer(membership_pb2_grpc.MembershipServiceServicer):
    def __init__(self, service: MembershipService, run: BlockingRunner, save_catalog,
                 refunded: Callable[[list[int]], dict[int, int]] = lambda ids: {}, *, abuse: RateLimiter,
                 audit: Callable | None = None):
        self._svc = service
        self._run = run
        self._read = run.read  # hot reads: their own threads (BlockingRunner)
        self._save_catalog = save_catalog
        self._refunded = refunded  # order id -> fen refunded (docs/refunds.md)
        self._configs: tuple[Catalog | None, pb.GetVipConfigsResponse | None] = (None, None)
        self._abuse = abuse  # per-user / per-IP limits (docs/recharge.md: Limits)
        # audit(uow, actor, action, target, before, after, reason): an audit entry in the
        # catalog's own transaction (operators/service.py, docs/console.md).
        self._audit = audit

    async def _order(self, row: VipOrderView) -> pb.VipOrder:
        refunded = await self._read(self._refunded, [row.id])
        return order_message(row, refunded.get(row.id, 0))

    async def _catalog(self) -> Catalog:
        # Fresh in memory: answer on the loop; otherwise read the version off it.
        return self._svc.catalog.fresh() or await self._run(self._svc.catalog.get)

    async def GetBootstrappers(self, request, context):
        catalog = await self._catalog()
        return pb.GetBootstrappersResponse(vip_switch=catalog.switch)

    async def GetVipConfigs(self, request, context):
        catalog = await self._catalog()
        built_for, message = self._configs
        if built_for is not catalog:  # one message per catalog version, never mutated after
            message = pb.GetVipConfigsResponse(switch=catalog.switch, exchange=catalog.exchange,
                                               config=catalog_levels_message(catalog))
            self._configs = (catalog, message)
        return message

    async def CreateVipOrder(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        created = await self._run(
            self._svc.orders.create_order,
            user_id,
            level=request.level,
            duration=request.duration,
            quantity=request.quantity,
            pay_method=request.pay_method,
            timezone_name=request.timezone,
            request_id=request.request_id,
            openid=request.openid,
            client_ip=call.client_ip,
            attempt=self._abuse.attempt(VIP_ORDER, user_id, call.client_ip),
        )
        return created_message(created.order, created.pay_data)

    async def ListVipOrders(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        offset, before_id = position_from_token(request.page_token) if request.page_token else (request.offset, None)
        limit = request.page_size or request.limit or 15
        rows, more = await self._read(
            self._svc.orders.history_page, user_id, offset=offset, limit=limit, start=request.s, end=request.d,
            timezone_name=request.timezone or "Asia/Shanghai", before_id=before_id,
        )
        return pb.ListVipOrdersResponse(
            vip_orders=[page_order_message(order, refunded) for order, refunded in rows],
            next_page_token=keyset_token(rows[-1][0].id) if more else "",
        )

    async def GetVipOrder(self, request, context):
        user_id = require_user(current_call.get().principal)
        row, refunded = await self._read(self._svc.orders.get_order, user_id, request.order)
        return order_message(row, refunded)

    async def DeleteVipOrder(self, request, context):
        call = current_call.get()
        await self._run(self._svc.orders.delete_order, require_user(call.principal), request.order)
        return pb.DeleteVipOrderResponse()

    async def ExchangeVip(self, request, context):
        call = current_call.get()
        days, view = await self._run(self._svc.ledger.exchange, require_user(call.principal), request.level)
        return pb.ExchangeVipResponse(converted_days=days, membership=status_message(view))

    async def CheckIapResult(self, request, context):
        call = current_call.get()
        user_id = require_user(call.principal)
        await self._run(self._abuse.limit, CHECK_IAP, user_id, call.client_ip)
        order = await self._run(self._svc.iap.check_iap, user_id, request.order_id, request.receipt)
        return await self._order(order)

    async def GetVipProtocol(self, request, context):
        catalog = await self._catalog()
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=catalog.protocol_html.encode())

    async def CheckVipOrder(self, request, context):
        user_id = require_user(current_call.get().principal)
        return pb.CheckVipOrderResponse(status=await self._read(self._svc.orders.is_paid, user_id, request.order_id))

    async def GetMyMembership(self, request, context):
        user_id = require_user(current_call.get().principal)
        return status_message(await self._run(self._svc.ledger.status, user_id))

    async def HandlePaymentNotification(self, request, context):
        call = current_call.get()
        channel, _, suffix = request.callback.rpartition("-")
        if suffix != "callback" or not channel:
            channel = ""  # unknown channel: the service answers not found
        reply = await self._run(
            self._svc.orders.handle_notification, request.order, channel, request.http_body.data,
            request.http_body.content_type, call.metadata,
        )
        call.set_http_status(reply.status)
        return httpbody_pb2.HttpBody(content_type=reply.content_type, data=reply.body)

    async def HandleAppStoreNotification(self, request, context):
        status = await self._run(self._svc.iap.handle_appstore_notification, request.http_body.data)
        current_call.get().set_http_status(status)
        return httpbody_pb2.HttpBody(content_type="text/plain", data=b"")

    async def GetMembershipStatus(self, request, context):
        require_permission(current_call.get().principal, Permission.READ, service=True)
        return grpc_status_message(await self._run(self._svc.ledger.status, request.user_id))

    async def UpdateVipCatalog(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.CATALOG)
        current = await self._run(self._svc.catalog.get)
        catalog = catalog_from_message(request, current)
        audit = None
        if self._audit is not None:
            before, after = configs_json(current), configs_json(catalog)
            audit = partial(self._audit, actor=actor, action="vip_catalog.update", target="vip_catalog",
                            before=before, after=after, reason=request.reason)
        version = await self._run(self._save_catalog, catalog, audit)
        self._svc.catalog.invalidate()
        return pb.UpdateVipCatalogResponse(version=version)


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, memberships: MembershipService,
             save_catalog: Callable[[Catalog], int], refunded: Callable[[list[int]], dict[int, int]],
             limiter: RateLimiter, audit: Callable | None = None) -> str:
    """`refunded`: order id -> fen refunded (the refund service); `limiter` counts
    VIP_ORDER and CHECK_IAP attempts; `audit` records catalog changes (operators' record)."""
    name = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name
    membership_pb2_grpc.add_MembershipServiceServicer_to_server(
        MembershipServicer(memberships, runner, save_catalog, refunded, abuse=limiter, audit=audit), server
    )
    envelopes.register(legacy.FAMILY_THINKSNS, thinksns_envelope, default=True)
    return name
