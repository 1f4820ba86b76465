"""The operator CLI (a real subprocess on the test database) onboarding a merchant that
then charges through Envoy with the printed key; and the same calls over plain gRPC."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from vipay.openapi.v1 import openapi_charge_pb2 as pb
from vipay.openapi.v1 import openapi_charge_pb2_grpc

from clients.merchant_client import CHARGE_PATH, MerchantClient
from server.merchant.tables import MerchantRow
from server.platform.settings import ROOT

from .conftest import ACCOUNT, PRICE_FEN, USER_ID, snapshot


def cli(settings, *args, check=True):
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET="x", SANDBOX_SECRET="x",
               LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-m", "server", "merchant", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_operator_onboards_a_merchant_that_then_charges(app, settings, gateway):
    out = cli(settings, "create", "500", "--name", "Acme", "--business-id", "500", "--md5").stdout
    private = re.search(r"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----\n", out, re.S).group(0)
    secret = out.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{48}", secret)
    with app.uow_factory() as uow:  # only the public halves are stored
        row = uow.session.query(MerchantRow).one()
        assert "PRIVATE" not in row.rsa_public_key and row.md5_secret == secret
    cli(settings, "set-product", "500", "87103", "--level", "middle", "--months", "3", "--price", "4.51")
    assert "10.00 yuan" in cli(settings, "top-up", "500", "10").stdout
    cli(settings, "link-account", ACCOUNT, str(USER_ID))
    listed = json.loads(cli(settings, "list").stdout)
    assert listed[0]["merchantId"] == "500" and listed[0]["balance_fen"] == 1000
    assert listed[0]["signTypes"] == ["SHA256-RSA", "MD5"]

    with MerchantClient(gateway.url, "500", "500", private_key_pem=private).http as http:
        client = MerchantClient(gateway.url, "500", "500", private_key_pem=private, http=http)
        assert client.vip_charge("87103", ACCOUNT, "cli-1")["status"] == 200
        # a key rotation invalidates the old key at once
        new_private = re.search(r"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----\n",
                                cli(settings, "rotate-keys", "500", "--rsa").stdout, re.S).group(0)
        assert client.vip_charge("87103", ACCOUNT, "cli-2")["status"] == 4004
        client.private_key_pem = new_private
        assert client.vip_charge("87103", ACCOUNT, "cli-2")["status"] == 200
        cli(settings, "disable", "500")
        assert client.vip_charge("87103", ACCOUNT, "cli-3")["status"] == 4008
    assert snapshot(app).balances["500"] == 1000 - 2 * PRICE_FEN
    assert cli(settings, "top-up", "nobody", "10", check=False).returncode != 0


def grpc_call(channel, client: MerchantClient, payload: dict, **sign):
    raw = json.dumps(payload).encode()
    headers = client.signed_headers(CHARGE_PATH, raw, **sign)
    metadata = tuple((k.lower(), v) for k, v in headers.items() if k.lower() != "content-type")
    stub = openapi_charge_pb2_grpc.OpenApiChargeServiceStub(channel)
    return stub.VipCharge(pb.VipChargeRequest(http_body=httpbody_pb2.HttpBody(
        content_type="application/json", data=raw)), metadata=metadata)


def test_vip_charge_over_grpc(app, channel, merchant):
    client = MerchantClient("", merchant.merchant_id, merchant.business_id, private_key_pem=merchant.private_key)
    reply = grpc_call(channel, client, client.charge_body("87103", ACCOUNT, "g-1"))
    assert reply.status == 200 and reply.data.biz_code == "g-1" and reply.data.settlement_price == 4.51
    before = snapshot(app)
    with pytest.raises(grpc.RpcError) as info:
        grpc_call(channel, client, client.charge_body("87103", ACCOUNT, "g-2"),
                  timestamp=str(int(time.time() * 1000) - 600_000))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    status = rpc_status.from_call(info.value)
    error = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(error)
    assert (error.reason, error.metadata["status"]) == ("OPENAPI_TIMESTAMP_EXPIRED", "4002")
    assert snapshot(app) == before
