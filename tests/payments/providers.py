"""Local stand-ins for Alipay, WeChat Pay v3 and the App Store Server API.

Each speaks the provider's wire protocol and checks OUR signatures with the keys
the tests generated (a wrong signature is refused the way the provider refuses
it), and signs its own answers and notifications with the provider-side keys."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .keys import rsa_sign, rsa_verify


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 whose requests go to `handle`."""

    def __init__(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if outer.down:  # the provider is unreachable for a while (outcome unknown)
                    status, headers, payload = 503, {}, b"Service Unavailable"
                else:
                    status, headers, payload = outer.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.requests: list[tuple[str, str]] = []
        self.down = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, method, path, headers, body) -> tuple[int, dict, bytes]:
        raise NotImplementedError


def alipay_content(fields: dict, drop=("sign",)) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in drop and fields[k] != "")


# ---------------------------------------------------------------- Alipay ----


@dataclass
class AlipayTrade:
    out_trade_no: str
    total_amount: str
    trade_status: str
    trade_no: str = field(default_factory=lambda: "2026" + secrets.token_hex(12))


class FakeAlipay(FakeServer):
    """GET /gateway.do?<signed query> for alipay.trade.query; builds notifications."""

    def __init__(self, app_id: str, seller_id: str, app_public_key, alipay_private_key):
        self.app_id, self.seller_id = app_id, seller_id
        self.app_public_key = app_public_key  # verifies our requests
        self.private_key = alipay_private_key  # signs answers and notifications
        self.trades: dict[str, AlipayTrade] = {}
        self.refunds: dict[str, tuple[str, int]] = {}  # out_request_no -> (out_trade_no, fen)
        self.rejected: list[str] = []
        super().__init__()

    @property
    def gateway(self) -> str:
        return self.url + "/gateway.do"

    def verify_request(self, fields: dict) -> bool:
        """Alipay checks a request's sign over every parameter but `sign`."""
        return rsa_verify(self.app_public_key, alipay_content(fields), fields.get("sign", ""))

    def handle(self, method, path, headers, body):
        url = urlsplit(path)
        fields = dict(parse_qsl(url.query or body.decode(), keep_blank_values=True))
        self.requests.append((method, fields.get("method", "")))
        if url.path != "/gateway.do":
            return 404, {}, b""
        if not self.verify_request(fields) or fields.get("app_id") != self.app_id:
            self.rejected.append("sign")
            return self._answer("alipay_trade_query_response",
                                {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"},
                                signed=False)
        biz = json.loads(fields["biz_content"])
        method = fields.get("method", "")
        if method == "alipay.trade.refund":
            return self.refund(biz)
        if method == "alipay.trade.fastpay.refund.query":
            return self.refund_query(biz)
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer("alipay_trade_query_response", {
                "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST",
                "sub_msg": "交易不存在", "out_trade_no": biz.get("out_trade_no", "")})
        return self._answer("alipay_trade_query_response", {
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "trade_status": trade.trade_status, "total_amount": trade.total_amount, "buyer_logon_id": "b***@example.com",
        })

    def refunded_fen(self, out_trade_no: str) -> int:
        return sum(fen for no, fen in self.refunds.values() if no == out_trade_no)

    def refund(self, biz: dict):
        """alipay.trade.refund: idempotent by out_request_no (a repeat answers fund_change N)."""
        name = "alipay_trade_refund_response"
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(name, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        amount = round(float(biz["refund_amount"]) * 100)
        fund_change = "N"
        if biz["out_request_no"] not in self.refunds:
            if self.refunded_fen(trade.out_trade_no) + amount > round(float(trade.total_amount) * 100):
                return self._answer(name, {"code": "40004", "msg": "Business Failed",
                                           "sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "sub_msg": "退款金额超限"})
            self.refunds[biz["out_request_no"]] = (trade.out_trade_no, amount)
            fund_change = "Y"
        return self._answer(name, {
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "b***@example.com", "fund_change": fund_change,
            "refund_fee": "%.2f" % (self.refunded_fen(trade.out_trade_no) / 100),
        })

    def refund_query(self, biz: dict):
        name = "alipay_trade_fastpay_refund_query_response"
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(name, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        found = self.refunds.get(biz.get("out_request_no", ""))
        if found is None:  # Alipay answers success without refund_status: never received
            return self._answer(name, {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no,
                                       "out_request_no": biz.get("out_request_no", "")})
        return self._answer(name, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                   "out_trade_no": trade.out_trade_no, "out_request_no": biz["out_request_no"],
                                   "total_amount": trade.total_amount, "refund_amount": "%.2f" % (found[1] / 100),
                                   "refund_status": "REFUND_SUCCESS"})

    def _answer(self, name: str, content: dict, signed: bool = True):
        inner = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        # The signature covers the exact JSON text of the response object.
        raw = '{"%s":%s%s}' % (name, inner, ',"sign":"%s"' % rsa_sign(self.private_key, inner) if signed else "")
        return 200, {"Content-Type": "text/html;charset=utf-8"}, raw.encode()

    def notification(self, out_trade_no: str, total_amount: str, trade_status: str = "TRADE_SUCCESS",
                     **overrides) -> bytes:
        fields = {
            "notify_time": time.strftime("%Y-%m-%d %H:%M:%S"), "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16), "charset": "utf-8", "version": "1.0",
            "sign_type": "RSA2", "trade_no": "2026" + secrets.token_hex(12), "app_id": self.app_id,
            "out_trade_no": out_trade_no, "seller_id": self.seller_id, "trade_status": trade_status,
            "total_amount": total_amount, "receipt_amount": total_amount, "subject": "购买会员",
            "gmt_payment": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        fields.update(overrides)
        # Notifications are signed over everything but sign and sign_type.
        fields["sign"] = rsa_sign(self.private_key, alipay_content(fields, drop=("sign", "sign_type")))
        return urlencode(fields).encode()


# ----------------------------------------------------------- WeChat Pay v3 ----


def parse_authorization(value: str) -> dict[str, str] | None:
    scheme, _, rest = value.partition(" ")
    if scheme != "WECHATPAY2-SHA256-RSA2048":
        return None
    out = {}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        out[k] = v.strip('"')
    return out


class FakeWechatPay(FakeServer):
    """POST /v3/pay/transactions/{app,jsapi}, GET /v3/pay/transactions/out-trade-no/{no};
    builds signed, encrypted notifications."""

    def __init__(self, mchid, merchant_serial, merchant_public_key, platform_key, public_key_id, apiv3_key,
                 appids):
        self.mchid, self.merchant_serial, self.merchant_public_key = mchid, merchant_serial, merchant_public_key
        self.platform_key, self.public_key_id, self.apiv3_key = platform_key, public_key_id, apiv3_key
        self.appids = set(appids)
        self.orders: dict[str, dict] = {}  # out_trade_no -> order body
        self.paid: dict[str, str] = {}  # out_trade_no -> transaction_id
        self.refunds: dict[str, dict] = {}  # out_refund_no -> refund
        self.refund_status = "SUCCESS"  # what a new refund answers (PROCESSING: the result comes later)
        self.rejected: list[str] = []
        super().__init__()

    def check_authorization(self, method, path, headers, body) -> str | None:
        """What WeChat Pay checks on every request; None when fine, else the error code."""
        auth = parse_authorization(headers.get("Authorization", ""))
        if auth is None:
            return "SIGN_ERROR"
        if auth.get("mchid") != self.mchid or auth.get("serial_no") != self.merchant_serial:
            return "SIGN_ERROR"
        if abs(time.time() - int(auth.get("timestamp", "0"))) > 300:
            return "SIGN_ERROR"
        message = f"{method}\n{path}\n{auth['timestamp']}\n{auth.get('nonce_str', '')}\n{body.decode()}\n"
        if not rsa_verify(self.merchant_public_key, message, auth.get("signature", "")):
            return "SIGN_ERROR"
        return None

    def handle(self, method, path, headers, body):
        self.requests.append((method, path))
        error = self.check_authorization(method, path, headers, body)
        if error:
            self.rejected.append(path)
            return self._json(401, {"code": error, "message": "签名错误"})
        url = urlsplit(path)
        if method == "POST" and url.path in ("/v3/pay/transactions/app", "/v3/pay/transactions/jsapi"):
            order = json.loads(body)
            if order.get("mchid") != self.mchid or order.get("appid") not in self.appids:
                return self._json(400, {"code": "PARAM_ERROR", "message": "appid和mch_id不匹配"})
            if url.path.endswith("jsapi") and not order.get("payer", {}).get("openid"):
                return self._json(400, {"code": "PARAM_ERROR", "message": "缺少参数openid"})
            order["prepay_id"] = "wx" + secrets.token_hex(14)
            self.orders[order["out_trade_no"]] = order
            return self._json(200, {"prepay_id": order["prepay_id"]})
        if method == "POST" and url.path == "/v3/refund/domestic/refunds":
            return self.create_refund(json.loads(body))
        refunds = "/v3/refund/domestic/refunds/"
        if method == "GET" and url.path.startswith(refunds):
            found = self.refunds.get(url.path[len(refunds):])
            if found is None:
                return self._json(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return self._json(200, found)
        prefix = "/v3/pay/transactions/out-trade-no/"
        if method == "GET" and url.path.startswith(prefix):
            no = url.path[len(prefix):]
            if dict(parse_qsl(url.query)).get("mchid") != self.mchid:
                return self._json(400, {"code": "PARAM_ERROR", "message": "mchid"})
            order = self.orders.get(no)
            if order is None:
                return self._json(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            return self._json(200, self.transaction(no))
        return self._json(404, {"code": "NOT_FOUND", "message": path})

    def create_refund(self, request: dict):
        """POST /v3/refund/domestic/refunds: idempotent by out_refund_no."""
        no = request.get("out_trade_no", "")
        if no not in self.paid:
            return self._json(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"})
        if request["out_refund_no"] in self.refunds:
            return self._json(200, self.refunds[request["out_refund_no"]])
        amount = request["amount"]
        total = self.orders[no]["amount"]["total"]
        done = sum(r["amount"]["refund"] for r in self.refunds.values() if r["out_trade_no"] == no)
        if amount.get("total") != total or done + amount["refund"] > total:
            return self._json(400, {"code": "INVALID_REQUEST", "message": "退款金额超过可退金额"})
        refund = self.refund_record(no, request["out_refund_no"], amount["refund"], self.refund_status)
        refund["notify_url"] = request.get("notify_url", "")
        self.refunds[request["out_refund_no"]] = refund
        return self._json(200, {k: v for k, v in refund.items() if k != "notify_url"})

    def refund_record(self, no: str, out_refund_no: str, fen: int, status: str) -> dict:
        total = self.orders[no]["amount"]["total"]
        return {
            "refund_id": "50" + secrets.token_hex(14), "out_refund_no": out_refund_no,
            "transaction_id": self.paid.get(no, ""), "out_trade_no": no, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": "2026-11-22T10:00:00+08:00", "status": status,
            "amount": {"total": total, "refund": fen, "payer_total": total, "payer_refund": fen,
                       "settlement_refund": fen, "settlement_total": total, "discount_refund": 0,
                       "currency": "CNY", "refund_fee": 0},
        }

    def refund_notification(self, refund: dict, status: str | None = None, **options) -> tuple[bytes, dict]:
        """(body, headers) of a REFUND.<status> notification, signed and AEAD-encrypted."""
        status = status or refund["status"]
        resource = {
            "mchid": self.mchid, "out_trade_no": refund["out_trade_no"], "transaction_id": refund["transaction_id"],
            "out_refund_no": refund["out_refund_no"], "refund_id": refund["refund_id"], "refund_status": status,
            "success_time": "2026-11-22T10:00:05+08:00", "user_received_account": "支付用户零钱",
            "amount": {k: refund["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")},
        }
        return self.notification(resource, event_type=f"REFUND.{status}", original_type="refund", **options)

    def transaction(self, no: str, **overrides) -> dict:
        order = self.orders[no]
        paid = no in self.paid
        txn = {
            "appid": order["appid"], "mchid": self.mchid, "out_trade_no": no,
            "trade_state": "SUCCESS" if paid else "NOTPAY", "trade_state_desc": "支付成功" if paid else "未支付",
            "trade_type": "JSAPI" if "payer" in order else "APP",
            "amount": {"total": order["amount"]["total"], "payer_total": order["amount"]["total"], "currency": "CNY"},
        }
        if paid:
            txn.update(transaction_id=self.paid[no], success_time="2026-11-21T10:00:00+08:00",
                       payer={"openid": "o_test"})
        txn.update(overrides)
        return txn

    def _signed_headers(self, text: str, timestamp: int | None = None, key=None, serial=None) -> dict:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(key or self.platform_key, f"{ts}\n{nonce}\n{text}\n"),
            "Wechatpay-Serial": serial or self.public_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def _json(self, status: int, payload: dict):
        text = json.dumps(payload, ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8", "Request-ID": secrets.token_hex(8)}
        if status < 300:
            headers.update(self._signed_headers(text))
        return status, headers, text.encode()

    def notification(self, transaction: dict, *, timestamp: int | None = None, key=None, serial=None,
                     apiv3_key: str | None = None, event_type: str = "TRANSACTION.SUCCESS",
                     original_type: str = "transaction") -> tuple[bytes, dict]:
        """(body, headers) of a TRANSACTION.SUCCESS (or other event's) notification."""
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay sends
        aad = original_type
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(transaction, ensure_ascii=False).encode(), aad.encode())
        envelope = {
            "id": secrets.token_hex(16), "create_time": "2026-11-21T10:00:00+08:00",
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
            "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": aad, "nonce": nonce},
        }
        text = json.dumps(envelope, ensure_ascii=False)
        headers = self._signed_headers(text, timestamp, key, serial)
        headers["Content-Type"] = "application/json"
        return text.encode(), headers


# ------------------------------------------------------------ App Store -----


class FakeAppStoreApi(FakeServer):
    """GET /inApps/v1/transactions/{transactionId} (Get Transaction Info), with
    the ES256 bearer token checked against our API key."""

    def __init__(self, api_public_key, key_id, issuer_id, bundle_id):
        self.api_public_key, self.key_id, self.issuer_id, self.bundle_id = api_public_key, key_id, issuer_id, bundle_id
        self.transactions: dict[str, str] = {}  # transactionId -> signed transaction (JWS)
        self.rejected: list[str] = []
        super().__init__()

    def handle(self, method, path, headers, body):
        self.requests.append((method, path))
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                raise jwt.InvalidTokenError("kid")
            claims = jwt.decode(token, self.api_public_key, algorithms=["ES256"], audience="appstoreconnect-v1",
                                issuer=self.issuer_id)
            if claims.get("bid") != self.bundle_id:
                raise jwt.InvalidTokenError("bid")
        except jwt.InvalidTokenError:
            self.rejected.append(path)
            return 401, {}, b""
        prefix = "/inApps/v1/transactions/"
        if method == "GET" and path.startswith(prefix):
            signed = self.transactions.get(path[len(prefix):])
            if signed is None:
                return 404, {"Content-Type": "application/json"}, b'{"errorCode":4040010,"errorMessage":"Transaction id not found."}'
            return 200, {"Content-Type": "application/json"}, json.dumps({"signedTransactionInfo": signed}).encode()
        return 404, {}, b""
