"""The console's Users and Recharge reads (issue 20 §1, §2, §4): the membership grant
chain from the membership ledger, and the preview of the recharge paths' exact public
JSON for a draft catalog, compared with what those paths serve once it is saved."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import grpc
import pytest
from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc

from server.recharge.rules import demo_catalog as demo_recharge_catalog
from tests.conftest import auth
from tests.payments.test_refunds_sandbox import paid_vip_order
from tests.recharge.test_recharge_http import center


@pytest.fixture
def console(channel):
    return console_pb2_grpc.ConsoleServiceStub(channel)


def at(ts) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def refused(call, request, cred) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as exc:
        call(request, metadata=cred)
    return exc.value.code()


def test_grant_chain_shows_the_order_and_the_refund_take_back(app, gateway, token, console):
    order = paid_vip_order(app, gateway, token, user=51)  # middle, 3 months
    refund = app.refunds.refund(order["trade_no"], amount_fen=1800, reason="a third back")
    support = auth(token(1, "support"))
    answer = console.ListMembershipGrants(pb.ListMembershipGrantsRequest(user_id=51), metadata=support)
    held = app.memberships.ledger.status(51).levels["middle"]
    assert answer.current_level == "middle" and answer.total_size == 2
    assert [(t.level, t.active) for t in answer.terms] == [("middle", True)]
    assert at(answer.terms[0].expire_time) == held
    taken, granted = answer.grants  # newest first
    assert (granted.source, granted.source_ref, granted.level) == ("vip_order", str(order["id"]), "middle")
    assert not granted.HasField("previous_expire_time")  # never held before
    assert 89 * 86400 <= granted.added_seconds <= 92 * 86400  # three months
    assert (taken.source, taken.source_ref) == ("order_refund", refund.refund_no)
    assert abs(taken.added_seconds + granted.added_seconds / 3) < 120  # a third taken back
    assert taken.previous_expire_time == granted.expire_time
    assert at(taken.expire_time) == held
    # the chain adds up to the level's expiry
    assert abs(at(granted.create_time).timestamp() + granted.added_seconds + taken.added_seconds
               - held.timestamp()) < 2

    first = console.ListMembershipGrants(pb.ListMembershipGrantsRequest(user_id=51, page_size=1), metadata=support)
    assert [g.id for g in first.grants] == [taken.id] and first.next_page_token
    rest = console.ListMembershipGrants(pb.ListMembershipGrantsRequest(user_id=51, page_size=1,
                                                                       page_token=first.next_page_token),
                                        metadata=support)
    assert [g.id for g in rest.grants] == [granted.id] and not rest.next_page_token

    for bad in (pb.ListMembershipGrantsRequest(user_id=0), pb.ListMembershipGrantsRequest(user_id=51, page_size=-1),
                pb.ListMembershipGrantsRequest(user_id=51, page_token="bm9wZQ"),
                pb.ListMembershipGrantsRequest(user_id=51, page_token="bzoy")):  # an offset token: not this list's
        assert refused(console.ListMembershipGrants, bad, support) == grpc.StatusCode.INVALID_ARGUMENT
    for role in ("finance", "admin"):
        assert console.ListMembershipGrants(pb.ListMembershipGrantsRequest(user_id=51),
                                            metadata=auth(token(1, role))).total_size == 2
    assert refused(console.ListMembershipGrants, pb.ListMembershipGrantsRequest(user_id=51),
                   auth(token(51))) == grpc.StatusCode.PERMISSION_DENIED  # a user is no operator
    empty = console.ListMembershipGrants(pb.ListMembershipGrantsRequest(user_id=52), metadata=support)
    assert (empty.current_level, list(empty.terms), list(empty.grants)) == ("", [], [])


def served(gateway, token):
    with gateway.client() as c:
        charge_index, recharge = c.get("/charge/index").text, c.get("/api/recharge").text
    personal_center = json.loads(center(gateway, token(53)).text)
    del personal_center["data"]["personal"]  # the caller's own, not the catalog's
    return charge_index, recharge, personal_center


def test_preview_is_what_the_public_paths_serve_after_saving(app, gateway, token, console):
    app.recharges.catalog.save(demo_recharge_catalog())
    support = auth(token(1, "support"))
    document = json.loads(console.GetRechargeCatalog(pb.GetRechargeCatalogRequest(), metadata=support).document_json)
    plan = next(p for p in document["plans"] if p["id"] == 10001)
    plan["money_fen"], plan["gift_fen"] = 51230, 1000
    document["packages"][0]["amount_fen"] = 2990
    document["setting"]["describe"] = "充值说明 <新>"
    draft = json.dumps(document, ensure_ascii=False)
    before = served(gateway, token)

    preview = console.PreviewRechargeCatalog(pb.PreviewRechargeCatalogRequest(document_json=draft), metadata=support)
    assert [p["price"] for p in json.loads(preview.recharge_json)["data"]["rechargeAmount"] if p["id"] == 10001] == \
        ["512.3"]  # 002's trimmed yuan
    assert served(gateway, token) == before  # a preview saves nothing

    console.UpdateRechargeCatalog(pb.UpdateRechargeCatalogRequest(document_json=draft, reason="new prices"),
                                  metadata=auth(token(1, "admin")))
    charge_index, recharge, center_body = served(gateway, token)
    assert (preview.charge_index_json, preview.recharge_json) == (charge_index, recharge)  # byte for byte
    # 003 without the caller's `personal`: the same keys in the same order, the same values
    assert preview.recharge_center_json == json.dumps(center_body, ensure_ascii=False, separators=(",", ":"))
    assert center_body["data"]["setting"]["describe"] == "充值说明 <新>"
    assert [p["money"] for p in center_body["data"]["planList"] if p["plan_id"] == 10001] == ["512.30"]
    assert json.loads(charge_index)["d"]["chargeList"][0]["amount"] == 29.9

    app_methods = console.PreviewRechargeCatalog(pb.PreviewRechargeCatalogRequest(document_json=draft, client="APP"),
                                                 metadata=support)
    assert json.loads(app_methods.recharge_center_json)["data"]["paymentMethods"] == []

    bad = json.loads(draft)
    bad["plans"][0]["money_fen"] = -5
    for broken in (json.dumps(bad), "[1]", "{", ""):
        assert refused(console.PreviewRechargeCatalog, pb.PreviewRechargeCatalogRequest(document_json=broken),
                       support) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(console.PreviewRechargeCatalog, pb.PreviewRechargeCatalogRequest(document_json=draft),
                   auth(token(53))) == grpc.StatusCode.PERMISSION_DENIED

