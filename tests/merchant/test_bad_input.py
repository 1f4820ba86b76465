"""Validly signed but hostile 004 bodies answer in the 004 envelope, never 5xx, and
never break the gateway's shared upstream connection for other clients (issue 9 §4)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from clients.merchant_client import CHARGE_PATH

from .conftest import snapshot
from .test_charge_http import body_of


def send_signed(client, raw: bytes) -> httpx.Response:
    return client.http.post(client.base_url + CHARGE_PATH, content=raw, headers=client.signed_headers(CHARGE_PATH, raw))


def assert_refused(reply: httpx.Response, status: int = 4001) -> dict:
    assert reply.status_code == 200, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert set(body) == {"status", "message", "data"} and body["data"] is None
    assert body["status"] == status, body
    return body


def test_deeply_nested_body_is_4001(app, merchant, client_for):
    client = client_for(merchant)
    before = snapshot(app)
    raw = b'{"bizCode":' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert_refused(send_signed(client, raw))
    raw = b"[" * 100_000 + b"]" * 100_000
    assert_refused(send_signed(client, raw))
    assert snapshot(app) == before


@pytest.mark.parametrize("field,value", [("bizCode", "\ud800"), ("account", "\udfff"), ("bizCode", "a\x00b"),
                                         ("account", "w23\x00"), ("mobile", "\x00"), ("bizCode", "tab\there")])
def test_unencodable_and_control_characters_are_4001(app, merchant, client_for, field, value):
    client = client_for(merchant)
    before = snapshot(app)
    raw = json.dumps(body_of(client, **{field: value})).encode()  # ensure_ascii: \ud800 stays an escape
    body = assert_refused(send_signed(client, raw))
    assert field in body["message"]
    assert snapshot(app) == before


def test_huge_unknown_field_name_is_4001_with_a_bounded_message_and_others_unharmed(app, merchant, client_for,
                                                                                    gateway, token):
    client = client_for(merchant)
    body = body_of(client)
    body["x" * 100_000] = "1"
    raw = json.dumps(body).encode()

    def hostile(_):
        return send_signed(client, raw)

    def unrelated(i):
        with gateway.client(token(1000 + i)) as c:
            return c.get("/api/v2/vip/membership")

    with ThreadPoolExecutor(16) as pool:
        bad = [pool.submit(hostile, i) for i in range(8)]
        good = [pool.submit(unrelated, i) for i in range(64)]
        bad, good = [f.result() for f in bad], [f.result() for f in good]
    assert [r.status_code for r in good] == [200] * len(good)
    for reply in bad:
        refused = assert_refused(reply)
        assert "unknown field" in refused["message"] and len(refused["message"]) < 1000
