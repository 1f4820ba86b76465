"""Recharge over gRPC: proper status codes with ErrorInfo, the internal wallet API
(idempotent, no overdraft under concurrency) and exactly-once crediting under 50
concurrent duplicate notifications."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import grpc
import httpx
import pytest
from sqlalchemy import func, select
from vipay.recharge.v1 import recharge_pb2 as pb
from vipay.recharge.v1 import recharge_pb2_grpc, wallet_pb2_grpc
from vipay.recharge.v1 import wallet_pb2 as wpb

from server.recharge.tables import RechargeOrderRow, WalletEntryRow
from tests.conftest import auth
from tests.membership.test_grpc import details


@pytest.fixture
def wallet(channel):
    return wallet_pb2_grpc.WalletServiceStub(channel)


@pytest.fixture
def recharge(channel):
    return recharge_pb2_grpc.RechargeServiceStub(channel)


def reason_of(exc) -> str:
    return details(exc.value)[0][0].reason


def test_recharge_errors_are_status_codes_with_error_info_for_grpc_callers(recharge, token):
    with pytest.raises(grpc.RpcError) as exc:
        recharge.CreateRechargeOrder(pb.CreateRechargeOrderRequest(id=1, price="28", pay_mode_id=2))
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED and reason_of(exc) == "UNAUTHENTICATED"
    with pytest.raises(grpc.RpcError) as exc:
        recharge.CreateRechargeOrder(pb.CreateRechargeOrderRequest(id=1, price="27", pay_mode_id=2),
                                     metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(exc) == "PRICE_MISMATCH"
    with pytest.raises(grpc.RpcError) as exc:
        recharge.CreateRechargeOrder(pb.CreateRechargeOrderRequest(id=1, price="x", pay_mode_id=9),
                                     metadata=auth(token(1)))
    infos, bad = details(exc.value)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in bad[0].field_violations} == {"price", "payModeId"}
    with pytest.raises(grpc.RpcError) as exc:
        recharge.GetRechargeCenter(pb.GetRechargeCenterRequest(client="H5"), metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(exc) == "STORE_REQUIRED"
    ok = recharge.GetRecharge(pb.GetRechargeRequest())
    assert ok.success and not ok.data.HasField("balance")


def test_wallet_rpcs_need_the_service_role(wallet, token):
    with pytest.raises(grpc.RpcError) as exc:
        wallet.GetWallet(wpb.GetWalletRequest(user_id=1), metadata=auth(token(1)))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as exc:
        wallet.DebitWallet(wpb.DebitWalletRequest(user_id=1, amount_fen=1, reference="x", request_id="y"))
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_debit_and_credit_are_idempotent_and_refuse_overdraft(wallet, token):
    svc = auth(token(1, "service"))
    first = wallet.CreditWallet(wpb.CreditWalletRequest(user_id=3, amount_fen=500, reference="refund:1",
                                                        request_id="c-1"), metadata=svc)
    again = wallet.CreditWallet(wpb.CreditWalletRequest(user_id=3, amount_fen=500, reference="refund:1",
                                                        request_id="c-1"), metadata=svc)
    assert first.balance_fen == again.balance_fen == 500 and first.entry.id == again.entry.id
    debit = wallet.DebitWallet(wpb.DebitWalletRequest(user_id=3, amount_fen=200, reference="mall_order:9",
                                                      request_id="d-1"), metadata=svc)
    assert (debit.balance_fen, debit.entry.amount_fen, debit.entry.balance_after_fen) == (300, -200, 300)
    written = debit.entry.create_time.ToDatetime(timezone.utc)  # a Timestamp, not a formatted string
    assert abs((datetime.now(timezone.utc) - written).total_seconds()) < 60
    with pytest.raises(grpc.RpcError) as exc:
        wallet.DebitWallet(wpb.DebitWalletRequest(user_id=3, amount_fen=301, reference="mall_order:10",
                                                  request_id="d-2"), metadata=svc)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(exc) == "INSUFFICIENT_BALANCE"
    with pytest.raises(grpc.RpcError) as exc:  # same request_id, other parameters
        wallet.DebitWallet(wpb.DebitWalletRequest(user_id=3, amount_fen=100, reference="mall_order:9",
                                                  request_id="d-1"), metadata=svc)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS and reason_of(exc) == "REQUEST_ID_REUSED"
    with pytest.raises(grpc.RpcError) as exc:  # same reference, new request_id
        wallet.DebitWallet(wpb.DebitWalletRequest(user_id=3, amount_fen=100, reference="mall_order:9",
                                                  request_id="d-3"), metadata=svc)
    assert reason_of(exc) == "DUPLICATE_REFERENCE"
    with pytest.raises(grpc.RpcError) as exc:
        wallet.DebitWallet(wpb.DebitWalletRequest(user_id=3, amount_fen=0), metadata=svc)
    assert {v.field for v in details(exc.value)[1][0].field_violations} == {"amount_fen", "reference", "request_id"}
    page = wallet.GetWallet(wpb.GetWalletRequest(user_id=3, page_size=1), metadata=svc)
    assert page.balance_fen == 300 and [e.reason for e in page.entries] == ["debit"] and page.next_page_token
    rest = wallet.GetWallet(wpb.GetWalletRequest(user_id=3, page_size=1, page_token=page.next_page_token),
                            metadata=svc)
    assert [e.request_id for e in rest.entries] == ["c-1"] and not rest.next_page_token


def test_concurrent_debits_never_overdraw(app, wallet, token):
    svc = auth(token(1, "service"))
    wallet.CreditWallet(wpb.CreditWalletRequest(user_id=4, amount_fen=1000, reference="seed", request_id="seed"),
                        metadata=svc)

    def debit(i):
        try:
            wallet.DebitWallet(wpb.DebitWalletRequest(user_id=4, amount_fen=100, reference=f"o:{i}",
                                                      request_id=f"d-{i}"), metadata=svc)
            return "ok"
        except grpc.RpcError as err:
            return err.code().name

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(debit, range(30)))
    assert outcomes.count("ok") == 10 and outcomes.count("FAILED_PRECONDITION") == 20
    assert app.recharges.wallet.balance(4) == 0


def test_concurrent_retries_of_one_debit_book_it_once(app, wallet, token):
    svc = auth(token(1, "service"))
    wallet.CreditWallet(wpb.CreditWalletRequest(user_id=6, amount_fen=1000, reference="seed", request_id="seed"),
                        metadata=svc)
    req = wpb.DebitWalletRequest(user_id=6, amount_fen=300, reference="o:1", request_id="same")
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: wallet.DebitWallet(req, metadata=svc), range(20)))
    assert {r.entry.id for r in results} == {results[0].entry.id} and app.recharges.wallet.balance(6) == 700


def test_fifty_concurrent_duplicate_notifications_credit_once(app, gateway, token):
    created = app.recharges.order_recharge(9, plan_id=10002, price="1000", pay_mode_id=2, goods_id=None,
                                           verify_code="", client_ip="")
    order = created.order
    bodies = [app.sandbox.notification_for(order.order_number, order.amount) for _ in range(50)]
    url = f"{gateway.url}/api/recharge/orders/{order.id}/sandbox-callback"

    def post(body):
        return httpx.post(url, content=body, headers={"content-type": "application/x-www-form-urlencoded"},
                          timeout=30).text

    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(post, bodies))
    assert replies == ["success"] * 50
    assert app.recharges.wallet.balance(9) == 100000 + 15000
    with app.uow_factory() as uow:
        entries = uow.session.scalar(select(func.count()).select_from(WalletEntryRow))
        state = uow.session.get(RechargeOrderRow, order.id).state
    assert entries == 2 and state == "SUCCESSFUL_PAYMENT"


def test_rate_counters_are_shared_by_replicas(app):
    """Two guards on one database (two server replicas) count one window together."""
    from dataclasses import replace

    from server.platform.rate_limits import RateLimiter
    from server.recharge.captchas import CaptchaGuard, png_captcha
    from server.platform.errors import DomainError

    limits = replace(app.recharges.captchas.limits, per_user=3, per_ip=1000, window_seconds=86400)
    replicas = [CaptchaGuard(app.uow_factory, RateLimiter(app.uow_factory), limits, png_captcha) for _ in range(2)]
    for i in range(3):
        replicas[i % 2].check(77, "203.0.113.9", "")
    with pytest.raises(DomainError) as exc:
        replicas[1].check(77, "203.0.113.9", "")
    assert exc.value.reason == "CAPTCHA_REQUIRED"
