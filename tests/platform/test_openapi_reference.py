"""The reference explains itself (sdk/openapi.yaml, rendered by `make docs`): the signing
section's worked example is right (recomputed with the server's own signing code), the code
tables come from errors.proto, the 004 status callback is described, and every operation
has what `redocly lint` requires (a summary, security declared)."""

import hashlib
import hmac
from pathlib import Path

import yaml
from vipay.legacy.v1 import errors_pb2

from sdk.openapi_gen import reference
from server.merchant import rules

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "sdk/openapi.yaml").read_text())
INTRO = SPEC["info"]["description"]


def test_the_worked_signing_example_verifies_with_the_servers_code():
    e = reference.EXAMPLE
    text = rules.signing_string("POST", e["path"], e["businessId"], e["timestamp"], e["nonce"], e["body"].encode())
    assert hmac.new(e["secret"].encode(), text, hashlib.md5).hexdigest() == e["sign"]
    assert text.decode() == reference.example_signing_string()
    for line in text.decode().splitlines():
        assert "    " + line in INTRO, f"the signed text is shown verbatim: {line}"
    assert e["sign"] in INTRO and e["secret"] in INTRO


def test_code_tables_per_family_come_from_the_declaration():
    for enum, prefix in ((errors_pb2.OpenApiStatus, "OPEN_API_STATUS_"), (errors_pb2.RechargeCode, "RECHARGE_CODE_"),
                         (errors_pb2.MembershipHttpStatus, "MEMBERSHIP_HTTP_STATUS_"),
                         (errors_pb2.YoshopStatus, "YOSHOP_STATUS_"), (errors_pb2.ErrorReason, "ERROR_REASON_")):
        assert f"### {enum.DESCRIPTOR.name}" in INTRO
        for v in enum.DESCRIPTOR.values:
            if v.number:
                assert f"| {v.number} | {v.name.removeprefix(prefix)} |" in INTRO
    assert "| 4011 | INSUFFICIENT_BALANCE | The prepaid balance is below the settlement price. |" in INTRO


def test_the_status_callback_is_an_openapi_callback_of_vipcharge():
    charge = SPEC["paths"]["/v1/openapi/order/VIPCharge"]["post"]
    post = charge["callbacks"]["statusCallback"]["{$request.body#/callbackUrl}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/StatusCallback"}
    assert {"orderCode", "bizCode", "state", "settlementPrice", "merchantId"} <= set(
        SPEC["components"]["schemas"]["StatusCallback"]["properties"])
    assert {p["name"] for p in post["parameters"]} >= {"businessId", "nonce", "timestamp", "sign", "merchantId"}


def test_every_operation_has_a_summary_and_declares_security():
    for path, ops in SPEC["paths"].items():
        for verb, op in ops.items():
            assert op.get("summary"), (verb, path)
            assert "security" in op, (verb, path)
    assert all(t.get("description") for t in SPEC["tags"])
