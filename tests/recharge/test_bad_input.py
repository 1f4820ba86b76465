"""Bad input on the 000/002/003 paths (and the internal wallet) answers in the
family's envelope, never 5xx (issue 9 §4)."""

import grpc
import pytest
from vipay.recharge.v1 import wallet_pb2 as wpb
from vipay.recharge.v1 import wallet_pb2_grpc

from tests.conftest import auth

from .test_recharge_http import center, place


@pytest.mark.parametrize("params", [{"startDate": "0001-01-01"}, {"endDate": "9999-12-31"},
                                    {"startDate": "0001-01-01", "endDate": "9999-12-31"}])
def test_history_with_extreme_dates_is_unbounded(gateway, token, params):
    with gateway.client(token(10)) as c:
        number = place(c, id=0, price="25.8").json()["data"]["orderNumber"]
        r = c.get("/api/recharge/history", params={"page": 1, "rows": 10, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and [row["orderNumber"] for row in body["data"]["rows"]] == [number]


@pytest.mark.parametrize("price", ["1e30", "-1e308", "9" * 24, "1e-400", "1E+999999999", "1e-999999999", "NaN", "-Infinity"])
def test_absurd_prices_are_field_errors_in_the_002_envelope(gateway, token, price):
    with gateway.client(token(10)) as c:
        r = place(c, id=0, price=price)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["success"], body["code"]) == (False, 400), body
    assert "price" in body["data"]["errors"]


@pytest.mark.parametrize("store_id", ["9223372036854775808", "99999999999999999999999", "9223372036854775807"])
def test_store_id_beyond_bigint_is_refused_in_the_003_envelope(gateway, token, store_id):
    r = center(gateway, token(3), storeId=store_id)
    assert r.status_code == 200, r.text
    body = r.json()
    if store_id == "9223372036854775807":  # the largest BIGINT is a store id like any other
        assert body["status"] == 200
    else:
        assert (body["status"], body["data"]) == (500, [])
        assert "storeId" in body["message"]


def test_negative_wallet_page_size_is_invalid_argument(channel, token):
    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    with pytest.raises(grpc.RpcError) as exc:
        wallet.GetWallet(wpb.GetWalletRequest(user_id=1, page_size=-1), metadata=auth(token(1, "service")))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
