"""The signing string and strict parsing, pure; and the worked example of
docs/openapi.md, checked against both the server and the reference client."""

from __future__ import annotations

import pytest

from clients import merchant_client
from server.merchant import rules
from server.merchant.signing import generate_rsa_keypair, md5_sign, verify_md5, verify_rsa
from server.platform.errors import DomainError

DOC_BODY = (b'{"merchantId":"166","businessId":"166","productCode":"87103","mobile":"15012616978",'
            b'"account":"w23b52","bizCode":"87103","callbackUrl":"https://merchant.example.com/vip/notify"}')
DOC_STRING = (b'POST\n/v1/openapi/order/VIPCharge\n166\n1628757969177\n5K8264ILTKCH16CQ\n' + DOC_BODY + b'\n')
DOC_SECRET = "example-secret-not-real"
DOC_MD5 = "448c8a3650402d3f84c26b6fa2534097"


def test_worked_example_of_the_docs():
    server = rules.signing_string("POST", "/v1/openapi/order/VIPCharge", "166", 1628757969177, "5K8264ILTKCH16CQ",
                                  DOC_BODY)
    client = merchant_client.signing_string("POST", "/v1/openapi/order/VIPCharge", "166", "1628757969177",
                                            "5K8264ILTKCH16CQ", DOC_BODY)
    assert server == client == DOC_STRING
    assert md5_sign(DOC_SECRET, server) == merchant_client.sign_md5(DOC_SECRET, client) == DOC_MD5
    assert verify_md5(DOC_SECRET, server, DOC_MD5.upper())
    assert not verify_md5(DOC_SECRET + "x", server, DOC_MD5)


def test_rsa_client_signature_verifies_on_the_server_only_for_the_same_bytes():
    private, public = generate_rsa_keypair()
    sign = merchant_client.sign_rsa(private, DOC_STRING)
    assert verify_rsa(public, DOC_STRING, sign)
    assert not verify_rsa(public, DOC_STRING.replace(b"w23b52", b"w23b53"), sign)
    assert not verify_rsa(public, DOC_STRING, "not base64!")
    assert not verify_rsa(generate_rsa_keypair()[1], DOC_STRING, sign)


def test_callback_strings_agree():
    assert rules.callback_signing_string("16", "166", 1, "n", b"{}") == merchant_client.callback_signing_string(
        "16", "166", "1", "n", b"{}") == b"CALLBACK\n16\n166\n1\nn\n{}\n"


def reason(fn, *args) -> str:
    with pytest.raises(DomainError) as info:
        fn(*args)
    return info.value.reason


def test_headers_are_checked():
    good = {"businessid": "166", "nonce": "abcdefgh", "timestamp": "1628757969177", "sign": "x"}
    assert rules.parse_headers(good).sign_type == "SHA256-RSA"
    assert rules.parse_headers(dict(good, signtype="MD5")).sign_type == "MD5"
    for bad in ({"nonce": "short"}, {"nonce": "has space 123"}, {"timestamp": "12.5"}, {"signtype": "SHA1"},
                {"timestamp": "01628757969177"},  # signed as sent, so one spelling only
                {"businessid": "1\n66"}, {"sign": ""}):
        assert reason(rules.parse_headers, dict(good, **bad)) == "OPENAPI_INVALID_PARAMS"


def test_timestamp_window_is_five_minutes_either_way():
    rules.check_timestamp(1_000_000, 1_000_000 + 300_000)
    rules.check_timestamp(1_000_000 + 300_000, 1_000_000)
    assert reason(rules.check_timestamp, 1_000_000, 1_000_000 + 300_001) == "OPENAPI_TIMESTAMP_EXPIRED"
    assert reason(rules.check_timestamp, 1_000_000 + 300_001, 1_000_000) == "OPENAPI_TIMESTAMP_EXPIRED"


def test_body_is_a_flat_object_of_known_string_fields():
    parsed = rules.parse_body(DOC_BODY, rules.CHARGE_FIELDS)
    assert parsed["account"] == "w23b52" and parsed["callbackUrl"].startswith("https://")
    assert rules.parse_body(b'{"merchantId":"1","businessId":"1","productCode":"p","account":"a","bizCode":"b"}',
                            rules.CHARGE_FIELDS)["mobile"] == ""
    for bad in (b"[]", b"not json", b'{"merchantId":1}', DOC_BODY[:-1] + b',"extra":"x"}',
                DOC_BODY[:-1] + b',"account":"other"}', b'{"merchantId":"1"}', "{\"merchantId\":\"\xff\"}".encode("latin-1")):
        assert reason(rules.parse_body, bad, rules.CHARGE_FIELDS) == "OPENAPI_INVALID_PARAMS"


def test_status_codes_are_unique_and_documented():
    codes = [code for code, _ in rules.STATUS.values()]
    assert len(codes) == len(set(codes))
    from server.platform.settings import ROOT

    doc = (ROOT / "docs" / "openapi.md").read_text()
    for name, (code, _) in rules.STATUS.items():
        assert f"| {code} |" in doc and name in doc, name


def test_backoff_default_is_the_documented_schedule():
    assert rules.DEFAULT_BACKOFF == (15, 30, 180, 600, 1200, 1800, 3600, 10800, 21600)
    assert rules.parse_backoff("0.2, 1") == (0.2, 1.0)


def test_every_error_maps_to_a_documented_status():
    from server.platform.errors import Kind, invalid, unauthenticated

    assert rules.status_of(rules.refusal("OPENAPI_NONCE_REPLAYED")) == 4003
    assert rules.status_of(invalid([])) == 4001
    assert rules.status_of(unauthenticated()) == 4004
    assert rules.status_of(DomainError("INTERNAL", "x", Kind.INTERNAL)) == 5000
