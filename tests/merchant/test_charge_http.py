"""POST /v1/openapi/order/VIPCharge and the signed queries, through the real Envoy
with the reference client: the success path, every refusal (with its documented
status and no state change), idempotency and concurrency."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from clients.merchant_client import CHARGE_PATH, MerchantClient
from server.merchant.signing import generate_rsa_keypair
from server.merchant.tables import MerchantBalanceEntryRow, MerchantOrderRow

from .conftest import ACCOUNT, PRICE_FEN, USER_ID, Merchant, make_merchant, nonce_count, snapshot


def body_of(client: MerchantClient, biz_code: str = "87103", **overrides) -> dict:
    body = client.charge_body("87103", ACCOUNT, biz_code, mobile="15012616978")
    body.update(overrides)
    return body


def send_raw(client: MerchantClient, body: bytes, headers: dict) -> dict:
    reply = client.http.post(client.base_url + CHARGE_PATH, content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_charge_succeeds_debits_grants_and_answers_the_documented_shape(app, merchant, client_for):
    client = client_for(merchant)
    before = snapshot(app)
    reply = client.post(CHARGE_PATH, body_of(client))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"status", "message", "data"}
    assert body["status"] == 200 and body["message"] == "success"
    data = body["data"]
    assert set(data) == {"orderCode", "bizCode", "account", "settlementPrice"}
    assert re.fullmatch(r"VC\d{14}[0-9A-F]{10}", data["orderCode"])
    assert (data["bizCode"], data["account"], data["settlementPrice"]) == ("87103", ACCOUNT, 4.51)

    after = snapshot(app)
    assert after.balances["166"] == before.balances["166"] - PRICE_FEN
    assert (after.orders, after.grants) == (before.orders + 1, before.grants + 1)
    view = app.memberships.ledger.status(USER_ID)
    assert view.current_level == "middle"
    with app.uow_factory() as uow:
        order = uow.session.scalar(select(MerchantOrderRow))
        ledger = uow.session.scalars(select(MerchantBalanceEntryRow).order_by(MerchantBalanceEntryRow.id)).all()
    assert (order.state, order.user_id, order.settlement_price_fen) == ("success", USER_ID, PRICE_FEN)
    assert [(e.kind, e.amount_fen, e.balance_after_fen) for e in ledger] == [
        ("topup", 10_000, 10_000), ("charge", -PRICE_FEN, 10_000 - PRICE_FEN)]


def test_md5_signed_charge_succeeds(app, merchant, client_for):
    client = client_for(merchant, md5=True)
    assert client.sign_type == "MD5"
    assert client.vip_charge("87103", ACCOUNT, "md5-1")["status"] == 200
    assert snapshot(app).balances["166"] == 10_000 - PRICE_FEN


def test_same_request_again_returns_the_same_order_once(app, merchant, client_for):
    client = client_for(merchant)
    first = client.post(CHARGE_PATH, body_of(client)).json()
    again = client.post(CHARGE_PATH, body_of(client)).json()  # a retry: new nonce, same order
    assert again == first
    after = snapshot(app)
    assert (after.orders, after.grants, after.balances["166"]) == (1, 1, 10_000 - PRICE_FEN)


# ---- refusals: documented status, nothing changed ----------------------------------------


def forged(client, body):
    raw = json.dumps(body).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    headers["sign"] = base64.b64encode(secrets.token_bytes(256)).decode()
    return raw, headers


def wrong_key(client, body):
    raw = json.dumps(body).encode()
    impostor = MerchantClient(client.base_url, client.merchant_id, client.business_id,
                              private_key_pem=generate_rsa_keypair()[0])
    return raw, impostor.signed_headers(CHARGE_PATH, raw)


def md5_wrong_secret(client, body):
    raw = json.dumps(body).encode()
    impostor = MerchantClient(client.base_url, client.merchant_id, client.business_id, md5_secret="guessed-secret")
    return raw, impostor.signed_headers(CHARGE_PATH, raw)


def stale(client, body):
    raw = json.dumps(body).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw, timestamp=str(int(time.time() * 1000) - 301_000))


def future(client, body):
    raw = json.dumps(body).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw, timestamp=str(int(time.time() * 1000) + 301_000))


def tampered(client, body):
    raw = json.dumps(body).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    return json.dumps(dict(body, account="someone-else")).encode(), headers


def body_business_mismatch(client, body):
    raw = json.dumps(dict(body, businessId="1661")).encode()  # another of ITS businessIds, but not the header's
    return raw, client.signed_headers(CHARGE_PATH, raw)


def other_merchants_business(client, body):
    raw = json.dumps(dict(body, merchantId="177", businessId="177")).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw)


def unknown_product(client, body):
    raw = json.dumps(dict(body, productCode="99999")).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw)


def missing_field(client, body):
    raw = json.dumps({k: v for k, v in body.items() if k != "account"}).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw)


def unknown_field(client, body):
    raw = json.dumps(dict(body, amount="0.01")).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw)


def duplicate_key(client, body):
    raw = json.dumps(body).encode()[:-1] + b',"account":"someone-else"}'
    return raw, client.signed_headers(CHARGE_PATH, raw)


def no_sign(client, body):
    raw = json.dumps(body).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    del headers["sign"]
    return raw, headers


def schemeless_callback_url(client, body):
    # The callbackUrl of api-docs/004's own example has no scheme: refused, not guessed.
    raw = json.dumps(dict(body, callbackUrl="www.xn---xn--qw5a-974y451i.co")).encode()
    return raw, client.signed_headers(CHARGE_PATH, raw)


def unknown_business(client, body):
    raw = json.dumps(dict(body, businessId="999")).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    headers["businessId"] = "999"
    return raw, headers


REFUSALS = [
    (forged, 4004), (wrong_key, 4004), (md5_wrong_secret, 4004), (stale, 4002), (future, 4002),
    (tampered, 4004), (body_business_mismatch, 4006), (other_merchants_business, 4006), (unknown_product, 4009),
    (missing_field, 4001), (unknown_field, 4001), (duplicate_key, 4001), (no_sign, 4001), (unknown_business, 4007),
    (schemeless_callback_url, 4001),
]


@pytest.mark.parametrize("attack,status", REFUSALS, ids=[a.__name__ for a, _ in REFUSALS])
def test_refusals_answer_their_status_and_change_nothing(app, merchant, other_merchant, client_for, attack, status):
    client = client_for(merchant)
    before = snapshot(app)
    raw, headers = attack(client, body_of(client))
    reply = send_raw(client, raw, headers)
    assert reply["status"] == status, reply
    assert reply["data"] is None and reply["message"]
    assert snapshot(app) == before
    assert app.memberships.ledger.status(USER_ID).levels == {}


def test_signature_failures_do_not_consume_the_nonce(app, merchant, client_for):
    client = client_for(merchant)
    raw, headers = forged(client, body_of(client))
    assert send_raw(client, raw, headers)["status"] == 4004
    assert nonce_count(app) == 0


def test_replayed_nonce_is_refused(app, merchant, client_for):
    client = client_for(merchant)
    raw = json.dumps(body_of(client)).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    assert send_raw(client, raw, headers)["status"] == 200
    before = snapshot(app)
    replay = send_raw(client, raw, headers)
    assert replay["status"] == 4003 and replay["data"] is None
    # even with a new body signed under the same nonce
    raw2 = json.dumps(body_of(client, "other-biz")).encode()
    assert send_raw(client, raw2, client.signed_headers(CHARGE_PATH, raw2, nonce=headers["nonce"]))["status"] == 4003
    assert snapshot(app) == before


def test_nonce_is_per_business_id(app, merchant, client_for):
    a, b = client_for(merchant), client_for(merchant, business_id="1661")
    nonce = secrets.token_hex(8)
    assert a.vip_charge("87103", ACCOUNT, "n-1", nonce=nonce)["status"] == 200
    assert b.vip_charge("87103", ACCOUNT, "n-2", nonce=nonce)["status"] == 200


def test_refused_request_consumes_its_nonce_so_it_cannot_succeed_later(app, merchant, client_for):
    app.openapi.registry.set_product("166", "87103", "middle", 3, 20_000)  # more than the balance
    client = client_for(merchant)
    raw = json.dumps(body_of(client)).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    assert send_raw(client, raw, headers)["status"] == 4011
    app.openapi.registry.top_up("166", 50_000)
    assert send_raw(client, raw, headers)["status"] == 4003
    assert snapshot(app).orders == 0


def test_insufficient_balance_is_refused(app, client_for):
    poor = make_merchant(app, "188", ["188"], balance_fen=PRICE_FEN - 1)
    client = client_for(poor)
    before = snapshot(app)
    reply = client.vip_charge("87103", ACCOUNT, "b-1")
    assert reply == {"status": 4011, "message": "insufficient balance", "data": None}
    assert snapshot(app) == before


def test_biz_code_reused_with_other_parameters_is_refused(app, merchant, client_for):
    client = client_for(merchant)
    assert client.vip_charge("87103", ACCOUNT, "dup")["status"] == 200
    before = snapshot(app)
    reply = client.vip_charge("87103", "another-account", "dup")
    assert reply["status"] == 4010 and reply["data"] is None
    assert snapshot(app) == before


def test_another_merchants_biz_code_is_neither_visible_nor_shared(app, merchant, other_merchant, client_for):
    a, b = client_for(merchant), client_for(other_merchant)
    app.openapi.registry.link_account("acc-b", 7)
    created = a.vip_charge("87103", ACCOUNT, "shared-code")["data"]
    before = snapshot(app)
    # B cannot see A's order by A's bizCode or A's orderCode...
    assert b.query_order(biz_code="shared-code")["status"] == 4040
    assert b.query_order(order_code=created["orderCode"])["status"] == 4040
    assert snapshot(app) == before
    # ...and the same bizCode at B is B's own, new order, paid from B's balance.
    mine = b.vip_charge("87103", "acc-b", "shared-code")
    assert mine["status"] == 200 and mine["data"]["orderCode"] != created["orderCode"]
    after = snapshot(app)
    assert after.balances == {"166": before.balances["166"], "177": before.balances["177"] - PRICE_FEN}


def test_disabled_merchant_and_disabled_product_are_refused(app, merchant, client_for):
    client = client_for(merchant)
    app.openapi.registry.set_state("166", active=False)
    before = snapshot(app)
    assert client.vip_charge("87103", ACCOUNT, "d-1")["status"] == 4008
    app.openapi.registry.set_state("166", active=True)
    app.openapi.registry.set_product("166", "87103", "middle", 3, PRICE_FEN, enabled=False)
    assert client.vip_charge("87103", ACCOUNT, "d-2")["status"] == 4009
    assert snapshot(app) == before


def test_md5_refused_when_the_merchant_has_no_secret(app, client_for):
    reg = app.openapi.registry
    keys = reg.create("199", "rsa only", ["199"], rsa=True, md5=False)
    assert keys.md5_secret is None and keys.rsa_private_key
    reg.set_product("199", "87103", "middle", 3, PRICE_FEN)
    reg.top_up("199", 1_000)
    before = snapshot(app)
    client = client_for(Merchant("199", "199", keys.rsa_private_key, "guessed"), md5=True)
    assert client.vip_charge("87103", ACCOUNT, "m-1")["status"] == 4005
    assert snapshot(app) == before


def test_unknown_account_is_a_failed_order_refunded(app, merchant, client_for):
    client = client_for(merchant)
    reply = client.vip_charge("87103", "nobody", "u-1")
    assert reply["status"] == 4012 and reply["data"]["account"] == "nobody"
    after = snapshot(app)
    assert (after.orders, after.grants, after.balances["166"]) == (1, 0, 10_000)
    order = client.query_order(biz_code="u-1")["data"]
    assert (order["state"], order["failReason"]) == ("failed", "account not found")
    with app.uow_factory() as uow:
        kinds = [e.kind for e in uow.session.scalars(select(MerchantBalanceEntryRow).order_by(MerchantBalanceEntryRow.id))]
    assert kinds == ["topup", "charge", "refund"]


def test_query_order_and_balance(app, merchant, client_for):
    client = client_for(merchant)
    created = client.vip_charge("87103", ACCOUNT, "q-1", mobile="15012616978")["data"]
    by_biz = client.query_order(biz_code="q-1")
    by_code = client.query_order(order_code=created["orderCode"])
    assert by_biz == by_code and by_biz["status"] == 200
    order = by_biz["data"]
    assert order["orderCode"] == created["orderCode"] and order["state"] == "success"
    assert (order["productCode"], order["businessId"], order["mobile"], order["settlementPrice"]) == (
        "87103", "166", "15012616978", 4.51)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", order["finishedAt"])
    assert order["callbackState"] == ""  # no callbackUrl anywhere: nothing to push
    assert client.balance() == {"status": 200, "message": "success",
                                "data": {"merchantId": "166", "balance": (10_000 - PRICE_FEN) / 100}}
    assert client.query_order()["status"] == 4001


# ---- concurrency ----------------------------------------------------------------------


def test_concurrent_orders_never_overdraw_a_small_balance(app, client_for):
    small = make_merchant(app, "211", ["211"], balance_fen=3 * PRICE_FEN + 100)
    app.openapi.registry.link_account(ACCOUNT, USER_ID)
    client = client_for(small)
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda i: client.vip_charge("87103", ACCOUNT, f"c-{i}"), range(12)))
    statuses = sorted(r["status"] for r in replies)
    assert statuses == [200] * 3 + [4011] * 9
    after = snapshot(app)
    assert after.balances["211"] == 100 and after.orders == 3 and after.grants == 3


def test_concurrent_identical_requests_create_one_order(app, merchant, client_for):
    client = client_for(merchant)
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: client.vip_charge("87103", ACCOUNT, "same"), range(10)))
    assert all(r["status"] == 200 for r in replies), replies
    assert len({r["data"]["orderCode"] for r in replies}) == 1
    after = snapshot(app)
    assert (after.orders, after.grants, after.balances["166"]) == (1, 1, 10_000 - PRICE_FEN)


def test_concurrent_replays_of_one_signed_request_are_accepted_once(app, merchant, client_for):
    client = client_for(merchant)
    raw = json.dumps(body_of(client)).encode()
    headers = client.signed_headers(CHARGE_PATH, raw)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: send_raw(client, raw, headers), range(8)))
    assert sorted(r["status"] for r in replies) == [200] + [4003] * 7
    assert snapshot(app).orders == 1


def test_nonces_older_than_the_window_are_purged(app, merchant, client_for):
    from datetime import timedelta

    from sqlalchemy import update

    from server.merchant.tables import MerchantNonceRow

    client = client_for(merchant)
    assert client.vip_charge("87103", ACCOUNT, "p-1")["status"] == 200
    assert client.vip_charge("87103", ACCOUNT, "p-2")["status"] == 200
    with app.uow_factory() as uow:
        first = uow.session.scalars(select(MerchantNonceRow).order_by(MerchantNonceRow.created_at)).first()
        uow.session.execute(update(MerchantNonceRow).where(MerchantNonceRow.nonce == first.nonce)
                            .values(created_at=first.created_at - timedelta(minutes=16)))
        uow.commit()
    assert app.openapi.charges.purge_nonces() == 1
    assert nonce_count(app) == 1
