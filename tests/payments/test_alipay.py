"""Alipay through the real Envoy: order strings signed with the app key, notifications
signed by the (local) Alipay, alipay.trade.query for orders without a notification."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import pytest
from sqlalchemy import update

from server.membership.tables import VipOrderRow

from .conftest import ALIPAY_APP_ID
from .keys import rsa_verify
from .providers import AlipayTrade, alipay_content

FORM = {"content-type": "application/x-www-form-urlencoded"}


def create(client, pay_method="Alipay_AopApp", **overrides):
    body = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": pay_method}
    body.update(overrides)
    r = client.post("/api/v2/vip/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def notify(gateway, order_id, body, channel="alipay"):
    with gateway.client() as anonymous:
        return anonymous.post(f"/api/v2/vip/orders/{order_id}/{channel}-callback", content=body, headers=FORM)


def state(client, order_id):
    paid = client.get(f"/api/v2/vip/check-order/{order_id}").json()["status"]
    return paid, client.get("/api/v2/vip/membership").json()


def test_app_order_string_is_rsa2_signed_with_the_app_key(real_gateway, token, providers):
    with real_gateway.client(token(1)) as c:
        order = create(c)
    # The order string is the signed pairs URL-encoded, sign last.
    pairs = [tuple(p.split("=", 1)) for p in order["pay_data_alipay"].split("&")]
    assert pairs[-1][0] == "sign"
    fields = {k: unquote_plus(v) for k, v in pairs}
    assert rsa_verify(providers.alipay_app_key.public_key(), alipay_content(fields), fields["sign"])
    assert (fields["app_id"], fields["method"], fields["sign_type"], fields["charset"]) == (
        ALIPAY_APP_ID, "alipay.trade.app.pay", "RSA2", "utf-8")
    assert fields["notify_url"].endswith(f"/api/v2/vip/orders/{order['id']}/alipay-callback")
    biz = json.loads(fields["biz_content"])
    assert biz["out_trade_no"] == order["trade_no"]
    assert biz["total_amount"] == "54.00"  # 5400 fen, in yuan
    assert biz["product_code"] == "QUICK_MSECURITY_PAY" and "time_expire" in biz
    assert order["pay_data"] == order["pay_data_alipay"]
    # A tampered order string no longer verifies (the check above is meaningful).
    fields["biz_content"] = fields["biz_content"].replace("54.00", "0.01")
    assert not rsa_verify(providers.alipay_app_key.public_key(), alipay_content(fields), fields["sign"])


@pytest.mark.parametrize("method,api,product", [
    ("Alipay_AopWap", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
    ("Alipay_AopPage", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
])
def test_wap_and_page_are_signed_redirect_urls_to_the_gateway(real_gateway, token, providers, method, api, product):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method=method)
    url = urlsplit(order["pay_data_alipay"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == providers.alipay.gateway
    fields = dict(parse_qsl(url.query))
    assert providers.alipay.verify_request(fields)
    assert fields["method"] == api and json.loads(fields["biz_content"])["product_code"] == product


def test_signed_notification_pays_once_and_grants_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c)
        assert state(c, order["id"])[0] is False
        body = providers.alipay.notification(order["trade_no"], "54.00")
        r = notify(real_gateway, order["id"], body)
        assert (r.status_code, r.text) == (200, "success")
        # Alipay re-sends until it reads `success`: duplicates are acknowledged, not re-granted.
        again = notify(real_gateway, order["id"], body)
        assert (again.status_code, again.text) == (200, "success")
        finished = notify(real_gateway, order["id"],
                          providers.alipay.notification(order["trade_no"], "54.00", "TRADE_FINISHED"))
        assert finished.text == "success"
        paid, me = state(c, order["id"])
    assert paid is True and me["current_level"] == "middle"
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1


def test_concurrent_duplicate_notifications_grant_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c)
    body = providers.alipay.notification(order["trade_no"], "54.00")
    replies = []

    def send():
        replies.append(notify(real_gateway, order["id"], body).text)

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == ["success"] * 12
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1


@pytest.mark.parametrize("case", ["tampered", "amount", "app_id", "seller_id", "unsigned", "other_key", "waiting"])
def test_bad_notifications_change_nothing_and_make_alipay_retry(real_gateway, token, providers, case):
    from .keys import rsa_key, rsa_sign

    with real_gateway.client(token(1)) as c:
        order = create(c)
        trade_no = order["trade_no"]
        if case == "tampered":  # signed for 0.01, then the amount edited
            body = providers.alipay.notification(trade_no, "0.01").replace(b"total_amount=0.01", b"total_amount=54.00")
        elif case == "amount":  # authentic, but not what the order costs
            body = providers.alipay.notification(trade_no, "0.01")
        elif case == "app_id":
            body = providers.alipay.notification(trade_no, "54.00", app_id="2021999999999999")
        elif case == "seller_id":
            body = providers.alipay.notification(trade_no, "54.00", seller_id="2088999999999999")
        elif case == "unsigned":
            body = b"&".join(p for p in providers.alipay.notification(trade_no, "54.00").split(b"&")
                             if not p.startswith(b"sign="))
        elif case == "other_key":  # signed by someone who is not Alipay
            fields = dict(parse_qsl(providers.alipay.notification(trade_no, "54.00").decode()))
            fields["sign"] = rsa_sign(rsa_key(), alipay_content(fields, drop=("sign", "sign_type")))
            from urllib.parse import urlencode

            body = urlencode(fields).encode()
        else:  # authentic, but not paid
            body = providers.alipay.notification(trade_no, "54.00", "WAIT_BUYER_PAY")
        r = notify(real_gateway, order["id"], body)
        paid, me = state(c, order["id"])
    if case == "waiting":
        assert r.text == "success"  # a true statement that nothing was paid: stop retrying
    else:
        assert r.text != "success"  # anything else: Alipay retries
    assert paid is False and me["is_vip"] is False


def test_notification_for_another_order_or_channel_is_refused(real_gateway, token, providers):
    with real_gateway.client(token(1)) as c:
        first, second = create(c), create(c)
        body = providers.alipay.notification(first["trade_no"], "54.00")
        assert notify(real_gateway, second["id"], body).text != "success"
        assert notify(real_gateway, first["id"], body, channel="wechat").status_code == 400
        assert notify(real_gateway, first["id"], body, channel="sandbox").status_code == 400
        assert state(c, first["id"])[0] is False and state(c, second["id"])[0] is False


def _age(real_app, order_id, minutes):
    with real_app.uow_factory() as uow:
        uow.session.execute(update(VipOrderRow).where(VipOrderRow.id == order_id).values(
            created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=minutes)))
        uow.commit()


def test_requery_settles_an_order_whose_notification_never_came(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        paid_order, unknown_order = create(c), create(c)
        _age(real_app, paid_order["id"], 5)
        _age(real_app, unknown_order["id"], 5)
        providers.alipay.trades[paid_order["trade_no"]] = AlipayTrade(paid_order["trade_no"], "54.00", "TRADE_SUCCESS")
        report = real_app.settlement.run_once()
        assert (report.queried, report.settled_paid, report.failed) == (2, 1, 0)
        assert providers.alipay.rejected == []  # our query requests were signed correctly
        assert state(c, paid_order["id"])[0] is True and state(c, unknown_order["id"])[0] is False
        # Claimed rows are not asked again within the interval, and a late notification is a no-op.
        assert real_app.settlement.run_once().queried == 0
        late = notify(real_gateway, paid_order["id"], providers.alipay.notification(paid_order["trade_no"], "54.00"))
        assert late.text == "success"
    assert real_app.memberships.ledger.count_grants(str(paid_order["id"])) == 1


def test_requery_with_a_wrong_amount_does_not_pay(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c)
        _age(real_app, order["id"], 5)
        providers.alipay.trades[order["trade_no"]] = AlipayTrade(order["trade_no"], "0.01", "TRADE_SUCCESS")
        assert real_app.settlement.run_once().settled_paid == 0
        assert state(c, order["id"])[0] is False


def test_unpaid_orders_close_after_the_configured_time(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        old, young = create(c), create(c)
    _age(real_app, old["id"], real_app.settings.order_close_minutes + 1)
    _age(real_app, young["id"], 5)
    report = real_app.settlement.run_once()
    assert report.closed == 1
    with real_app.uow_factory() as uow:
        assert uow.session.get(VipOrderRow, old["id"]).closed_at is not None
        assert uow.session.get(VipOrderRow, young["id"]).closed_at is None
