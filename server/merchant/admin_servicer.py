"""MerchantAdminService (gRPC only): the operators' merchant registry. Reads for every
operator role, changes for `admin` (operators/roles.py); each change is audited
(docs/console.md) without key material. Proto <-> MerchantRegistry, nothing else."""

from __future__ import annotations

from collections.abc import Callable

from vipay.openapi.v1 import merchant_admin_pb2 as pb
from vipay.openapi.v1 import merchant_admin_pb2_grpc

from server.merchant.merchants import IssuedKeys, MerchantRegistry
from server.merchant.views import MerchantBalanceEntryView
from server.operators.roles import Permission, require_permission
from server.platform import money
from server.platform.calls import BlockingRunner, current_call
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.errors import Violations
from server.platform.paging import keyset_from_token, keyset_token
from server.platform.timestamps import timestamp_message

REASON_MAX = 500


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX:
        v = Violations()
        v.add("reason", f"A reason is required (at most {REASON_MAX} characters).")
        v.raise_if_any()
    return reason


def _keys(keys: IssuedKeys) -> pb.IssuedKeys:
    return pb.IssuedKeys(rsa_private_key=keys.rsa_private_key or "", md5_secret=keys.md5_secret or "")


def merchant_message(m: dict) -> pb.MerchantInfo:
    return pb.MerchantInfo(
        merchant_id=m["merchantId"], name=m["name"], state=m["state"], balance_fen=m["balance_fen"],
        balance_display=money.number_text(m["balance_fen"]), business_ids=m["businessIds"],
        callback_url=m["callbackUrl"] or "", sign_types=m["signTypes"], order_count=m["orders"],
        products=[pb.MerchantProduct(product_code=p["productCode"], level=p["level"], months=p["months"],
                                     settlement_price_fen=p["settlement_price_fen"], state=p["state"])
                  for p in m["products"]])


def balance_entry_message(e: MerchantBalanceEntryView) -> pb.MerchantBalanceEntry:
    return pb.MerchantBalanceEntry(
        id=e.id, kind=e.kind, amount_fen=e.amount_fen, amount_display=money.number_text(e.amount_fen),
        balance_after_fen=e.balance_after_fen, balance_after_display=money.number_text(e.balance_after_fen),
        order_code=e.order_code or "", note=e.note or "", create_time=timestamp_message(e.created_at))


class MerchantAdminServicer(merchant_admin_pb2_grpc.MerchantAdminServiceServicer):
    def __init__(self, registry: MerchantRegistry, run: BlockingRunner, audited: Callable):
        self._registry = registry
        self._run = run
        self._audited = audited  # (actor, action, target, before, after, reason), its own transaction

    async def _merchant(self, merchant_id: str) -> dict | None:
        return next((m for m in await self._run(self._registry.list) if m["merchantId"] == merchant_id), None)

    async def _audit(self, actor, action: str, target: str, before, after, reason: str) -> None:
        await self._run(self._audited, actor, action, target, before, after, reason)

    async def ListMerchants(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        return pb.ListMerchantsResponse(merchants=[merchant_message(m) for m in await self._run(self._registry.list)])

    async def CreateMerchant(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        keys = await self._run(self._registry.create, request.merchant_id, request.name, [],
                               request.callback_url or None, True, request.md5)
        after = {"merchant_id": request.merchant_id, "name": request.name, "callback_url": request.callback_url,
                 "keys": ["SHA256-RSA"] + (["MD5"] if request.md5 else [])}
        await self._audit(actor, "merchant.create", f"merchant:{request.merchant_id}", None, after, reason)
        return pb.CreateMerchantResponse(keys=_keys(keys))

    async def RotateMerchantKeys(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        keys = await self._run(self._registry.rotate_keys, request.merchant_id, request.rsa, request.md5)
        rotated = [k for k, on in (("SHA256-RSA", request.rsa), ("MD5", request.md5)) if on]
        await self._audit(actor, "merchant.rotate_keys", f"merchant:{request.merchant_id}", None,
                          {"rotated": rotated}, reason)
        return pb.RotateMerchantKeysResponse(keys=_keys(keys))

    async def SetMerchantProduct(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        p = request.product
        before = await self._merchant(request.merchant_id)
        old = next((x for x in (before or {}).get("products", []) if x["productCode"] == p.product_code), None)
        await self._run(self._registry.set_product, request.merchant_id, p.product_code, p.level, p.months,
                        p.settlement_price_fen, p.state != "disabled")
        after = {"productCode": p.product_code, "level": p.level, "months": p.months,
                 "settlement_price_fen": p.settlement_price_fen, "state": p.state or "active"}
        await self._audit(actor, "merchant.set_product", f"merchant:{request.merchant_id}", old, after, reason)
        return pb.SetMerchantProductResponse()

    async def TopUpMerchant(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        balance = await self._run(self._registry.top_up, request.merchant_id, request.amount_fen, reason)
        await self._audit(actor, "merchant.top_up", f"merchant:{request.merchant_id}",
                          {"balance_fen": balance - request.amount_fen}, {"balance_fen": balance}, reason)
        return pb.TopUpMerchantResponse(balance_fen=balance)

    async def SetMerchantCallbackUrl(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        before = await self._merchant(request.merchant_id)
        await self._run(self._registry.set_callback_url, request.merchant_id, request.callback_url or None)
        await self._audit(actor, "merchant.set_callback_url", f"merchant:{request.merchant_id}",
                          {"callback_url": (before or {}).get("callbackUrl")}, {"callback_url": request.callback_url},
                          reason)
        return pb.SetMerchantCallbackUrlResponse()

    async def ListMerchantCallbacks(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        if request.page_size < 0:
            v = Violations()
            v.add("page_size", "The page_size must not be negative.")
            v.raise_if_any()
        rows = await self._run(self._registry.callbacks, request.state or None, min(request.page_size or 50, 200))
        return pb.ListMerchantCallbacksResponse(callbacks=[
            pb.MerchantCallback(id=c["id"], order_code=c["orderCode"], url=c["url"], state=c["state"],
                                attempts=c["attempts"], last_error=c["last_error"] or "",
                                next_attempt_time=c["next_attempt_at"]) for c in rows])

    async def ResendMerchantCallback(self, request, context):
        actor = require_permission(current_call.get().principal, Permission.MERCHANTS)
        reason = _reason(request.reason)
        before = next((c for c in await self._run(self._registry.callbacks, None, 1000) if c["id"] == request.callback_id),
                      None)
        await self._run(self._registry.resend, request.callback_id)
        await self._audit(actor, "merchant.resend_callback", f"callback:{request.callback_id}",
                          {"state": before["state"], "attempts": before["attempts"]} if before else None,
                          {"state": "pending"}, reason)
        return pb.ResendMerchantCallbackResponse()


    async def ListMerchantBalanceEntries(self, request, context):
        require_permission(current_call.get().principal, Permission.READ)
        v = Violations()
        if not request.merchant_id:
            v.add("merchant_id", "The merchant_id is required.")
        if request.page_size < 0:
            v.add("page_size", "The page_size must not be negative.")
        v.raise_if_any()
        page = await self._run(self._registry.balance_entries, request.merchant_id,
                               keyset_from_token(request.page_token), min(request.page_size or 50, 200))
        return pb.ListMerchantBalanceEntriesResponse(
            entries=[balance_entry_message(e) for e in page.entries], total_size=page.total,
            balance_fen=page.balance_fen, balance_display=money.number_text(page.balance_fen),
            next_page_token=keyset_token(page.entries[-1].id) if page.more else "")


def register(server, runner: BlockingRunner, envelopes: EnvelopeRegistry, *, registry: MerchantRegistry,
             audited: Callable) -> str:
    merchant_admin_pb2_grpc.add_MerchantAdminServiceServicer_to_server(
        MerchantAdminServicer(registry, runner, audited), server)
    return pb.DESCRIPTOR.services_by_name["MerchantAdminService"].full_name
