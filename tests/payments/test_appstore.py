"""The App Store through the real Envoy: StoreKit 2 signed transactions verified
against our test root CA (Apple's OIDs), legacy receipts resolved through the
(local) App Store Server API, and Server Notifications V2 taking refunds back."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import asn1
import jwt
import pytest

from server.payments.appstore import account_token

from . import keys
from .conftest import APPLE_BUNDLE_ID
from .test_alipay import create, state

PRODUCT = "203"  # middle, 3 months (the demo catalog's iap id)


def sign(payload: dict, chain: keys.AppleChain) -> str:
    return jwt.encode(payload, chain.leaf_key, algorithm="ES256", headers={"x5c": chain.x5c})


def transaction(user_id: int, txn_id: str | None = None, **overrides) -> dict:
    now = int(time.time() * 1000)
    txn_id = txn_id or str(2000000000000000 + uuid.uuid4().int % 10**12)
    payload = {
        "transactionId": txn_id, "originalTransactionId": txn_id, "bundleId": APPLE_BUNDLE_ID,
        "productId": PRODUCT, "purchaseDate": now, "originalPurchaseDate": now, "quantity": 1,
        "type": "Non-Renewing Subscription", "appAccountToken": account_token(user_id),
        "inAppOwnershipType": "PURCHASED", "signedDate": now, "environment": "Sandbox",
        "transactionReason": "PURCHASE", "storefront": "CHN", "storefrontId": "143465", "price": 60000,
        "currency": "CNY",
    }
    payload.update(overrides)
    return payload


def check(client, order_id, receipt):
    return client.post(f"/api/v2/vip/check-iap-result/{order_id}", json={"receipt": receipt})


def test_signed_transaction_pays_the_order_once(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        jws = sign(transaction(1), providers.apple)
        r = check(c, order["id"], jws)
        assert r.status_code == 200, r.text
        assert r.json()["pay_status"] == 1 and r.json()["id"] == order["id"]
        assert check(c, order["id"], jws).status_code == 200  # the same order again: already paid, no change
        paid, me = state(c, order["id"])
        assert paid is True and me["current_level"] == "middle"
        # The same transaction for a second order of the same user is refused: redeemed once, ever.
        second = create(c, pay_method="Iap")
        replay = check(c, second["id"], jws)
        assert replay.status_code >= 400 and state(c, second["id"])[0] is False
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1
    assert real_app.memberships.ledger.count_grants(str(second["id"])) == 0


def test_concurrent_checks_of_one_transaction_on_two_orders_pay_one(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        orders = [create(c, pay_method="Iap") for _ in range(2)]
    jws = sign(transaction(1), providers.apple)
    codes = []

    def send(order_id):
        with real_gateway.client(token(1)) as client:
            r = check(client, order_id, jws)
            codes.append(r.status_code if r.status_code == 200 else r.json()["message"])

    threads = [threading.Thread(target=send, args=(o["id"],)) for o in orders for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grants = [real_app.memberships.ledger.count_grants(str(o["id"])) for o in orders]
    assert sorted(grants) == [0, 1]
    assert codes.count(200) == 3  # the winning order answers 200 each time
    # The other order: "already redeemed" (api-docs/001 answers IAP failures with 500),
    # never an unhandled error.
    assert [c for c in codes if c != 200] == ["This purchase was already redeemed."] * 3


@pytest.mark.parametrize("case", ["product", "account", "no_account", "bundle", "environment", "untrusted_root",
                                  "leaf_oid", "tampered", "revoked", "garbage"])
def test_bad_transactions_are_refused_and_change_nothing(real_gateway, token, providers, case):
    chain = providers.apple
    payload = transaction(1)
    if case == "product":
        payload["productId"] = "303"
    elif case == "account":
        payload["appAccountToken"] = account_token(2)  # bought by user 2
    elif case == "no_account":
        del payload["appAccountToken"]
    elif case == "bundle":
        payload["bundleId"] = "com.example.other"
    elif case == "environment":
        payload["environment"] = "Production"
    elif case == "untrusted_root":
        chain = keys.apple_chain()  # same shape, another root
    elif case == "leaf_oid":
        chain = keys.apple_chain(leaf_oid="1.2.3.4", root=(providers.apple.root_key, providers.apple.root))
    elif case == "revoked":
        payload["revocationDate"] = payload["signedDate"]
        payload["revocationReason"] = 0
    jws = sign(payload, chain)
    if case == "tampered":
        head, body, sig = jws.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["productId"] = PRODUCT
        claims["transactionId"] = "1"
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        jws = ".".join((head, body, sig))
    elif case == "garbage":
        jws = base64.b64encode(b"not a receipt").decode()
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        r = check(c, order["id"], jws)
        paid, me = state(c, order["id"])
    assert r.status_code >= 400 and r.json()["message"]
    assert paid is False and me["is_vip"] is False


def legacy_transaction_receipt(transaction_id: str) -> str:
    """The pre-iOS 7 per-transaction receipt: a base64 plist-like text whose
    purchase-info (base64 again) holds the transaction id."""
    info = base64.b64encode(f'{{\n\t"transaction-id" = "{transaction_id}";\n\t"product-id" = "{PRODUCT}";\n}}'
                            .encode()).decode()
    return base64.b64encode(f'{{\n\t"signature" = "AAAA";\n\t"purchase-info" = "{info}";\n}}'.encode()).decode()


def _der(build) -> bytes:
    encoder = asn1.Encoder()
    encoder.start()
    build(encoder)
    return encoder.output()


def _attribute(e, kind: int, value: bytes) -> None:
    e.enter(asn1.Numbers.Sequence)
    e.write(kind, asn1.Numbers.Integer)
    e.write(1, asn1.Numbers.Integer)
    e.write(value, asn1.Numbers.OctetString)
    e.leave()


def legacy_app_receipt(transaction_id: str) -> str:
    """A unified app receipt: PKCS#7 signedData whose content is the receipt
    attribute SET; attribute 17 (in-app) holds 1703 (transaction id). The PKCS#7
    signature is not needed: the id is only used to ask the App Store."""
    txn = _der(lambda e: e.write(transaction_id, asn1.Numbers.UTF8String))
    in_app = _der(lambda e: (e.enter(asn1.Numbers.Set), _attribute(e, 1703, txn), e.leave()))
    bundle = _der(lambda e: e.write(APPLE_BUNDLE_ID, asn1.Numbers.UTF8String))
    payload = _der(lambda e: (e.enter(asn1.Numbers.Set), _attribute(e, 2, bundle), _attribute(e, 17, in_app),
                              e.leave()))

    def pkcs7(e):
        e.enter(asn1.Numbers.Sequence)
        e.write("1.2.840.113549.1.7.2", asn1.Numbers.ObjectIdentifier)
        e.enter(0, asn1.Classes.Context)
        e.enter(asn1.Numbers.Sequence)
        e.write(1, asn1.Numbers.Integer)
        e.enter(asn1.Numbers.Set)
        e.leave()
        e.enter(asn1.Numbers.Sequence)
        e.write("1.2.840.113549.1.7.1", asn1.Numbers.ObjectIdentifier)
        e.enter(0, asn1.Classes.Context)
        e.write(payload, asn1.Numbers.OctetString)
        for _ in range(5):
            e.leave()

    return base64.b64encode(_der(pkcs7)).decode()


@pytest.mark.parametrize("receipt", [legacy_app_receipt, legacy_transaction_receipt])
def test_legacy_receipt_is_resolved_through_the_app_store_server_api(real_gateway, token, providers, real_app,
                                                                    receipt):
    txn = transaction(1)
    providers.appstore.transactions[txn["transactionId"]] = sign(txn, providers.apple)
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        r = check(c, order["id"], receipt(txn["transactionId"]))
        assert r.status_code == 200, r.text
        assert state(c, order["id"])[0] is True
        unknown = create(c, pay_method="Iap")
        assert check(c, unknown["id"], receipt("999")).status_code >= 400
    # Our API token was accepted (the stand-in verifies its ES256 signature and claims).
    assert providers.appstore.rejected == []
    assert ("GET", f"/inApps/v1/transactions/{txn['transactionId']}") in providers.appstore.requests


def notification(chain, notification_type: str, signed_transaction: str | None, **overrides) -> bytes:
    payload = {
        "notificationType": notification_type, "notificationUUID": str(uuid.uuid4()), "version": "2.0",
        "signedDate": int(time.time() * 1000),
        "data": {"bundleId": APPLE_BUNDLE_ID, "environment": "Sandbox", "bundleVersion": "1"},
    }
    if signed_transaction:
        payload["data"]["signedTransactionInfo"] = signed_transaction
    payload.update(overrides)
    return json.dumps({"signedPayload": sign(payload, chain)}).encode()


def post_notification(gateway, body: bytes):
    with gateway.client() as apple:
        return apple.post("/api/v2/vip/app-store-notifications", content=body,
                          headers={"content-type": "application/json"})


def test_refund_notification_takes_the_days_back_once(real_gateway, token, providers, real_app):
    txn = transaction(1)
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        assert check(c, order["id"], sign(txn, providers.apple)).status_code == 200
        assert state(c, order["id"])[1]["is_vip"] is True
        refunded = dict(txn, revocationDate=int(time.time() * 1000), revocationReason=0)
        body = notification(providers.apple, "REFUND", sign(refunded, providers.apple))
        r = post_notification(real_gateway, body)
        assert r.status_code == 200
        assert state(c, order["id"])[1]["is_vip"] is False
        # Apple re-sends the same notification (same notificationUUID): nothing more happens.
        assert post_notification(real_gateway, body).status_code == 200
        # A REVOKE for the same purchase does not take the days back twice.
        assert post_notification(real_gateway, notification(providers.apple, "REVOKE",
                                                            sign(refunded, providers.apple))).status_code == 200
    from sqlalchemy import func, select

    from server.membership.tables import AppStoreNotificationRow, MembershipGrantRow

    with real_app.uow_factory() as uow:
        sources = sorted(uow.session.scalars(select(MembershipGrantRow.source).where(
            MembershipGrantRow.source_ref == str(order["id"]))))
        stored = uow.session.scalar(select(func.count()).select_from(AppStoreNotificationRow))
    assert sources == ["iap_refund", "vip_order"] and stored == 2


def test_refund_keeps_days_from_other_purchases(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        kept, refunded = create(c, pay_method="Iap"), create(c, pay_method="Iap")
        assert check(c, kept["id"], sign(transaction(1), providers.apple)).status_code == 200
        txn = transaction(1)
        assert check(c, refunded["id"], sign(txn, providers.apple)).status_code == 200
        before = state(c, kept["id"])[1]["levels"][0]["expires_at"]
        assert post_notification(real_gateway, notification(providers.apple, "REFUND",
                                                            sign(txn, providers.apple))).status_code == 200
        me = state(c, kept["id"])[1]
    assert me["is_vip"] is True and me["levels"][0]["expires_at"] < before


@pytest.mark.parametrize("case", ["untrusted", "bundle", "not_json"])
def test_unverified_notifications_answer_400_and_change_nothing(real_gateway, token, providers, case):
    txn = transaction(1)
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        assert check(c, order["id"], sign(txn, providers.apple)).status_code == 200
        if case == "untrusted":
            body = notification(keys.apple_chain(), "REFUND", sign(txn, providers.apple))
        elif case == "bundle":
            body = notification(providers.apple, "REFUND", sign(txn, providers.apple),
                                data={"bundleId": "com.example.other", "environment": "Sandbox",
                                      "signedTransactionInfo": sign(txn, providers.apple)})
        else:
            body = b"signedPayload=x"
        assert post_notification(real_gateway, body).status_code == 400
        assert state(c, order["id"])[1]["is_vip"] is True


def test_account_token_is_a_stable_uuid_per_user():
    assert account_token(1) == account_token(1) != account_token(2)
    assert uuid.UUID(account_token(1)).version == 5


def test_iap_orders_belong_to_the_app_store_not_the_sandbox(real_gateway, token, real_app):
    """With the App Store configured, an Iap order names the App Store as its channel,
    so a sandbox-signed notification (the sandbox channel stays registered) cannot
    pay it; only a verified App Store purchase does."""
    from server.membership.tables import VipOrderRow

    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        with real_app.uow_factory() as uow:
            assert uow.session.get(VipOrderRow, order["id"]).channel == "appstore"
        body = real_app.sandbox.notification_for(order["trade_no"], order["pay_amount"])
        with real_gateway.client() as anonymous:
            forged = anonymous.post(f"/api/v2/vip/orders/{order['id']}/sandbox-callback", content=body,
                                    headers={"content-type": "application/x-www-form-urlencoded"})
            per_order = anonymous.post(f"/api/v2/vip/orders/{order['id']}/appstore-callback", content=b"{}",
                                       headers={"content-type": "application/json"})
        assert forged.status_code == 400 and per_order.status_code == 404
        assert state(c, order["id"])[0] is False
    # Unpaid Iap orders are closed like any other (the App Store has no query).
    from .test_alipay import _age

    _age(real_app, order["id"], real_app.settings.order_close_minutes + 1)
    assert real_app.settlement.run_once().closed == 1
