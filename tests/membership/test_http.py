"""Every api-docs/001 path through the real Envoy, with the documented shapes and codes."""

import re
from urllib.parse import parse_qsl

import pytest

ORDER_KEYS = {
    "id", "trade_no", "user_id", "total_amount", "quantity", "pay_method", "pay_amount", "pay_status",
    "level", "duration", "vip_info", "paid_at", "user_deleted_at", "platform_deleted_at", "created_at", "updated_at",
    # Additions (docs/refunds.md): every documented field keeps its values.
    "refund_status", "refunded_amount",
}
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def create(client, **overrides):
    body = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
    body.update(overrides)
    return client.post("/api/v2/vip/orders", json=body)


def pay(app, gateway, order_id, trade_no, amount, status="PAID"):
    body = app.sandbox.notification_for(trade_no, amount, status)
    with gateway.client() as anonymous:
        return anonymous.post(f"/api/v2/vip/orders/{order_id}/sandbox-callback", content=body,
                              headers={"content-type": "application/x-www-form-urlencoded"})


def test_bootstrappers_and_configs_are_public(gateway):
    with gateway.client() as c:
        boot = c.get("/api/v2/bootstrappers")
        assert boot.status_code == 200 and boot.json() == {"vip-switch": True}
        r = c.get("/api/v2/vip/configs")
    assert r.status_code == 200
    body = r.json()
    assert body["switch"] is True and body["exchange"] == 1
    middle = body["config"]["middle"]
    assert (middle["enable"], middle["level"], middle["name"]) == (True, "middle", "钻石会员")
    assert middle["setting"][0] == {"duration": 1, "original": 20, "iap": None, "iap_price": 20, "price": 18,
                                    "enable": False}
    assert middle["setting"][1] == {"duration": 3, "original": 60, "iap": "203", "iap_price": 60, "price": 54,
                                    "enable": True, "currency": 60}


def test_create_order_answers_201_with_the_documented_shape(gateway, token):
    with gateway.client(token(1)) as c:
        r = create(c)
    assert r.status_code == 201
    body = r.json()
    assert body["pay_method"] == "Alipay_AopApp" and body["quantity"] == 1
    assert body["duration"] == "3" and body["level"] == "middle"  # duration is a string here, as documented
    assert body["vip_info"] == {"level": "middle", "name": "钻石会员", "duration": 3, "price": 5400, "iap": "203",
                                "iap_price": 60, "ipa_price": 60, "timezone": "Asia/Shanghai"}
    assert (body["user_id"], body["pay_amount"], body["total_amount"], body["pay_status"]) == (1, 5400, 5400, 0)
    assert TIME.match(body["created_at"]) and TIME.match(body["updated_at"])
    assert re.fullmatch(r"\d{17}MO[0-9A-Z]+", body["trade_no"])
    fields = dict(parse_qsl(body["pay_data_alipay"]))
    assert fields["out_trade_no"] == body["trade_no"] and fields["total_amount"] == "5400"
    assert fields["notify_url"].endswith(f"/api/v2/vip/orders/{body['id']}/sandbox-callback")
    assert body["pay_data"] == body["pay_data_alipay"]
    assert "pay_data_wechat" not in body


def test_create_wechat_order_returns_app_client_parameters(gateway, token):
    with gateway.client(token(1)) as c:
        body = create(c, pay_method="WechatPay_App").json()
    wechat = body["pay_data_wechat"]
    assert set(wechat) >= {"appid", "partnerid", "prepayid", "package", "noncestr", "timestamp", "sign"}
    assert wechat["package"] == "Sign=WXPay" and isinstance(wechat["timestamp"], int)
    assert "pay_data_alipay" not in body


def test_iap_order_has_no_pay_data(gateway, token):
    with gateway.client(token(1)) as c:
        body = create(c, pay_method="Iap", level="high").json()
    assert body["total_amount"] == 9000 and body["vip_info"]["price"] == 8100
    assert not {"pay_data", "pay_data_alipay", "pay_data_wechat"} & set(body)


def test_create_order_validation_lists_every_bad_field_as_422(gateway, token):
    with gateway.client(token(1)) as c:
        r = c.post("/api/v2/vip/orders", json={"duration": 5, "level": "gold", "pay_method": "Cash"})
    assert r.status_code == 422
    body = r.json()
    assert body["message"] == "The given data was invalid."
    assert set(body["errors"]) == {"timezone", "duration", "level", "pay_method"}
    assert all(isinstance(v, list) and v for v in body["errors"].values())


def test_unauthenticated_calls_answer_401(gateway):
    with gateway.client() as c:
        assert c.get("/api/v2/vip/orders").status_code == 401
        bad = c.get("/api/v2/vip/orders", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.json() == {"message": "Unauthenticated.", "errors": {}}


def test_access_token_header_is_accepted(gateway, token):
    with gateway.client(**{"Access-Token": token(5)}) as c:
        assert c.get("/api/v2/vip/orders").status_code == 200


def test_list_is_a_bare_array_with_paging_and_dates(gateway, token):
    with gateway.client(token(1)) as c:
        ids = [create(c).json()["id"] for _ in range(3)]
        r = c.get("/api/v2/vip/orders", params={"offset": 0, "limit": 2})
        assert r.status_code == 200
        page = r.json()
        assert isinstance(page, list) and [o["id"] for o in page] == ids[::-1][:2]
        assert set(page[0]) == ORDER_KEYS
        assert page[0]["paid_at"] is None and page[0]["user_deleted_at"] is None
        assert [o["id"] for o in c.get("/api/v2/vip/orders", params={"offset": 2, "limit": 2}).json()] == [ids[0]]
        assert c.get("/api/v2/vip/orders", params={"s": "2000-01-01", "d": "2000-01-02"}).json() == []
        bad = c.get("/api/v2/vip/orders", params={"s": "yesterday", "limit": 1000})
        assert bad.status_code == 422 and set(bad.json()["errors"]) == {"s", "limit"}
        # Unknown query parameters are ignored, as the PHP backends did (issue 18).
        unknown = c.get("/api/v2/vip/orders", params={"offset": 2, "limit": 2, "nope": 1, "_t": 1733380000})
        assert unknown.status_code == 200 and [o["id"] for o in unknown.json()] == [ids[0]]


def test_get_another_users_order_is_404(gateway, token):
    with gateway.client(token(1)) as owner, gateway.client(token(2)) as other:
        order_id = create(owner).json()["id"]
        assert owner.get(f"/api/v2/vip/orders/{order_id}").status_code == 200
        r = other.get(f"/api/v2/vip/orders/{order_id}")
        assert r.status_code == 404 and r.json()["message"]
        assert other.delete(f"/api/v2/vip/orders/{order_id}").status_code == 404
        assert other.get(f"/api/v2/vip/check-order/{order_id}").status_code == 404
        assert other.get("/api/v2/vip/orders").json() == []


def test_get_order_shape(gateway, token):
    with gateway.client(token(1)) as c:
        order_id = create(c, pay_method="Iap", level="high").json()["id"]
        body = c.get(f"/api/v2/vip/orders/{order_id}").json()
    assert set(body) == ORDER_KEYS
    assert body["vip_info"] == {"iap": "303", "name": "黑钻会员", "level": "high", "price": 8100, "duration": 3,
                                "iap_price": 90, "ipa_price": 90, "timezone": "Asia/Shanghai"}


def test_delete_is_204_soft_and_hides_the_order(gateway, token, app):
    with gateway.client(token(1)) as c:
        order_id = create(c).json()["id"]
        r = c.delete(f"/api/v2/vip/orders/{order_id}")
        assert r.status_code == 204 and r.content == b""
        assert c.get(f"/api/v2/vip/orders/{order_id}").status_code == 404
        assert c.get("/api/v2/vip/orders").json() == []
    from server.membership.tables import VipOrderRow

    with app.uow_factory() as uow:  # kept for the platform
        row = uow.session.get(VipOrderRow, order_id)
        assert row is not None and row.user_deleted_at is not None and row.platform_deleted_at is None


def test_sandbox_payment_through_the_gateway_grants_membership(gateway, token, app):
    with gateway.client(token(1)) as c:
        order = create(c).json()
        assert c.get(f"/api/v2/vip/check-order/{order['id']}").json() == {"status": False}
        r = pay(app, gateway, order["id"], order["trade_no"], order["pay_amount"])
        assert (r.status_code, r.text) == (200, "success")
        assert c.get(f"/api/v2/vip/check-order/{order['id']}").json() == {"status": True}
        shown = c.get(f"/api/v2/vip/orders/{order['id']}").json()
        assert shown["pay_status"] == 1 and TIME.match(shown["paid_at"])
        me = c.get("/api/v2/vip/membership").json()
    assert me["is_vip"] is True and me["current_level"] == "middle"
    assert [lvl["level"] for lvl in me["levels"]] == ["middle"]


@pytest.mark.parametrize("tamper", ["signature", "amount"])
def test_forged_or_wrong_amount_notifications_change_nothing(gateway, token, app, tamper):
    with gateway.client(token(1)) as c:
        order = create(c).json()
        if tamper == "signature":
            body = app.sandbox.notification_for(order["trade_no"], order["pay_amount"]).replace(b"sign=", b"sign=0")
            with gateway.client() as anonymous:
                r = anonymous.post(f"/api/v2/vip/orders/{order['id']}/sandbox-callback", content=body,
                                   headers={"content-type": "application/x-www-form-urlencoded"})
        else:
            r = pay(app, gateway, order["id"], order["trade_no"], order["pay_amount"] - 1)
        assert r.status_code == 400 and r.text == "fail"
        assert c.get(f"/api/v2/vip/check-order/{order['id']}").json() == {"status": False}
        assert c.get("/api/v2/vip/membership").json()["is_vip"] is False


def test_unknown_channel_callback_is_404(gateway, token):
    with gateway.client(token(1)) as c:
        order = create(c).json()
        r = c.post(f"/api/v2/vip/orders/{order['id']}/bitcoin-callback", content=b"x=1")
    assert r.status_code == 404


def test_exchange_vip_201_and_403(gateway, token, app):
    with gateway.client(token(1)) as c:
        refused = c.patch("/api/v2/vip/exchange-vip", json={"level": "high"})
        assert refused.status_code == 403 and refused.json()["message"]
        order = create(c, level="low").json()
        pay(app, gateway, order["id"], order["trade_no"], order["pay_amount"])
        ok = c.patch("/api/v2/vip/exchange-vip", json={"level": "high"})
        assert ok.status_code == 201
        body = ok.json()
        assert body["converted_days"] >= 89 and body["membership"]["current_level"] == "high"
        assert c.patch("/api/v2/vip/exchange-vip", json={"level": "high"}).status_code == 403  # low is used up
        assert c.patch("/api/v2/vip/exchange-vip", json={"level": "diamond"}).status_code == 422


def test_check_iap_result_marks_paid_once(gateway, token, app):
    with gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap", level="high").json()
        receipt = app.iap.issue("txn-1", "303", "1")
        r = c.post(f"/api/v2/vip/check-iap-result/{order['id']}", json={"receipt": receipt})
        assert r.status_code == 200 and r.json()["pay_status"] == 1
        # The same transaction cannot pay a second order.
        second = create(c, pay_method="Iap", level="high").json()
        again = c.post(f"/api/v2/vip/check-iap-result/{second['id']}", json={"receipt": receipt})
        assert again.status_code == 500 or again.status_code == 409
        assert c.get(f"/api/v2/vip/check-order/{second['id']}").json() == {"status": False}


@pytest.mark.parametrize("receipt_for", ["forged", "other_product", "other_user", "not_iap_order"])
def test_check_iap_result_failures_are_500_without_state_change(gateway, token, app, receipt_for):
    with gateway.client(token(1)) as c:
        order = create(c, pay_method="Alipay_AopApp" if receipt_for == "not_iap_order" else "Iap",
                       level="high").json()
        receipt = {
            "forged": app.iap.issue("t", "303", "1")[:-2] + "00",
            "other_product": app.iap.issue("t", "203", "1"),
            "other_user": app.iap.issue("t", "303", "2"),
            "not_iap_order": app.iap.issue("t", "303", "1"),
        }[receipt_for]
        r = c.post(f"/api/v2/vip/check-iap-result/{order['id']}", json={"receipt": receipt})
        assert r.status_code == (422 if receipt_for == "not_iap_order" else 500)
        assert r.json()["message"]
        assert c.get(f"/api/v2/vip/check-order/{order['id']}").json() == {"status": False}


def test_protocol_is_html(gateway):
    with gateway.client() as c:
        r = c.get("/api/v2/vip/protocol")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text == "<h1>VIP协议</h1>"


def test_unknown_path_and_wrong_verb_are_404_not_raw_grpc(gateway):
    with gateway.client() as c:
        assert c.get("/api/v2/vip/nothing").status_code == 404
        assert c.put("/api/v2/vip/configs").status_code == 404


def test_ping_through_the_gateway(gateway):
    with gateway.client() as c:
        r = c.get("/ping")
    assert r.status_code == 200 and r.json() == {"ok": True}
