"""Every api-docs/000, 002 and 003 path through the real Envoy, with the documented
envelopes, success and failure, paid through the signed sandbox channel."""

import json
import re
from datetime import datetime, timedelta, timezone
from io import BytesIO
from urllib.parse import parse_qsl

from PIL import Image
from sqlalchemy import select, update

from server.membership.tables import MembershipGrantRow
from server.recharge.captchas import CaptchaRow
from server.recharge.tables import RechargeOrderRow, WalletEntryRow

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
FORM = {"content-type": "application/x-www-form-urlencoded"}


def notify(app, gateway, order_id, status="PAID", channel="sandbox", amount=None):
    with app.uow_factory() as uow:
        order = uow.session.get(RechargeOrderRow, order_id)
    body = app.sandbox.notification_for(order.order_number, order.amount if amount is None else amount, status)
    with gateway.client() as anonymous:
        return anonymous.post(f"/api/recharge/orders/{order_id}/{channel}-callback", content=body, headers=FORM)


def order_by_number(app, number) -> RechargeOrderRow:
    with app.uow_factory() as uow:
        return uow.session.scalar(select(RechargeOrderRow).where(RechargeOrderRow.order_number == number))


def place(client, **body):
    payload = {"id": 1, "price": "28", "payModeId": 2}
    payload.update(body)
    return client.post("/api/recharge/order", json=payload)


# ---- 000 ------------------------------------------------------------------------


def test_charge_index_has_the_documented_shape(gateway):
    with gateway.client() as c:
        r = c.get("/charge/index")
    assert r.status_code == 200
    body = r.json()
    assert body["c"] == 0 and body["m"] is None
    assert body["d"]["payTypes"] == [
        {"typeName": "ALIPAYCASH", "comment": "支付宝支付", "thumbnail": None},
        {"typeName": "WX_APP", "comment": "微信支付", "thumbnail": None},
    ]
    assert body["d"]["chargeList"][0] == {
        "id": 1, "amount": 100.00, "bgUrl": None, "comment": None, "givingVip": False, "timeType": None,
        "timeLen": None, "addTime": None, "sortOrder": None, "deleted": False,
    }
    vip = body["d"]["chargeList"][1]
    assert (vip["givingVip"], vip["timeType"], vip["timeLen"], vip["amount"]) == (True, "MONTH", 1, 30)


def test_charge_pay_needs_login_in_the_000_envelope(gateway):
    with gateway.client() as c:
        r = c.post("/charge/pay", json={"id": 1, "payType": "ALIPAYCASH"})
    assert r.status_code == 200
    assert r.json() == {"c": 401, "m": "请先登录", "d": None}


def test_charge_pay_refuses_unknown_packages_and_pay_types(gateway, token):
    with gateway.client(token(5)) as c:
        unknown = c.post("/charge/pay", json={"id": 99, "payType": "ALIPAYCASH"}).json()
        bad_type = c.post("/charge/pay", json={"id": 1, "payType": "BITCOIN"}).json()
    assert (unknown["c"], unknown["d"]) == (404, None) and unknown["m"]
    assert bad_type["c"] == 400 and "payType" in bad_type["m"]


def test_charge_pay_then_notification_credits_the_wallet_and_grants_vip(app, gateway, token):
    with gateway.client(token(5)) as c:
        r = c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH"})
    assert r.status_code == 200
    body = r.json()
    assert body["c"] == 0 and body["m"] is None
    d = body["d"]
    assert d["outPayOrderId"] is None and d["payCallbackInfo"] is None
    fields = dict(parse_qsl(d["callPayInfo"]))
    assert fields["out_trade_no"] == d["payOrderId"] and fields["total_amount"] == "3000"
    order = order_by_number(app, d["payOrderId"])
    assert fields["notify_url"].endswith(f"/api/recharge/orders/{order.id}/sandbox-callback")
    assert (order.family, order.kind, order.vip_level, order.vip_months) == ("charge", "package", "low", 1)

    paid = notify(app, gateway, order.id)
    assert (paid.status_code, paid.text) == (200, "success")
    assert app.recharges.wallet.balance(5) == 3000
    status = app.memberships.ledger.status(5)
    assert status.current_level == "low"
    with app.uow_factory() as uow:
        grants = uow.session.scalars(select(MembershipGrantRow).where(MembershipGrantRow.source == "recharge_order")).all()
    assert [(g.user_id, g.source_ref) for g in grants] == [(5, str(order.id))]


def test_wechat_charge_gives_client_parameters_as_json_text(gateway, token):
    with gateway.client(token(5)) as c:
        d = c.post("/charge/pay", json={"id": 1, "payType": "WX_APP"}).json()["d"]
    params = json.loads(d["callPayInfo"])
    assert params["package"] == "Sign=WXPay" and {"appid", "partnerid", "prepayid", "sign"} <= set(params)


# ---- 002 ------------------------------------------------------------------------


def test_anonymous_recharge_list_has_no_balance_field(gateway):
    with gateway.client() as c:
        r = c.get("/api/recharge")
    assert r.status_code == 200
    body = r.json()
    assert (body["message"], body["success"], body["code"]) == ("ok", True, 0)
    assert "balance" not in body["data"]
    first = body["data"]["rechargeAmount"][0]
    assert (first["id"], first["title"], first["price"]) == (1, "28元", "28")
    assert first["payModes"][0] == {"id": 1, "code": "h5", "name": "H5支付", "payType": {
        "id": 1, "code": "wechat", "name": "微信支付", "icon": "https://xxx.jpg"}}
    assert [a["price"] for a in body["data"]["rechargeAmount"]] == ["28", "500", "1000"]


def test_signed_in_recharge_list_shows_the_balance_as_trimmed_yuan(app, gateway, token):
    with gateway.client(token(7)) as c:
        assert c.get("/api/recharge").json()["data"]["balance"] == "0"
        order = place(c, id=0, price="15.2").json()
        notify(app, gateway, order_by_number(app, order["data"]["orderNumber"]).id)
        assert c.get("/api/recharge").json()["data"]["balance"] == "15.2"


def test_recharge_order_gives_a_form_to_post_and_pays_plan_plus_gift(app, gateway, token):
    with gateway.client(token(7)) as c:
        r = place(c, id=10001, price="500.00", payModeId=2)
    assert r.status_code == 200
    body = r.json()
    assert (body["message"], body["success"], body["code"]) == ("ok", True, 0)
    data = body["data"]
    assert data["method"] in ("post", "sdk") and data["body"]
    fields = dict(parse_qsl(data["body"]))
    assert fields["total_amount"] == "50000" and fields["out_trade_no"] == data["orderNumber"]
    order = order_by_number(app, data["orderNumber"])
    assert (order.state, order.amount, order.gift_amount) == ("WAITING_FOR_PAYMENT", 50000, 5000)
    assert notify(app, gateway, order.id).text == "success"
    assert app.recharges.wallet.balance(7) == 55000
    with app.uow_factory() as uow:
        entries = uow.session.scalars(select(WalletEntryRow).order_by(WalletEntryRow.id)).all()
    assert [(e.amount, e.reason, e.reference) for e in entries] == [
        (50000, "recharge", f"recharge_order:{order.id}"), (5000, "recharge_gift", f"recharge_order:{order.id}")]


def test_wechat_pay_mode_gives_jsapi_parameters(gateway, token):
    with gateway.client(token(7)) as c:
        data = place(c, payModeId=1).json()["data"]
    assert data["method"] == "jsapi" and data["url"] == ""
    assert dict(parse_qsl(data["body"]))["package"] == "Sign=WXPay"


def test_custom_amount_gets_the_matched_plans_gift(app, gateway, token):
    with gateway.client(token(8)) as c:
        number = place(c, id=0, price="600").json()["data"]["orderNumber"]
    order = order_by_number(app, number)
    assert (order.kind, order.amount, order.gift_amount) == ("custom", 60000, 5000)
    notify(app, gateway, order.id)
    assert app.recharges.wallet.balance(8) == 65000


def test_goods_id_buys_a_vip_package(app, gateway, token):
    with gateway.client(token(8)) as c:
        number = place(c, goodsId=2, price="30").json()["data"]["orderNumber"]
        mismatch = place(c, goodsId=2, price="31").json()
    assert (mismatch["success"], mismatch["code"]) == (False, 1002)
    order = order_by_number(app, number)
    notify(app, gateway, order.id)
    assert app.memberships.ledger.status(8).current_level == "low" and app.recharges.wallet.balance(8) == 3000


def test_recharge_order_failures_use_the_002_envelope(gateway, token):
    with gateway.client() as anonymous:
        r = place(anonymous)
    assert r.status_code == 200
    assert r.json() == {"message": "请先登录", "success": False, "code": 401, "data": None}
    with gateway.client(token(9)) as c:
        mismatch = place(c, id=1, price="27").json()
        unknown_plan = place(c, id=4242, price="27").json()
        invalid = place(c, price="abc", payModeId=77).json()
    assert (mismatch["success"], mismatch["code"], mismatch["data"]) == (False, 1002, None)
    assert (unknown_plan["success"], unknown_plan["code"]) == (False, 404)
    assert (invalid["success"], invalid["code"]) == (False, 400)
    assert set(invalid["data"]["errors"]) == {"price", "payModeId"}


def test_history_filters_pages_and_totals(app, gateway, token):
    with gateway.client(token(10)) as c:
        numbers = [place(c, id=0, price=p).json()["data"]["orderNumber"] for p in ("25.8", "10", "11", "12")]
        orders = [order_by_number(app, n) for n in numbers]
        notify(app, gateway, orders[0].id)
        notify(app, gateway, orders[1].id, status="CLOSED")
        # One older order, created "yesterday" in Asia/Shanghai.
        with app.uow_factory() as uow:
            uow.session.execute(update(RechargeOrderRow).where(RechargeOrderRow.id == orders[3].id)
                                .values(created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=2)))
            uow.commit()
        everything = c.get("/api/recharge/history", params={"page": 1, "rows": 2}).json()
        assert (everything["success"], everything["code"], everything["data"]["total"]) == (True, 0, 4)
        assert [r["orderNumber"] for r in everything["data"]["rows"]] == [numbers[3], numbers[2]]
        page2 = c.get("/api/recharge/history", params={"page": 2, "rows": 2}).json()["data"]
        assert [r["orderNumber"] for r in page2["rows"]] == [numbers[1], numbers[0]] and page2["total"] == 4
        paid = c.get("/api/recharge/history", params={"page": 1, "rows": 10, "orderState": "SUCCESSFUL_PAYMENT"}).json()
        row = paid["data"]["rows"][0]
        assert paid["data"]["total"] == 1
        assert (row["id"], row["amount"], row["state"]) == (orders[0].id, "25.8", "SUCCESSFUL_PAYMENT")
        assert TIME.match(row["createdDate"])
        assert json.loads(row["snapshot"]) == {"title": "25.8元自定义充值", "price": "25.8"}
        failed = c.get("/api/recharge/history", params={"page": 1, "rows": 10, "orderState": "FAILURE_TO_PAY"}).json()
        assert [r["id"] for r in failed["data"]["rows"]] == [orders[1].id]
        waiting = c.get("/api/recharge/history", params={"page": 1, "rows": 10, "orderState": "WAITING_FOR_PAYMENT"})
        assert waiting.json()["data"]["total"] == 2
        today = datetime.now(timezone(timedelta(hours=8))).date()
        recent = c.get("/api/recharge/history", params={"page": 1, "rows": 10, "startDate": str(today - timedelta(days=1)),
                                                        "endDate": str(today)}).json()
        assert recent["data"]["total"] == 3
        old = c.get("/api/recharge/history", params={"page": 1, "rows": 10,
                                                     "endDate": str(today - timedelta(days=1))}).json()
        assert [r["id"] for r in old["data"]["rows"]] == [orders[3].id]
        bad = c.get("/api/recharge/history", params={"page": -1, "rows": 500, "orderState": "PAID",
                                                     "startDate": "yesterday"}).json()
    assert (bad["success"], bad["code"]) == (False, 400)
    assert set(bad["data"]["errors"]) == {"page", "rows", "orderState", "startDate"}
    with gateway.client(token(11)) as other:  # nobody sees another user's orders
        assert other.get("/api/recharge/history", params={"page": 1, "rows": 10}).json()["data"]["total"] == 0


def test_history_needs_login(gateway):
    with gateway.client() as c:
        body = c.get("/api/recharge/history", params={"page": 1, "rows": 10}).json()
    assert (body["success"], body["code"]) == (False, 401)


# ---- notifications ------------------------------------------------------------------


def test_bad_duplicate_and_closing_notifications(app, gateway, token):
    with gateway.client(token(12)) as c:
        order = order_by_number(app, place(c).json()["data"]["orderNumber"])
    forged = app.sandbox.notification_for(order.order_number, order.amount).replace(b"sign=", b"sign=00")
    with gateway.client() as anonymous:
        r = anonymous.post(f"/api/recharge/orders/{order.id}/sandbox-callback", content=forged, headers=FORM)
        assert (r.status_code, r.text) == (400, "fail")
        r = anonymous.post(f"/api/recharge/orders/{order.id}/nosuch-callback", content=forged, headers=FORM)
        assert r.status_code == 404
    assert notify(app, gateway, order.id, amount=order.amount - 1).status_code == 400  # amount mismatch
    assert app.recharges.wallet.balance(12) == 0
    assert notify(app, gateway, order.id).text == "success"
    assert notify(app, gateway, order.id).text == "success"  # duplicate: acknowledged, not credited again
    assert notify(app, gateway, order.id, status="CLOSED").text == "success"  # too late to fail it
    assert app.recharges.wallet.balance(12) == 2800
    assert order_by_number(app, order.order_number).state == "SUCCESSFUL_PAYMENT"


# ---- 003 ------------------------------------------------------------------------


def center(gateway, tok=None, query="s=/api/recharge/center&client=H5", **headers):
    headers.setdefault("storeId", "10001")
    headers.setdefault("platform", "H5")
    if tok:
        headers["Access-Token"] = tok
    with gateway.client(**headers) as c:
        return c.get(f"/index.php?{query}")


def test_recharge_center_has_the_documented_shape(app, gateway, token, channel):
    from vipay.recharge.v1 import wallet_pb2 as wpb
    from vipay.recharge.v1 import wallet_pb2_grpc

    from tests.conftest import auth

    wallet_pb2_grpc.WalletServiceStub(channel).CreditWallet(
        wpb.CreditWalletRequest(user_id=10125, store_id=10001, amount_fen=9165664, reference="import", request_id="r1"),
        metadata=auth(token(1, "service")))
    r = center(gateway, token(10125))
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["message"]) == (200, "success")
    data = body["data"]
    assert data["setting"]["is_entrance"] == 1 and data["setting"]["is_custom"] == 1
    assert data["setting"]["lowest_money"] == 0.01 and data["setting"]["is_match_plan"] == 1
    assert data["setting"]["describe"].startswith("1. 賬戶充值")
    assert data["planList"][1:] == [
        {"plan_id": 10001, "plan_name": "套餐A", "money": "500.00", "gift_money": "50.00"},
        {"plan_id": 10002, "plan_name": "套餐B", "money": "1000.00", "gift_money": "150.00"},
    ]
    assert data["paymentMethods"] == [
        {"key": 1, "method": "wechat", "is_must_template": True, "template_id": 10001, "is_enable": True,
         "is_default": True, "others": [], "client": "H5"},
        {"key": 2, "method": "alipay", "is_must_template": True, "template_id": 10003, "is_enable": True,
         "is_default": False, "others": [], "client": "H5"},
    ]
    personal = data["personal"]
    assert (personal["user_id"], personal["balance"], personal["platform"]) == (10125, "91656.64", "H5")
    assert personal["pay_money"] == "0.00" and personal["expend_money"] == "0.00"
    assert set(personal) == {"user_id", "mobile", "nick_name", "avatar_id", "gender", "address_id", "balance",
                             "points", "pay_money", "expend_money", "grade_id", "platform", "last_login_time"}
    # The store wallet is not the platform wallet.
    assert app.recharges.wallet.balance(10125) == 0


def test_recharge_center_accepts_an_encoded_route_and_filters_methods_by_client(gateway, token):
    body = center(gateway, token(3), query="client=APP&s=%2Fapi%2Frecharge%2Fcenter").json()
    assert body["status"] == 200 and body["data"]["paymentMethods"] == []


def test_recharge_center_errors_use_the_003_envelope(gateway, token):
    anonymous = center(gateway)
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": 401, "message": "请先登录", "data": []}
    no_store = center(gateway, token(3), storeId="")
    assert no_store.status_code == 200 and no_store.json()["status"] == 500
    bad_token = center(gateway, "not-a-jwt")
    assert bad_token.json()["status"] == 401
    unknown_route = center(gateway, token(3), query="s=/api/recharge/nosuch&client=H5")
    assert unknown_route.status_code == 404
    escape = center(gateway, token(3), query="s=/../charge/index")
    assert escape.status_code == 404


# ---- abuse control ------------------------------------------------------------------


def captcha_code(app, user_id):
    with app.uow_factory() as uow:
        return uow.session.scalar(select(CaptchaRow.code).where(CaptchaRow.user_id == user_id)
                                  .order_by(CaptchaRow.id.desc()).limit(1))


def test_rate_limit_asks_for_a_captcha_which_works_once(app, token, limits):
    gateway = limits(per_user=2, per_ip=1000)
    with gateway.client(token(20)) as c:
        assert place(c).json()["success"] and place(c).json()["success"]
        limited = place(c).json()
        assert limited == {"message": limited["message"], "success": False, "code": 1010,
                           "data": {"captchaUrl": "/api/recharge/captcha"}}
        image = c.get("/api/recharge/captcha")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(BytesIO(image.content)).size == (160, 60)
        code = captcha_code(app, 20)
        wrong = place(c, _verifyCode="WRONG").json()
        assert (wrong["success"], wrong["code"]) == (False, 1011)
        assert place(c, _verifyCode=code).json()["code"] == 1011  # the wrong guess used it up
        c.get("/api/recharge/captcha")
        code = captcha_code(app, 20)
        ok = place(c, _verifyCode=code.lower()).json()
        assert (ok["success"], ok["code"]) == (True, 0)
        again = place(c, _verifyCode=code).json()
        assert (again["success"], again["code"]) == (False, 1011)  # reused
    with gateway.client() as anonymous:
        assert anonymous.get("/api/recharge/captcha").json()["code"] == 401


def test_rate_limit_per_client_ip_spans_users(token, limits):
    gateway = limits(per_user=1000, per_ip=3)
    results = []
    for user in (31, 32, 33, 34):
        with gateway.client(token(user)) as c:
            results.append(place(c).json()["code"])
    assert results == [0, 0, 0, 1010]


def test_rate_limit_ignores_a_forged_forwarded_for(token, limits):
    gateway = limits(per_user=1000, per_ip=2)
    codes = []
    for i in range(3):
        with gateway.client(token(40 + i), **{"X-Forwarded-For": f"10.0.0.{i}"}) as c:
            codes.append(place(c).json()["code"])
    assert codes == [0, 0, 1010]


# ---- malformed requests (Envoy's own 400s) --------------------------------------------


def test_malformed_requests_get_each_familys_envelope(gateway, token):
    """Bad JSON, a value of the wrong type or an unknown query parameter never reach
    the server: Envoy answers them, and the gateway puts them in the family's envelope."""
    with gateway.client(token(5)) as c:
        bad_json = c.post("/charge/pay", content=b"{bad", headers={"content-type": "application/json"})
        wrong_type = c.post("/charge/pay", json={"id": "abc", "payType": "ALIPAYCASH"})
        price_number = place(c, price=28)
        bad_page = c.get("/api/recharge/history", params={"page": "abc", "rows": 10})
    for r in (bad_json, wrong_type, price_number, bad_page):
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert bad_json.json() == {"c": 400, "m": "Unexpected end of string. Expected : between key:value pair.",
                               "d": None}
    # Envoy's text names proto types and echoes the input: the gateway says which field instead.
    assert wrong_type.json() == {"c": 400, "m": "The id must be a 32-bit integer.", "d": None}
    assert price_number.json() == {"message": "The price must be a string.", "success": False,
                                   "code": 400, "data": {"errors": {"price": ["The price must be a string."]}}}
    assert (bad_page.json()["success"], bad_page.json()["code"]) == (False, 400)
    assert bad_page.json()["data"] == {"errors": {"page": ["The page must be a 32-bit integer."]}}
    # An unknown query parameter is ignored, as the PHP backends did (issue 18).
    unknown_param = center(gateway, token(3), query="s=/api/recharge/center&client=H5&foo=1")
    known_only = center(gateway, token(3), query="s=/api/recharge/center&client=H5")
    assert unknown_param.status_code == known_only.status_code == 200
    assert unknown_param.json()["status"] == known_only.json()["status"] == 200
    with gateway.client() as anonymous:  # providers read the status: notifications keep Envoy's 400
        r = anonymous.post("/api/recharge/orders/abc/sandbox-callback", content=b"x", headers=FORM)
    assert r.status_code == 400
