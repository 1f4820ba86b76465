"""Every error code is declared once, in protos/vipay/legacy/v1/errors.proto, and the
SDKs' typed errors are generated from it: a reason or code the server answers with
that is not declared there would reach partners as an untyped error."""

from __future__ import annotations

import re
from pathlib import Path

from vipay.legacy.v1 import errors_pb2

from server.merchant import rules
from server.recharge import envelope_codes as envelopes

SERVER = Path(__file__).resolve().parents[2] / "server"
# A reason is the first argument of the constructors of domain errors.
RAISED = re.compile(r"\b(?:DomainError|refund_error|refusal|_problem)\(\s*(?:\"|(?:rules\.)?Refusal\.)([A-Z][A-Z0-9_]+)")
NOT_FOUND = re.compile(r"\bnot_found\(\s*\"([a-z_]+)\"")

REASONS = {v.name.removeprefix("ERROR_REASON_") for v in errors_pb2.ErrorReason.DESCRIPTOR.values}
RECHARGE_CODES = {v.number for v in errors_pb2.RechargeCode.DESCRIPTOR.values}


def raised_reasons() -> set[str]:
    found = set()
    for path in SERVER.rglob("*.py"):
        text = path.read_text()
        found |= set(RAISED.findall(text))
        found |= {what.upper() + "_NOT_FOUND" for what in NOT_FOUND.findall(text)}
    return found | {r.value for r in rules.Refusal}  # the 004 area's reasons, all of them


def test_the_scan_finds_the_reasons_of_every_area():
    found = raised_reasons()
    assert {"INSUFFICIENT_BALANCE", "OPENAPI_SIGN_INVALID", "ORDER_NOT_FOUND", "IAP_REFUNDED",
            "ALREADY_REFUNDED", "CAPTCHA_REQUIRED"} <= found


def test_every_reason_the_server_raises_is_declared():
    undeclared = raised_reasons() - REASONS
    assert not undeclared, f"declare these in errors.proto ErrorReason: {sorted(undeclared)}"


def test_004_codes_come_from_the_declaration():
    declared = {v.number for v in errors_pb2.OpenApiStatus.DESCRIPTOR.values} - {0, 200}
    assert {code for code, _ in rules.STATUS.values()} == declared
    assert rules.STATUS["OPENAPI_INSUFFICIENT_BALANCE"][0] == 4011
    assert rules.STATUS["INTERNAL"][0] == 5000
    for reason in rules.STATUS:
        if reason != "INTERNAL":
            assert errors_pb2.ErrorReason.Value("ERROR_REASON_" + reason) == rules.STATUS[reason][0]


def test_recharge_codes_are_declared():
    answered = set(envelopes.REASON_CODES.values()) | set(envelopes.KIND_CODES.values())
    assert answered <= RECHARGE_CODES, sorted(answered - RECHARGE_CODES)
    assert set(envelopes.REASON_CODES) <= REASONS
