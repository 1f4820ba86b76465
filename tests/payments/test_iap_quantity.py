"""One App Store transaction pays for one product: an Iap order is for quantity 1,
and a transaction never pays for an order of several (issue 9 §1), through Envoy
with StoreKit signed transactions."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from server.membership.tables import VipOrderRow

from .test_alipay import create, state
from .test_appstore import check, sign, transaction


@pytest.mark.parametrize("quantity", [2, 12])
def test_iap_order_of_several_is_refused_with_422(real_gateway, token, quantity):
    with real_gateway.client(token(1)) as c:
        r = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                               "pay_method": "Iap", "quantity": quantity})
        assert r.status_code == 422, r.text
        assert set(r.json()) == {"message", "errors"} and "quantity" in r.json()["errors"]
        assert c.get("/api/v2/vip/orders").json() == []
        assert create(c, pay_method="Iap", quantity=1)["quantity"] == 1  # quantity 1 (or none) is fine
        assert create(c, pay_method="Alipay_AopApp", quantity=12)["quantity"] == 12  # other methods unchanged


def test_one_transaction_never_pays_an_older_order_of_twelve(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c, pay_method="Iap")
        with real_app.uow_factory() as uow:  # an order made before the limit existed
            uow.session.execute(update(VipOrderRow).where(VipOrderRow.id == order["id"]).values(quantity=12))
            uow.commit()
        jws = sign(transaction(1), providers.apple)
        r = check(c, order["id"], jws)
        assert r.status_code == 422, r.text
        assert set(r.json()) == {"message", "errors"}
        paid, me = state(c, order["id"])
        assert paid is False and me["current_level"] == ""
        # A transaction that did buy twelve pays it (StoreKit's own quantity).
        r = check(c, order["id"], sign(transaction(1, quantity=12), providers.apple))
        assert r.status_code == 200, r.text
    assert real_app.memberships.ledger.count_grants(str(order["id"])) == 1
