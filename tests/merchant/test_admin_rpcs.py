"""MerchantAdminService: the operators' merchant registry over gRPC (docs/console.md):
reads for every operator role, changes for admin only, each change audited without
key material; a resend reaches the merchant again."""

from __future__ import annotations

import json

import grpc
import pytest
from vipay.openapi.v1 import merchant_admin_pb2 as pb
from vipay.openapi.v1 import merchant_admin_pb2_grpc
from vipay.operators.v1 import operators_pb2 as opb
from vipay.operators.v1 import operators_pb2_grpc

from tests.conftest import auth
from tests.merchant.conftest import ACCOUNT


@pytest.fixture
def admin(channel):
    return merchant_admin_pb2_grpc.MerchantAdminServiceStub(channel)


def audit(channel, token, target: str) -> list:
    stub = operators_pb2_grpc.OperatorServiceStub(channel)
    return list(stub.ListAuditEntries(opb.ListAuditEntriesRequest(target=target), metadata=auth(token(1, "support")))
                .entries)


def test_roles_and_audit_of_merchant_changes(app, channel, admin, token):
    support, finance, boss = auth(token(5, "support")), auth(token(6, "finance")), auth(token(7, "admin"))
    create = pb.CreateMerchantRequest(merchant_id="m-console", name="Console Co", md5=True, reason="new partner")
    for cred in (support, finance):
        with pytest.raises(grpc.RpcError) as exc:
            admin.CreateMerchant(create, metadata=cred)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    keys = admin.CreateMerchant(create, metadata=boss).keys
    assert keys.rsa_private_key.startswith("-----BEGIN") and keys.md5_secret
    with pytest.raises(grpc.RpcError) as exc:
        admin.CreateMerchant(pb.CreateMerchantRequest(merchant_id="m2", name="x"), metadata=boss)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # a reason is required

    admin.TopUpMerchant(pb.TopUpMerchantRequest(merchant_id="m-console", amount_fen=12345, reason="prepaid"),
                        metadata=boss)
    product = pb.MerchantProduct(product_code="P1", level="middle", months=3, settlement_price_fen=451)
    admin.SetMerchantProduct(pb.SetMerchantProductRequest(merchant_id="m-console", product=product, reason="price"),
                             metadata=boss)
    with pytest.raises(grpc.RpcError) as exc:
        admin.TopUpMerchant(pb.TopUpMerchantRequest(merchant_id="m-console", amount_fen=1, reason="x"),
                            metadata=finance)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED

    [m] = [m for m in admin.ListMerchants(pb.ListMerchantsRequest(), metadata=support).merchants
           if m.merchant_id == "m-console"]
    assert (m.balance_fen, m.balance_display, list(m.sign_types)) == (12345, "123.45", ["SHA256-RSA", "MD5"])
    assert [(p.product_code, p.settlement_price_fen) for p in m.products] == [("P1", 451)]

    entries = audit(channel, token, "merchant:m-console")
    assert [e.action for e in entries] == ["merchant.set_product", "merchant.top_up", "merchant.create"]
    top_up = entries[1]
    assert (json.loads(top_up.before_json), json.loads(top_up.after_json)) == ({"balance_fen": 0},
                                                                               {"balance_fen": 12345})
    for e in entries:  # key material never reaches the log
        assert keys.md5_secret not in e.after_json and "PRIVATE KEY" not in e.after_json


def test_resend_reaches_the_merchant_again_and_is_audited(app, channel, admin, merchant, client_for, receiver,
                                                          only_server_dispatcher, token):
    client_for(merchant).vip_charge("87103", ACCOUNT, "console-1", callback_url=receiver.url)
    receiver.wait_for(1)
    support = auth(token(5, "support"))
    [delivery] = admin.ListMerchantCallbacks(pb.ListMerchantCallbacksRequest(), metadata=support).callbacks
    assert delivery.url == receiver.url
    with pytest.raises(grpc.RpcError) as exc:
        admin.ResendMerchantCallback(pb.ResendMerchantCallbackRequest(callback_id=delivery.id, reason="x"),
                                     metadata=support)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin.ResendMerchantCallback(pb.ResendMerchantCallbackRequest(callback_id=delivery.id, reason="lost it"),
                                 metadata=auth(token(7, "admin")))
    first, again = receiver.wait_for(2)
    assert json.loads(again[1]) == json.loads(first[1])
    [entry] = audit(channel, token, f"callback:{delivery.id}")
    assert entry.action == "merchant.resend_callback" and entry.reason == "lost it"
