"""Issue 18 §3 through the real Envoy: a non-ASCII digit as storeId, two Access-Token
headers, a service credential on a user's path."""

import pytest

from tests.edge.test_input_at_the_edge import _is_001_envelope


@pytest.mark.db
@pytest.mark.parametrize("store_id", ["²", "١٢", "１２"])
def test_a_non_ascii_digit_store_id_is_store_required(gateway, token, store_id):
    with gateway.client(token(1)) as c:
        r = c.get("/index.php?s=/api/recharge/center", headers={"storeId": store_id.encode()})  # UTF-8 bytes
    assert r.status_code == 200, r.text
    assert r.json() == {"status": 500, "message": "The storeId header is required.", "data": []}  # STORE_REQUIRED


@pytest.mark.db
@pytest.mark.parametrize("headers", [
    [("Access-Token", "garbage"), ("Access-Token", "{good}")],
    [("Access-Token", "{good}"), ("Access-Token", "garbage")],
    [("Access-Token", "{good}"), ("Access-Token", "{other}")],
    [("Authorization", "Bearer garbage"), ("Authorization", "Bearer {good}")],
])
def test_a_repeated_credential_header_is_401(gateway, token, headers):
    values = {"good": token(1), "other": token(2)}
    sent = [(name, value.format(**values)) for name, value in headers]
    with gateway.client() as c:
        r = c.get("/api/v2/vip/membership", headers=sent)
        once = c.get("/api/v2/vip/membership", headers=[sent[-1]])
    assert r.status_code == 401 and _is_001_envelope(r.json()), r.text
    assert once.status_code in (200, 401)  # one header is judged on its own


@pytest.mark.db
@pytest.mark.parametrize("path", ["/api/v2/vip/membership", "/api/v2/vip/orders", "/api/recharge/history",
                                  "/api/v2/vip/check-order/1"])
@pytest.mark.parametrize("role", ["service", "admin"])
def test_service_credentials_are_refused_on_user_paths(gateway, token, path, role):
    with gateway.client(token(0, role)) as c:
        r = c.get(path)
        user = c.get(path, headers={"Authorization": f"Bearer {token(1)}"})
    assert r.status_code in (200, 403), r.text
    body = r.json()
    if r.status_code == 200:  # 000 and 002 answer errors with HTTP 200 and the code inside
        assert body.get("c", body.get("code")) == 403, body
    assert "user_id" not in r.text
    assert user.status_code in (200, 404)  # check-order/1: user 1 has no order 1
