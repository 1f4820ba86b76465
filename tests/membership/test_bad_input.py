"""Bad input on the 001 paths through the real Envoy answers 4xx in the 001
envelope (or a correct 200), never 5xx (issue 9 §4)."""

import base64

import pytest

from server.platform.auth import issue_token

from .test_http import create


def envelope_4xx(r):
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["message"], str) and isinstance(body["errors"], dict)
    return body


@pytest.mark.parametrize("query", ["s=0001-01-01", "d=9999-12-31", "s=0001-01-01&d=9999-12-31"])
def test_list_orders_with_extreme_dates_is_unbounded_not_500(gateway, token, query):
    with gateway.client(token(1)) as c:
        created = create(c).json()
        r = c.get(f"/api/v2/vip/orders?{query}")
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()] == [created["id"]]


@pytest.mark.parametrize("offset", [2**63, 2**64 + 5, 10**30, -1, -(2**63) - 1])
def test_page_token_with_a_huge_or_negative_offset_is_422(gateway, token, offset):
    page_token = base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()
    with gateway.client(token(1)) as c:
        r = c.get("/api/v2/vip/orders", params={"page_token": page_token})
    assert "page_token" in envelope_4xx(r)["errors"]


@pytest.mark.parametrize("query", ["page_size=-1", "limit=-5", "offset=-1", "page_size=-2147483648"])
def test_negative_paging_is_422(gateway, token, query):
    with gateway.client(token(1)) as c:
        r = c.get(f"/api/v2/vip/orders?{query}")
    envelope_4xx(r)


@pytest.mark.parametrize("request_id", ["x" * 65, "x" * 5000, "abc\x00def", "\ud800"[:0] + "a\u0000"])
def test_bad_request_ids_are_422(gateway, token, request_id):
    with gateway.client(token(1)) as c:
        r = create(c, request_id=request_id)
    assert "request_id" in envelope_4xx(r)["errors"]


def test_token_subject_outside_bigint_is_401(gateway, settings):
    for sub in (2**63, 2**64, -1):
        bad = issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, sub)
        with gateway.client(bad) as c:
            r = c.get("/api/v2/vip/orders")
        assert r.status_code == 401, (sub, r.status_code, r.text)
        assert r.json()["message"]
