"""The merchant balance ledger the console shows (issue 20 §5): every top-up, charge and
refund with the balance after it, newest first, paged by the server; it sums to the
balance; money as 004 renders it (a JSON number's text)."""

from __future__ import annotations

import grpc
import pytest
from vipay.openapi.v1 import merchant_admin_pb2 as pb
from vipay.openapi.v1 import merchant_admin_pb2_grpc

from tests.conftest import auth

from .conftest import ACCOUNT, PRICE_FEN


@pytest.fixture
def admin(channel):
    return merchant_admin_pb2_grpc.MerchantAdminServiceStub(channel)


def whole_ledger(admin, cred, merchant_id: str, page_size: int) -> tuple[list, list]:
    entries, pages, token = [], [], ""
    while True:
        page = admin.ListMerchantBalanceEntries(pb.ListMerchantBalanceEntriesRequest(
            merchant_id=merchant_id, page_size=page_size, page_token=token), metadata=cred)
        entries += page.entries
        pages.append(page)
        token = page.next_page_token
        if not token:
            return entries, pages


def test_ledger_lists_every_movement_and_sums_to_the_balance(app, admin, token, merchant, client_for, receiver):
    client = client_for(merchant)
    paid = client.vip_charge("87103", ACCOUNT, "bl-1", callback_url=receiver.url)["data"]
    client.vip_charge("87103", "nobody-here", "bl-2", callback_url=receiver.url)  # no such account: paid back
    app.refunds.refund(paid["orderCode"], amount_fen=None, reason="merchant complaint")
    boss, support = auth(token(7, "admin")), auth(token(5, "support"))
    admin.TopUpMerchant(pb.TopUpMerchantRequest(merchant_id="166", amount_fen=123456789, reason="big prepayment"),
                        metadata=boss)

    entries, pages = whole_ledger(admin, support, "166", page_size=2)
    assert [len(p.entries) for p in pages] == [2, 2, 2] and {p.total_size for p in pages} == {6}
    assert [e.kind for e in entries] == ["topup", "refund", "refund", "charge", "charge", "topup"]  # newest first
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert [e.amount_fen for e in entries] == [123456789, PRICE_FEN, PRICE_FEN, -PRICE_FEN, -PRICE_FEN, 10_000]
    running = 0
    for e in reversed(entries):  # each entry's balance is the sum of everything up to it
        running += e.amount_fen
        assert e.balance_after_fen == running
    [listed] = [m for m in admin.ListMerchants(pb.ListMerchantsRequest(), metadata=support).merchants
                if m.merchant_id == "166"]
    assert pages[0].balance_fen == running == listed.balance_fen == 10_000 + 123456789
    # 004 prints money as JSON numbers: 1234667.89, not `:g`'s 1.23467e+06
    assert pages[0].balance_display == listed.balance_display == "1234667.89"
    assert [(e.amount_display, e.balance_after_display) for e in entries[:1]] == [("1234567.89", "1234667.89")]
    assert (entries[3].amount_display, entries[-1].amount_display) == ("-4.51", "100")
    assert entries[0].note == "big prepayment" and entries[0].order_code == ""
    assert entries[4].order_code == entries[1].order_code == paid["orderCode"]  # charged, refunded by an operator
    assert entries[3].order_code == entries[2].order_code not in ("", paid["orderCode"])  # no account: paid back
    assert all(e.create_time.seconds > 0 for e in entries)

    for role in ("finance", "admin"):
        assert len(admin.ListMerchantBalanceEntries(pb.ListMerchantBalanceEntriesRequest(merchant_id="166"),
                                                    metadata=auth(token(1, role))).entries) == 6


@pytest.mark.parametrize("request_, code", [
    (pb.ListMerchantBalanceEntriesRequest(), grpc.StatusCode.INVALID_ARGUMENT),
    (pb.ListMerchantBalanceEntriesRequest(merchant_id="166", page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
    (pb.ListMerchantBalanceEntriesRequest(merchant_id="166", page_token="%%%"), grpc.StatusCode.INVALID_ARGUMENT),
    (pb.ListMerchantBalanceEntriesRequest(merchant_id="166", page_token="bzoy"), grpc.StatusCode.INVALID_ARGUMENT),
    (pb.ListMerchantBalanceEntriesRequest(merchant_id="no-such"), grpc.StatusCode.FAILED_PRECONDITION),
])
def test_bad_ledger_requests_are_refused(admin, token, merchant, request_, code):
    with pytest.raises(grpc.RpcError) as exc:
        admin.ListMerchantBalanceEntries(request_, metadata=auth(token(5, "support")))
    assert exc.value.code() == code


def test_a_user_may_not_read_a_merchant_ledger(admin, token, merchant):
    with pytest.raises(grpc.RpcError) as exc:
        admin.ListMerchantBalanceEntries(pb.ListMerchantBalanceEntriesRequest(merchant_id="166"),
                                         metadata=auth(token(42)))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
