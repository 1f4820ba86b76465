"""What Envoy itself refuses answers in the family's envelope; header and body limits
are explicit and stable; form bodies get the same answers as JSON (docs/edge.md)."""

import json

import pytest

ORDER = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _is_001_envelope(body: dict) -> bool:
    return set(body) == {"message", "errors"} and isinstance(body["message"], str) and isinstance(body["errors"], dict)


@pytest.mark.db
@pytest.mark.parametrize("method, path, payload, field", [
    ("GET", "/api/v2/vip/orders/abc", None, "order"),
    ("GET", "/api/v2/vip/check-order/1e3", None, "order_id"),
    ("POST", "/api/v2/vip/orders", json.dumps(dict(ORDER, quantity=2147483648)), "quantity"),
    ("POST", "/api/v2/vip/orders", json.dumps(dict(ORDER, duration="three")), "duration"),
    ("POST", "/api/v2/vip/orders", json.dumps(dict(ORDER, level=["middle"])), None),
    ("POST", "/api/v2/vip/orders", json.dumps(dict(ORDER, level={"a": 1})), None),
    ("POST", "/api/v2/vip/orders", '{"level": "middle"', None),  # malformed
    ("POST", "/api/v2/vip/orders", "[1, 2]", None),  # not an object
    ("PATCH", "/api/v2/vip/exchange-vip", '{"level": 5', None),
    ("POST", "/api/v2/vip/check-iap-result/x", '{"receipt": "r"}', "order_id"),
    ("GET", "/api/v2/vip/orders?offset=abc", None, "offset"),
])
def test_envoy_refusals_on_001_paths_are_422_in_the_001_envelope(gateway, token, method, path, payload, field):
    with gateway.client(token(1)) as c:
        r = c.request(method, path, content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert _is_001_envelope(body), body
    if field is not None:
        assert list(body["errors"]) == [field]
    assert "vipay." not in r.text  # no internal type names


@pytest.mark.db
def test_headers_over_the_edge_limit_are_431_and_below_it_always_served(gateway):
    with gateway.client() as c:
        # Between 8 and 16 KiB the gRPC server used to answer 429 at random.
        for _ in range(20):
            r = c.get("/api/v2/vip/configs", headers={"x-pad": "a" * 12_000})
            assert r.status_code == 200
        r = c.get("/api/v2/vip/configs", headers={"x-pad": "a" * 17_000})
        assert r.status_code == 431
        many = {f"x-h{i}": "1" for i in range(120)}
        assert c.get("/api/v2/vip/configs", headers=many).status_code == 431
        long_path = c.get("/api/v2/vip/orders/" + "1" * 17_000)
        assert long_path.status_code == 431


@pytest.mark.db
def test_bodies_over_one_mib_are_413_in_the_family_envelope(gateway, token):
    big = json.dumps(dict(ORDER, request_id="x" * (1024 * 1024 + 10)))
    with gateway.client(token(1)) as c:
        r = c.post("/api/v2/vip/orders", content=big, headers={"content-type": "application/json"})
        recharge = c.post("/api/recharge/order", content=big, headers={"content-type": "application/json"})
        form = c.post("/api/v2/vip/orders", content="level=" + "a" * (1024 * 1024 + 10), headers=FORM)
    assert r.status_code == 413 and r.json() == {"message": "Payload Too Large", "errors": {}}
    assert recharge.status_code == 413 and recharge.json()["code"] == 413 and recharge.json()["success"] is False
    assert form.status_code == 413


# ---- forms -------------------------------------------------------------------------

VOLATILE = {"id", "trade_no", "created_at", "updated_at", "pay_data", "pay_data_alipay", "pay_data_wechat",
            "payOrderId", "callPayInfo", "body", "orderNumber", "url"}


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    return value


@pytest.mark.db
@pytest.mark.parametrize("method, path, fields", [
    # 001
    ("POST", "/api/v2/vip/orders", dict(ORDER)),
    ("POST", "/api/v2/vip/orders", dict(ORDER, quantity="2", request_id="a b&c=d/é")),
    ("POST", "/api/v2/vip/orders", dict(ORDER, quantity="abc")),
    ("POST", "/api/v2/vip/orders", dict(ORDER, quantity="2147483648")),
    ("POST", "/api/v2/vip/orders", {"level": "nope", "duration": "7"}),
    ("PATCH", "/api/v2/vip/exchange-vip", {"level": "high"}),
    ("PATCH", "/api/v2/vip/exchange-vip", {"level": "nope"}),
    ("POST", "/api/v2/vip/check-iap-result/999", {"receipt": "forged"}),
    # 000
    ("POST", "/charge/pay", {"id": "2", "payType": "ALIPAYCASH"}),
    ("POST", "/charge/pay", {"id": "99", "payType": "ALIPAYCASH"}),
    ("POST", "/charge/pay", {"id": "x", "payType": "ALIPAYCASH"}),
    # 002
    ("POST", "/api/recharge/order", {"id": "1", "price": "28", "payModeId": "2"}),
    ("POST", "/api/recharge/order", {"id": "1", "price": "27", "payModeId": "2"}),
    ("POST", "/api/recharge/order", {"id": "1", "price": "28", "payModeId": "two"}),
])
def test_form_bodies_get_the_same_answer_as_json(gateway, token, method, path, fields):
    with gateway.client(token(1)) as c:
        as_json = c.request(method, path, json=fields)
        as_form = c.request(method, path, data=fields)  # httpx: application/x-www-form-urlencoded
    assert as_form.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert as_form.status_code == as_json.status_code < 500, (as_form.text, as_json.text)
    assert _stable(as_form.json()) == _stable(as_json.json())


@pytest.mark.db
def test_form_order_has_the_right_types_and_last_value_wins(gateway, token):
    form = "timezone=Asia%2FShanghai&duration=1&duration=3&level=middle&pay_method=Alipay_AopApp&quantity=2"
    with gateway.client(token(1)) as c:
        r = c.post("/api/v2/vip/orders", content=form, headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert r.status_code == 201
    body = r.json()
    assert (body["quantity"], body["duration"], body["vip_info"]["timezone"]) == (2, "3", "Asia/Shanghai")


@pytest.mark.db
def test_notification_paths_keep_their_raw_form_bodies(app, gateway):
    """Forms are converted only on the JSON paths: providers' notifications stay raw."""
    with gateway.client() as anonymous:
        r = anonymous.post("/api/v2/vip/orders/1/sandbox-callback", content=b"out_trade_no=x&sign=y", headers=FORM)
    assert r.status_code == 400 and r.text == "fail"


@pytest.mark.db
def test_empty_form_body_is_an_empty_request(gateway, token):
    with gateway.client(token(1)) as c:
        as_form = c.post("/api/v2/vip/orders", headers=FORM)
        as_json = c.post("/api/v2/vip/orders", content=b"{}", headers={"content-type": "application/json"})
    assert as_form.status_code == as_json.status_code == 422
    assert as_form.json() == as_json.json()


@pytest.mark.db
def test_what_clients_send_is_bounded_in_the_access_log(gateway, tmp_path_factory):
    import time
    import uuid

    marker = uuid.uuid4().hex
    with gateway.client() as c:
        c.get(f"/api/v2/vip/orders/{marker}" + "9" * 5000, headers={"user-agent": marker + "u" * 5000})
    log = tmp_path_factory.getbasetemp() / "envoy.log"
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline and not lines:
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        time.sleep(0.2)
    assert lines and all(len(line) < 1024 for line in lines), [len(line) for line in lines]
