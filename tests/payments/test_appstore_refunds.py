"""Issue 9 §1: App Store refunds that arrive before the redemption, race it, or
follow an exchange of the purchase's days into a higher level."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from server.membership.tables import IapTransactionRow, MembershipGrantRow

from .test_alipay import create, state
from .test_appstore import check, notification, post_notification, sign, transaction


def refund_body(providers, txn, kind="REFUND"):
    refunded = dict(txn, revocationDate=int(time.time() * 1000), revocationReason=0)
    return notification(providers.apple, kind, sign(refunded, providers.apple))


def test_a_refund_before_redemption_is_remembered_and_the_redemption_refused(real_gateway, token, providers,
                                                                             real_app):
    txn = transaction(1)
    jws = sign(txn, providers.apple)  # the app saved the JWS, then asked Apple for a refund
    assert post_notification(real_gateway, refund_body(providers, txn, "REVOKE")).status_code == 200
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        r = check(c, order["id"], jws)
        assert r.status_code == 500 and r.json()["message"] == "This purchase was refunded or revoked by the App Store."
        paid, me = state(c, order["id"])
    assert paid is False and me["is_vip"] is False
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 0
    with real_app.uow_factory() as uow:
        row = uow.session.get(IapTransactionRow, txn["transactionId"])
    assert row.revocation == "REVOKE" and row.revoked_at is not None


def test_buy_exchange_refund_takes_back_what_the_days_became(real_gateway, token, providers, real_app):
    txn = transaction(1)
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")  # middle, 3 months
        assert check(c, order["id"], sign(txn, providers.apple)).status_code == 200
        r = c.patch("/api/v2/vip/exchange-vip", json={"level": "high"})
        assert r.status_code == 201, r.text
        assert r.json()["converted_days"] > 0
        assert state(c, order["id"])[1]["current_level"] == "high"
        assert post_notification(real_gateway, refund_body(providers, txn)).status_code == 200
        me = state(c, order["id"])[1]
    # The order's level (middle) ended at the exchange; the high days it became are gone too.
    assert me["is_vip"] is False and me["current_level"] == ""
    with real_app.uow_factory() as uow:
        taken = uow.session.scalars(select(MembershipGrantRow.level).where(
            MembershipGrantRow.source == "iap_refund", MembershipGrantRow.source_ref == str(order["id"]))).all()
    assert taken == ["high"]


def test_refund_racing_the_redemption_never_leaves_the_days(real_gateway, token, providers, real_app):
    """Many rounds of a REFUND notification and check-iap-result sent at once: either
    the redemption is refused, or it wins and the refund takes the days back."""
    for round_ in range(6):
        user = 100 + round_
        txn = transaction(user)
        with real_gateway.client(token(user)) as c:
            order = create(c, pay_method="Iap")
        results = {}

        def redeem():
            with real_gateway.client(token(user)) as client:
                results["check"] = check(client, order["id"], sign(txn, providers.apple)).status_code

        def refund():
            results["refund"] = post_notification(real_gateway, refund_body(providers, txn)).status_code

        threads = [threading.Thread(target=redeem), threading.Thread(target=refund)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results["refund"] == 200
        with real_gateway.client(token(user)) as c:
            me = state(c, order["id"])[1]
        assert me["is_vip"] is False, (round_, results)
        assert results["check"] in (200, 500)
