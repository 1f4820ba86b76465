"""Forward compatibility, typed errors, retries, pagination and the callback handler of the
Python SDK, against the live stack and test servers that fail the first attempts."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import threading

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives import serialization
from vipay.recharge.v1 import wallet_pb2, wallet_pb2_grpc

from vipay_sdk import (
    CallbackError, CallbackHandler, EnvelopeError, ErrorReason, GrpcError, HttpError, MembershipHttpStatus,
    MerchantClient, MerchantError, NetworkError, OpenApiStatus, RechargeCode, RetryPolicy, VipayHttp, YoshopStatus,
    callback_signing_string, channel, wallet_entries,
)

from conftest import env, token

FAST = RetryPolicy(base_delay=0.01)


def merchant(base: str, **kw) -> MerchantClient:
    return MerchantClient(base, env("VIPAY_MERCHANT_ID"), env("VIPAY_MERCHANT_ID"),
                          private_key_pem=Path(env("VIPAY_MERCHANT_KEY_FILE")).read_text(), retry=FAST, **kw)


def test_unknown_response_fields_are_ignored(servers):
    configs = servers(None, status=200, headers={"content-type": "application/json"},
                      body=json.dumps({"switch": True, "currency": "CNY", "config": {"low": {"newThing": 1}}}).encode())
    balance = servers(None, status=200, body=json.dumps(
        {"status": 200, "message": "success", "data": {"merchantId": "m", "balance": 1.5, "currency": "CNY"},
         "extra": [1]}).encode())
    assert VipayHttp(configs.url).get_vip_configs().switch is True
    assert merchant(balance.url).balance().data.balance == 1.5


def test_typed_errors_carry_the_request_id():
    wrong = MerchantClient(env("VIPAY_HTTP"), env("VIPAY_MERCHANT_ID"), env("VIPAY_MERCHANT_ID"), md5_secret="nope")
    with pytest.raises(MerchantError) as refused:
        wrong.balance()
    assert refused.value.status == OpenApiStatus.SIGN_INVALID and refused.value.status_name == "SIGN_INVALID"
    assert len(refused.value.request_id) >= 16
    with pytest.raises(MerchantError) as missing:
        merchant(env("VIPAY_HTTP")).query_order(biz_code="no-such-order")
    assert missing.value.status == OpenApiStatus.ORDER_NOT_FOUND
    with pytest.raises(HttpError) as unauth:
        VipayHttp(env("VIPAY_HTTP")).get_my_membership()
    assert unauth.value.status == MembershipHttpStatus.UNAUTHENTICATED and unauth.value.request_id
    with pytest.raises(EnvelopeError) as bad:
        VipayHttp(env("VIPAY_HTTP"), token=token(501)).get_recharge_history(rows=1000)
    assert bad.value.code == RechargeCode.BAD_REQUEST and bad.value.code_name == "BAD_REQUEST"
    stub = wallet_pb2_grpc.WalletServiceStub(channel(env("VIPAY_GRPC"), token(0, "service")))
    with pytest.raises(GrpcError) as poor:
        stub.DebitWallet(wallet_pb2.DebitWalletRequest(user_id=502, amount_fen=1, reference="o:py", request_id="py-t-1"))
    assert poor.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert poor.value.reason == ErrorReason.INSUFFICIENT_BALANCE
    assert len(poor.value.request_id) == 32


def test_004_retry_same_body_fresh_nonce_charged_once(servers):
    proxy = servers(env("VIPAY_HTTP"), failures=2)
    direct = merchant(env("VIPAY_HTTP"))
    before = direct.balance().data.balance
    biz = f"py-retry-{time.time_ns()}"
    reply = merchant(proxy.url).vip_charge(env("VIPAY_MERCHANT_PRODUCT"), env("VIPAY_MERCHANT_ACCOUNT"), biz)
    assert reply.data.biz_code == biz
    assert len(proxy.seen) == 3
    assert len({s["body"] for s in proxy.seen}) == 1
    assert len({s["headers"]["nonce"] for s in proxy.seen}) == 3
    assert round((before - direct.balance().data.balance) * 100) == 451


def test_retry_after_and_5000_and_no_retry_of_what_is_not_idempotent(servers):
    limited = servers(env("VIPAY_HTTP"), failures=1, status=429, headers={"retry-after": "1"}, body=b"slow")
    assert VipayHttp(limited.url, retry=FAST).get_vip_configs().switch is True
    assert len(limited.seen) == 2 and limited.seen[1]["at"] - limited.seen[0]["at"] >= 0.95
    internal = servers(env("VIPAY_HTTP"), failures=1, status=500,
                       body=json.dumps({"status": 5000, "message": "internal error", "data": None}).encode())
    assert merchant(internal.url).balance().status == 200 and len(internal.seen) == 2
    down = servers(env("VIPAY_HTTP"), failures=100)
    with pytest.raises(HttpError):
        VipayHttp(down.url, retry=RetryPolicy(max_retries=3, base_delay=0.005)).get_vip_configs()
    assert len(down.seen) == 4
    down.seen.clear()
    user = VipayHttp(down.url, token=token(503), retry=FAST)
    with pytest.raises(HttpError):
        user.create_vip_order(timezone="Asia/Shanghai", duration=3, level="low", pay_method="Alipay_AopApp")
    with pytest.raises(EnvelopeError):
        user.create_recharge_order(id=1, price="28", pay_mode_id=2)
    assert len(down.seen) == 2, "one attempt each"


def test_network_errors_and_timeouts(servers):
    gone = servers(None)
    url = gone.url
    gone.close()
    with pytest.raises(NetworkError) as err:
        VipayHttp(url, retry=FAST).get_vip_configs()
    assert len(err.value.request_id) == 32
    silent = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (BaseHTTPRequestHandler,), {
        "do_GET": lambda self: time.sleep(2), "log_message": lambda *a: None}))
    threading.Thread(target=silent.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(NetworkError):
            VipayHttp(f"http://127.0.0.1:{silent.server_address[1]}", timeout=0.2,
                      retry=RetryPolicy(max_retries=0)).get_vip_configs()
        assert time.monotonic() - started < 1.5
    finally:
        silent.shutdown()
        silent.server_close()


def test_backoff_is_exponential_with_jitter():
    p = RetryPolicy(base_delay=0.1, max_delay=1)
    for _ in range(50):
        assert 0.05 <= p.backoff(0) <= 0.1 and 0.4 <= p.backoff(3) <= 0.8 and p.backoff(10) <= 1
        assert p.backoff(0, retry_after=0.9) >= 0.9
    assert len({p.backoff(2) for _ in range(20)}) > 10


def test_grpc_retry_against_a_server_failing_the_first_attempts():
    from concurrent import futures
    calls = []

    class Wallet(wallet_pb2_grpc.WalletServiceServicer):
        def GetWallet(self, request, context):
            calls.append("get")
            if len(calls) <= 2:
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            return wallet_pb2.GetWalletResponse(balance_fen=7)

        def DebitWallet(self, request, context):
            calls.append("debit")
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")

    server = grpc.server(futures.ThreadPoolExecutor(2))
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(Wallet(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        stub = wallet_pb2_grpc.WalletServiceStub(channel(f"127.0.0.1:{port}", "t", retry=FAST))
        assert stub.GetWallet(wallet_pb2.GetWalletRequest(user_id=1)).balance_fen == 7
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(GrpcError):
            stub.DebitWallet(wallet_pb2.DebitWalletRequest(user_id=1, amount_fen=1, reference="r"))
        assert len(calls) == 1, "no request_id: not retried"
        calls.clear()
        with pytest.raises(GrpcError):
            stub.DebitWallet(wallet_pb2.DebitWalletRequest(user_id=1, amount_fen=1, reference="r", request_id="q"))
        assert len(calls) == 3
    finally:
        server.stop(0)


def test_001_every_operation_typed():
    """The 001 calls the TypeScript and Go SDKs have: each answer typed, each refusal an HttpError."""
    public = VipayHttp(env("VIPAY_HTTP"))
    assert public.get_bootstrappers().vip_switch is True
    assert "<" in public.get_vip_protocol()
    http = VipayHttp(env("VIPAY_HTTP"), token=token(507))
    order = http.create_vip_order(timezone="Asia/Shanghai", duration=3, level="middle", pay_method="WechatPay_App")
    assert http.get_vip_order(order.id).trade_no == order.trade_no
    assert http.check_vip_order(order.id).status is False
    http.delete_vip_order(order.id)
    with pytest.raises(HttpError) as gone:
        http.get_vip_order(order.id)
    assert gone.value.status == MembershipHttpStatus.NOT_FOUND and gone.value.request_id
    with pytest.raises(HttpError) as nothing:
        http.exchange_vip("high")
    assert nothing.value.status == 403 and nothing.value.body["message"]
    iap = http.create_vip_order(timezone="Asia/Shanghai", duration=3, level="low", pay_method="Iap")
    receipt = subprocess.run([env("VIPAY_PYTHON"), "-m", "server", "sandbox-receipt", str(iap.id)],
                             cwd=env("VIPAY_ROOT"), check=True, capture_output=True, text=True).stdout.strip()
    paid = http.check_iap_result(iap.id, receipt)
    assert paid.id == iap.id and paid.pay_status == 1
    assert http.check_vip_order(iap.id).status is True
    assert http.exchange_vip("high").converted_days > 0
    assert http.get_my_membership().current_level == "high"


def test_pagination_iterators():
    http = VipayHttp(env("VIPAY_HTTP"), token=token(504))
    ids = {http.create_vip_order(timezone="Asia/Shanghai", duration=3, level="middle", pay_method="Alipay_AopApp").id
           for _ in range(5)}
    assert {o.id for o in http.vip_orders(limit=2)} == ids
    amount = http.get_recharge().data.recharge_amount[0]
    numbers = {http.create_recharge_order(id=amount.id, price=amount.price, pay_mode_id=amount.pay_modes[0].id)
               .data.order_number for _ in range(5)}
    assert {r.order_number for r in http.recharge_history(rows=2)} == numbers
    stub = wallet_pb2_grpc.WalletServiceStub(channel(env("VIPAY_GRPC"), token(0, "service")))
    for i in range(5):
        stub.CreditWallet(wallet_pb2.CreditWalletRequest(user_id=505, amount_fen=10, reference=f"p:{i}",
                                                         request_id=f"py-page-{i}"))
    assert len({e.id for e in wallet_entries(stub, 505, page_size=2)}) == 5


def test_callback_handler_on_a_real_callback():
    platform_pub = Path(env("VIPAY_PLATFORM_KEY_FILE")).read_text()
    claimed = []

    class Store:
        def claim(self, key, ttl):
            claimed.append(key)
            return claimed.count(key) == 1

    handler = CallbackHandler(platform_pub, env("VIPAY_MERCHANT_ID"), nonce_store=Store())
    arrived: list[tuple[dict, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            arrived.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"SUCCESS")

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        reply = merchant(env("VIPAY_HTTP")).vip_charge(
            env("VIPAY_MERCHANT_PRODUCT"), env("VIPAY_MERCHANT_ACCOUNT"), f"py-cb-{time.time_ns()}",
            callback_url=f"http://127.0.0.1:{receiver.server_address[1]}/notify")
        deadline = time.monotonic() + 20
        while not arrived and time.monotonic() < deadline:
            time.sleep(0.1)
        headers, body = arrived[0]
        report = handler.verify(headers, body)
        assert report.order_code == reply.data.order_code and report.state == "success"
        assert report.settlement_price == 4.51 and len(claimed) == 1
        with pytest.raises(CallbackError) as replay:
            handler.verify(headers, body)
        assert replay.value.reason == "replayed"
        with pytest.raises(CallbackError) as other:
            CallbackHandler(platform_pub, "other").verify(headers, body)
        assert other.value.reason == "bad_signature"
        with pytest.raises(CallbackError) as stale:
            CallbackHandler(platform_pub, env("VIPAY_MERCHANT_ID"), max_skew_seconds=1).verify(
                {**headers, "timestamp": str(int(time.time() * 1000) - 60_000)}, body)
        assert stale.value.reason == "stale"
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_callback_handler_default_store_refuses_replays_and_ignores_new_fields():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    body = json.dumps({"merchantId": "m1", "businessId": "b1", "orderCode": "VC1", "state": "failed", "status": 4012,
                       "settlementPrice": 4.51, "addedLater": True}).encode()
    ts, nonce = str(int(time.time() * 1000)), "n0nce-0001"
    sign = base64.b64encode(key.sign(callback_signing_string("m1", "b1", ts, nonce, body), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()
    headers = {"businessId": "b1", "timestamp": ts, "nonce": nonce, "sign": sign}
    handler = CallbackHandler(pub, "m1")
    report = handler.verify(headers, body)
    assert report.status == OpenApiStatus.ORDER_FAILED
    with pytest.raises(CallbackError) as again:
        handler.verify(headers, body)
    assert again.value.reason == "replayed"


def test_000_charge_and_003_recharge_center_typed():
    """000 (/charge/index, /charge/pay) and 003 (/index.php?s=/api/recharge/center): answers parsed
    into the generated types, refusals (HTTP 200 envelopes) raised as EnvelopeError per family."""
    http = VipayHttp(env("VIPAY_HTTP"), token=token(506))
    index = http.get_charge_index()
    assert index.c == 0 and index.d.pay_types and index.d.charge_list
    package, pay_type = index.d.charge_list[0], index.d.pay_types[0].type_name
    payment = http.create_charge_payment(id=package.id, pay_type=pay_type)
    assert payment.c == 0 and payment.d.pay_order_id.string_value.startswith("RC") and payment.d.call_pay_info
    with pytest.raises(EnvelopeError) as unknown:
        http.create_charge_payment(id=987654, pay_type=pay_type)
    assert unknown.value.family == "000" and unknown.value.code == RechargeCode.NOT_FOUND
    assert unknown.value.code_name == "NOT_FOUND" and unknown.value.request_id
    with pytest.raises(EnvelopeError) as anonymous:
        VipayHttp(env("VIPAY_HTTP")).create_charge_payment(id=package.id, pay_type=pay_type)
    assert anonymous.value.code == RechargeCode.UNAUTHENTICATED and anonymous.value.family == "000"

    center = http.get_recharge_center(store_id=1, platform="APP")
    assert center.status == 200 and center.data.personal.user_id == 506 and center.data.plan_list
    with pytest.raises(EnvelopeError) as signed_out:
        VipayHttp(env("VIPAY_HTTP")).get_recharge_center(store_id=1, platform="APP")
    assert signed_out.value.family == "003" and signed_out.value.code == YoshopStatus.UNAUTHENTICATED
    assert signed_out.value.code_name == "UNAUTHENTICATED" and signed_out.value.request_id
