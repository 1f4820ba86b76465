"""The public bodies the recharge catalog renders as — 000 GET /charge/index, 002 GET
/api/recharge, 003 the recharge center — built here once: the servicer serves them and the
console previews a draft catalog through the same functions (`preview`), so a preview is
what the path serves after saving."""

from __future__ import annotations

import json

from google.protobuf import json_format, struct_pb2
from vipay.recharge.v1 import recharge_pb2 as pb

from server.platform import money
from server.recharge.rules import RechargeCatalog

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
PREVIEW_CLIENT = "H5"  # 003's `client` when a preview names none (the documents' example)


def nullable(value) -> struct_pb2.Value:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, (int, float)):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=str(value))


def pay_modes(catalog: RechargeCatalog) -> list[pb.PayMode]:
    modes = []
    for m in catalog.pay_modes:
        t = catalog.pay_type(m.pay_type_id)
        if m.enabled and t is not None:
            modes.append(pb.PayMode(id=m.id, code=m.code, name=m.name,
                                    pay_type=pb.PayType(id=t.id, code=t.code, name=t.name, icon=t.icon)))
    return modes


def charge_index(catalog: RechargeCatalog) -> pb.GetChargeIndexResponse:
    """000: pay types and the packages not deleted."""
    return pb.GetChargeIndexResponse(c=0, m=NULL, d=pb.ChargeIndex(
        pay_types=[pb.ChargePayType(type_name=t.type_name, comment=t.comment, thumbnail=nullable(t.thumbnail))
                   for t in catalog.charge_pay_types],
        charge_list=[pb.ChargePackage(
            id=p.id, amount=money.yuan_number(p.amount_fen), bg_url=nullable(p.bg_url),
            comment=nullable(p.comment), giving_vip=p.giving_vip, time_type=nullable(p.time_type),
            time_len=nullable(p.time_len), add_time=nullable(p.add_time), sort_order=nullable(p.sort_order),
            deleted=False,
        ) for p in catalog.packages if not p.deleted],
    ))


def recharge_amounts(catalog: RechargeCatalog) -> pb.GetRechargeResponse:
    """002: the amounts with their pay modes; the caller adds `balance` when signed in."""
    modes = pay_modes(catalog)
    return pb.GetRechargeResponse(message="ok", success=True, code=0, data=pb.RechargeAmounts(recharge_amount=[
        pb.RechargeAmount(id=p.id, title=p.name, price=money.yuan_string_trimmed(p.money_fen), pay_modes=modes)
        for p in catalog.plans
    ]))


def recharge_center(catalog: RechargeCatalog, client: str) -> pb.GetRechargeCenterResponse:
    """003: settings, plans and the client's payment methods; the caller adds `personal`."""
    s = catalog.setting
    return pb.GetRechargeCenterResponse(status=200, message="success", data=pb.RechargeCenter(
        setting=pb.RechargeSetting(is_entrance=int(s.is_entrance), is_custom=int(s.is_custom),
                                   lowest_money=money.yuan_number(s.lowest_money_fen),
                                   is_match_plan=int(s.is_match_plan), describe=s.describe),
        plan_list=[pb.RechargePlan(plan_id=p.id, plan_name=p.name, money=money.yuan_string_2dp(p.money_fen),
                                   gift_money=money.yuan_string_2dp(p.gift_fen)) for p in catalog.plans],
        payment_methods=[pb.PaymentMethod(key=m.key, method=m.method, is_must_template=m.is_must_template,
                                          template_id=m.template_id, is_enable=m.is_enable,
                                          is_default=m.is_default, client=m.client)
                         for m in catalog.methods_for(client)],
    ))


def _integral(value):
    """Proto3 JSON prints a whole double without a fraction (54, not 54.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _in_field_order(descriptor, body: dict) -> dict:
    """Keys in the message's field order, as Envoy prints them (Python's printer puts the
    fields holding their default after the others)."""
    out = {}
    for field in descriptor.fields:
        if field.json_name not in body:
            continue
        value = body[field.json_name]
        kind = field.message_type
        if kind is not None and not kind.full_name.startswith("google.protobuf."):
            value = [_in_field_order(kind, v) for v in value] if isinstance(value, list) else \
                _in_field_order(kind, value)
        out[field.json_name] = value
    return out


def public_json(message) -> str:
    """A response as the gateway's transcoder prints it (gateway/envoy.yaml print_options:
    every field without presence, the documents' json_names, field order), compact."""
    body = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    body = _in_field_order(message.DESCRIPTOR, _integral(body))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def preview(catalog: RechargeCatalog, client: str = "") -> tuple[str, str, str]:
    """(000, 002 anonymous, 003 without `personal`) JSON of a catalog, saved or not."""
    return (public_json(charge_index(catalog)), public_json(recharge_amounts(catalog)),
            public_json(recharge_center(catalog, client or PREVIEW_CLIENT)))
