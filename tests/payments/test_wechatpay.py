"""WeChat Pay v3 through the real Envoy: orders created at the (local) WeChat Pay with
signed requests, App/JSAPI client parameters signed with the merchant key, signed
and encrypted notifications, and the v3 query for orders without a notification."""

from __future__ import annotations

import threading
import time

import pytest

from server.payments.channels import ChannelUnavailable, PaymentRequest
from server.payments.wechatpay import WechatPayChannel

from . import keys
from .conftest import (
    WECHAT_APPID,
    WECHAT_JS_APPID,
    WECHAT_MCHID,
    WECHAT_MERCHANT_SERIAL,
    WECHAT_PUBLIC_KEY_ID,
)
from .test_alipay import _age, create, state

APP_KEYS = {"appid", "partnerid", "prepayid", "package", "noncestr", "timestamp", "sign"}


def notify(gateway, order_id, body, headers):
    with gateway.client() as anonymous:
        return anonymous.post(f"/api/v2/vip/orders/{order_id}/wechat-callback", content=body, headers=headers)


def test_app_order_is_created_with_a_signed_request_and_signed_client_params(real_gateway, token, providers):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_App")
    params = order["pay_data_wechat"]
    assert set(params) >= APP_KEYS and set(order["pay_data"]) == APP_KEYS
    assert params["appid"] == WECHAT_APPID and params["partnerid"] == WECHAT_MCHID
    assert params["package"] == "Sign=WXPay" and isinstance(params["timestamp"], int)
    assert abs(params["timestamp"] - time.time()) < 60
    sent = providers.wechat.orders[order["trade_no"]]  # what reached WeChat Pay (its Authorization verified)
    assert params["prepayid"] == sent["prepay_id"] and providers.wechat.rejected == []
    assert sent["amount"] == {"total": 5400, "currency": "CNY"} and sent["mchid"] == WECHAT_MCHID
    assert sent["notify_url"].endswith(f"/api/v2/vip/orders/{order['id']}/wechat-callback")
    assert "time_expire" in sent
    message = f"{params['appid']}\n{params['timestamp']}\n{params['noncestr']}\n{params['prepayid']}\n"
    assert keys.rsa_verify(providers.wechat_merchant_key.public_key(), message, params["sign"])
    assert not keys.rsa_verify(providers.wechat_merchant_key.public_key(), message.replace("wx", "wy"), params["sign"])


def test_jsapi_parameters(real_gateway, token, providers):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_Js", openid="o_payer_1")
        refused = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                                     "pay_method": "WechatPay_Js"})
    params = order["pay_data"]
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == WECHAT_JS_APPID and params["signType"] == "RSA"
    sent = providers.wechat.orders[order["trade_no"]]
    assert params["package"] == f"prepay_id={sent['prepay_id']}" and sent["payer"] == {"openid": "o_payer_1"}
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert keys.rsa_verify(providers.wechat_merchant_key.public_key(), message, params["paySign"])
    wechat = order["pay_data_wechat"]
    assert (wechat["appId"], wechat["timeStamp"], wechat["paySign"]) == (
        params["appId"], params["timeStamp"], params["paySign"])
    assert refused.status_code == 503  # no openid: the channel cannot open a JSAPI payment
    assert refused.json()["message"]


def test_a_wrong_merchant_key_is_refused_by_wechat_pay(providers):
    """The stand-in checks our Authorization header: signing with another key fails."""
    channel = WechatPayChannel(
        mchid=WECHAT_MCHID, appid=WECHAT_APPID, js_appid=WECHAT_JS_APPID, merchant_serial_no=WECHAT_MERCHANT_SERIAL,
        private_key=keys.private_pem(keys.rsa_key()), apiv3_key=providers.apiv3_key,
        public_key_id=WECHAT_PUBLIC_KEY_ID, public_key=keys.public_pem(providers.wechat_platform_key),
        api_base=providers.wechat.url,
    )
    request = PaymentRequest("20261121000000000MO1", 5400, "会员", "WechatPay_App", "http://gateway.invalid/x")
    with pytest.raises(ChannelUnavailable):
        channel.create_payment(request)
    assert providers.wechat.rejected == ["/v3/pay/transactions/app"]


def test_answers_not_signed_by_wechat_pay_are_refused(providers):
    channel = WechatPayChannel(
        mchid=WECHAT_MCHID, appid=WECHAT_APPID, js_appid="", merchant_serial_no=WECHAT_MERCHANT_SERIAL,
        private_key=keys.private_pem(providers.wechat_merchant_key), apiv3_key=providers.apiv3_key,
        public_key_id=WECHAT_PUBLIC_KEY_ID, public_key=keys.public_pem(keys.rsa_key()),  # not WeChat Pay's key
        api_base=providers.wechat.url,
    )
    with pytest.raises(ChannelUnavailable):
        channel.create_payment(PaymentRequest("20261121000000000MO2", 5400, "会员", "WechatPay_App", "http://x/y"))


def test_signed_notification_pays_once_and_answers_204(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_App")
        providers.wechat.paid[order["trade_no"]] = "4200000000202611210000000001"
        body, headers = providers.wechat.notification(providers.wechat.transaction(order["trade_no"]))
        r = notify(real_gateway, order["id"], body, headers)
        assert (r.status_code, r.content) == (204, b"")
        again = notify(real_gateway, order["id"], body, headers)  # WeChat Pay re-sends: acknowledged, not re-granted
        assert again.status_code == 204
        paid, me = state(c, order["id"])
    assert paid is True and me["current_level"] == "middle"
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1


def test_notification_signed_with_the_platform_certificate_is_accepted(real_gateway, token, providers):
    """During a switch from platform certificates to the public key both are valid,
    chosen by Wechatpay-Serial."""
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_App")
        providers.wechat.paid[order["trade_no"]] = "4200000000202611210000000002"
        body, headers = providers.wechat.notification(providers.wechat.transaction(order["trade_no"]),
                                                      key=providers.wechat_cert_key,
                                                      serial=providers.wechat_cert_serial)
        assert notify(real_gateway, order["id"], body, headers).status_code == 204
        assert state(c, order["id"])[0] is True


def test_concurrent_duplicate_notifications_grant_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_App")
    providers.wechat.paid[order["trade_no"]] = "4200000000202611210000000003"
    body, headers = providers.wechat.notification(providers.wechat.transaction(order["trade_no"]))
    codes = []
    threads = [threading.Thread(target=lambda: codes.append(notify(real_gateway, order["id"], body, headers).status_code))
               for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [204] * 12
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1


@pytest.mark.parametrize("case", ["tampered", "amount", "appid", "mchid", "stale", "serial", "apiv3_key", "other_key"])
def test_bad_notifications_change_nothing_and_answer_fail(real_gateway, token, providers, case):
    w = providers.wechat
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_App")
        w.paid[order["trade_no"]] = "4200000000202611210000000004"
        txn = w.transaction(order["trade_no"])
        if case == "tampered":
            body, headers = w.notification(txn)
            body = body.replace(b'"summary": "\xe6', b'"summary": "X\xe6')  # any byte changed after signing
            assert b'"summary": "X' in body
        elif case == "amount":
            body, headers = w.notification(w.transaction(order["trade_no"], amount={"total": 1, "currency": "CNY"}))
        elif case == "appid":
            body, headers = w.notification(w.transaction(order["trade_no"], appid="wx_someone_else"))
        elif case == "mchid":
            body, headers = w.notification(w.transaction(order["trade_no"], mchid="1900009999"))
        elif case == "stale":  # authentic, but signed 6 minutes ago (a replay)
            body, headers = w.notification(txn, timestamp=int(time.time()) - 360)
        elif case == "serial":
            body, headers = w.notification(txn, serial="PUB_KEY_ID_UNKNOWN")
        elif case == "apiv3_key":
            body, headers = w.notification(txn, apiv3_key="0" * 32)
        else:
            body, headers = w.notification(txn, key=keys.rsa_key())
        assert body != w.notification(txn)[0]
        r = notify(real_gateway, order["id"], body, headers)
        paid, me = state(c, order["id"])
    assert 400 <= r.status_code < 600
    assert r.json()["code"] == "FAIL" and r.json()["message"]
    assert paid is False and me["is_vip"] is False


def test_requery_settles_a_paid_order_without_notification(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        paid_order, unpaid_order = create(c, pay_method="WechatPay_App"), create(c, pay_method="WechatPay_App")
        _age(real_app, paid_order["id"], 5)
        _age(real_app, unpaid_order["id"], 5)
        providers.wechat.paid[paid_order["trade_no"]] = "4200000000202611210000000005"
        report = real_app.settlement.run_once()
        assert (report.queried, report.settled_paid, report.failed) == (2, 1, 0)
        assert providers.wechat.rejected == []
        assert state(c, paid_order["id"])[0] is True and state(c, unpaid_order["id"])[0] is False
    assert real_app.memberships.ledger.count_grants(str(paid_order["id"])) == 1


def test_jsapi_order_is_paid_by_a_notification_naming_the_jsapi_appid(real_gateway, token, providers, real_app):
    """A JSAPI payment is made under the official-account appid, not the app's: its
    notification must be accepted for the order (and another appid still refused)."""
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="WechatPay_Js", openid="o_payer_1")
        providers.wechat.paid[order["trade_no"]] = "4200000000202611210000000006"
        txn = providers.wechat.transaction(order["trade_no"])
        assert txn["appid"] == WECHAT_JS_APPID and txn["trade_type"] == "JSAPI"
        body, headers = providers.wechat.notification(txn)
        assert notify(real_gateway, order["id"], body, headers).status_code == 204
        assert state(c, order["id"])[0] is True
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1
