"""Local stand-ins for Alipay, WeChat Pay v3 and the App Store Server API.

Each speaks the provider's wire protocol and checks OUR signatures with the keys
the tests generated (a wrong signature is refused the way the provider refuses
it), and signs its own answers and notifications with the provider-side keys."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import zipfile
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
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
        self.bills: dict[str, bytes] = {}  # bill_date -> the trade bill zip
        self.bill_files: dict[str, bytes] = {}  # fileId -> zip (what the download URL serves)
        self.bill_url_host = ""  # planted: the download URL names another host
        super().__init__()

    def publish_bill(self, bill_date: str, lines: list["BillLine"]) -> bytes:
        self.bills[bill_date] = alipay_bill_zip(self.seller_id, bill_date, lines)
        return self.bills[bill_date]

    def download(self, path: str):
        file_id = dict(parse_qsl(urlsplit(path).query)).get("fileId", "")
        data = self.bill_files.get(file_id)
        if data is None:
            return 404, {}, b"expired"
        return 200, {"Content-Type": "application/oct-stream;charset=utf-8",
                     "Content-Disposition": "attachment; filename=bill.csv.zip"}, data

    def bill_url(self, biz: dict):
        name = "alipay_data_dataservice_bill_downloadurl_query_response"
        data = self.bills.get(biz.get("bill_date", ""))
        if biz.get("bill_type") != "trade" or data is None:
            return self._answer(name, {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist",
                                       "sub_msg": "账单不存在"})
        file_id = secrets.token_hex(8)
        self.bill_files[file_id] = data
        base = f"http://{self.bill_url_host}" if self.bill_url_host else self.url
        return self._answer(name, {"code": "10000", "msg": "Success", "bill_download_url":
                                   f"{base}/downloadBillFile.resource?bizType=trade&userId={self.seller_id}"
                                   f"&fileType=csv.zip&bizDates={biz['bill_date'].replace('-', '')}&fileId={file_id}"})

    @property
    def gateway(self) -> str:
        return self.url + "/gateway.do"

    def verify_request(self, fields: dict) -> bool:
        """Alipay checks a request's sign over every parameter but `sign`."""
        return rsa_verify(self.app_public_key, alipay_content(fields), fields.get("sign", ""))

    def handle(self, method, path, headers, body):
        url = urlsplit(path)
        fields = dict(parse_qsl(url.query or body.decode(), keep_blank_values=True))
        self.requests.append((method, fields.get("method", "") or url.path))
        if url.path == "/downloadBillFile.resource" and method == "GET":
            return self.download(path)
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
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            return self.bill_url(biz)
        if method == "alipay.trade.close":
            return self.close_trade(biz)
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer("alipay_trade_query_response", {
                "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST",
                "sub_msg": "交易不存在", "out_trade_no": biz.get("out_trade_no", "")})
        return self._answer("alipay_trade_query_response", {
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "trade_status": trade.trade_status, "total_amount": trade.total_amount, "buyer_logon_id": "b***@example.com",
        })

    def close_trade(self, biz: dict):
        """alipay.trade.close: a waiting trade closes; a paid one is refused; an unknown one does not exist."""
        name, no = "alipay_trade_close_response", biz.get("out_trade_no", "")
        trade = self.trades.get(no)
        if trade is None:
            return self._answer(name, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        if trade.trade_status != "WAIT_BUYER_PAY":
            return self._answer(name, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"})
        trade.trade_status = "TRADE_CLOSED"
        return self._answer(name, {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": trade.trade_no})

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
        self.closed: set[str] = set()  # out_trade_no closed by us
        self.refunds: dict[str, dict] = {}  # out_refund_no -> refund
        self.refund_status = "SUCCESS"  # what a new refund answers (PROCESSING: the result comes later)
        self.rejected: list[str] = []
        self.bills: dict[tuple[str, str], bytes] = {}  # (tradebill|fundflowbill, date) -> original CSV
        self.bill_files: dict[str, bytes] = {}  # token -> what the download URL serves
        self.bill_hash = ""  # planted: a wrong hash_value
        self.bill_url = ""  # planted: a download URL elsewhere
        super().__init__()

    def publish_bills(self, bill_date: str, lines: list["BillLine"]) -> None:
        self.bills[("tradebill", bill_date)] = wechat_trade_bill(self, bill_date, lines)
        self.bills[("fundflowbill", bill_date)] = wechat_fund_bill(bill_date, lines)

    def apply_bill(self, kind: str, query: dict):
        data = self.bills.get((kind, query.get("bill_date", "")))
        if data is None:
            return self._json(400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"})
        if query.get("tar_type") not in (None, "GZIP"):
            return self._json(400, {"code": "PARAM_ERROR", "message": "tar_type"})
        token = secrets.token_urlsafe(24)
        self.bill_files[token] = gzip.compress(data) if query.get("tar_type") == "GZIP" else data
        return self._json(200, {
            "hash_type": "SHA1", "hash_value": self.bill_hash or hashlib.sha1(data).hexdigest(),
            "download_url": self.bill_url or f"{self.url}/v3/billdownload/file?token={token}"})

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
        if method == "GET" and url.path in ("/v3/bill/tradebill", "/v3/bill/fundflowbill"):
            return self.apply_bill(url.path.rsplit("/", 1)[1], dict(parse_qsl(url.query)))
        if method == "GET" and url.path == "/v3/billdownload/file":
            data = self.bill_files.get(dict(parse_qsl(url.query)).get("token", ""))
            if data is None:
                return self._json(404, {"code": "NOT_FOUND", "message": "账单已过期"})
            return 200, {"Content-Type": "application/octet-stream"}, data  # unsigned, as WeChat Pay serves it
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
        if method == "POST" and url.path.startswith(prefix) and url.path.endswith("/close"):
            no = url.path[len(prefix):-len("/close")]
            if json.loads(body).get("mchid") != self.mchid:
                return self._json(400, {"code": "PARAM_ERROR", "message": "mchid"})
            if no not in self.orders:
                return self._json(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            if no in self.paid:
                return self._json(400, {"code": "ORDERPAID", "message": "订单已支付"})
            self.closed.add(no)
            return 204, {"Request-ID": secrets.token_hex(8), **self._signed_headers("")}, b""
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


# ------------------------------------------------------ daily statements ----


@dataclass
class BillLine:
    """A line a test plants in a provider's statement (built from the orders it made)."""

    kind: str  # "payment" | "refund"
    out_trade_no: str
    fen: int
    txn_id: str = field(default_factory=lambda: "4200" + secrets.token_hex(12))
    refund_no: str = ""
    refund_id: str = field(default_factory=lambda: "50" + secrets.token_hex(14))
    fee_fen: int = 0  # charged (payment) or given back (refund), positive
    refund_status: str = "SUCCESS"
    time: str = "2026-12-04 10:00:00"


def yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class _GbkName(zipfile.ZipInfo):
    """Alipay's zip names are GBK bytes without the UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits


def alipay_bill_zip(seller_id: str, bill_date: str, lines: list[BillLine]) -> bytes:
    """The trade bill zip as Alipay serves it: a GBK detail file (comment lines,
    tab-padded values, refunds negative, fee negative = charged) and its summary file."""
    day = bill_date.replace("-", "")
    y, m, d = bill_date.split("-")
    head = [
        "#支付宝业务明细查询", f"#账号：[{seller_id}0156]",
        f"#起始日期：[{y}年{m}月{d}日 00:00:00]   终止日期：[{y}年{m}月{int(d) + 1:02d}日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
        "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
        "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注",
    ]
    rows = []
    for line in lines:
        refund = line.kind == "refund"
        amount = yuan(-line.fen if refund else line.fen)
        fee = yuan(line.fee_fen if refund else -line.fee_fen)
        rows.append(",".join([
            f"{line.txn_id}\t", f"{line.out_trade_no}\t", "退款\t" if refund else "交易\t", "会员, 充值", line.time,
            line.time, "\t", "\t", "\t", "\t", "*杨(137****2600)\t", amount, amount, "0.00", "0.00", "0.00", "0.00",
            "0.00", "", "0.00\t", "0.00", f"{line.refund_no}\t" if refund else "\t", fee, "0.00", ""]).replace(
                "会员, 充值", '"会员, 充值"'))
    paid = sum(x.fen for x in lines if x.kind == "payment")
    refunded = sum(x.fen for x in lines if x.kind == "refund")
    tail = ["#-----------------------------------------业务明细列表结束------------------------------------",
            f"#交易合计：{sum(1 for x in lines if x.kind == 'payment')}笔，商家实收共{yuan(paid)}元",
            f"#退款合计：{sum(1 for x in lines if x.kind == 'refund')}笔，商家实收共{yuan(-refunded)}元",
            f"#导出时间：[{y}年{m}月{d}日 10:00:00]"]
    detail = "\r\n".join(head + rows + tail) + "\r\n"
    summary = "\r\n".join([
        "#支付宝业务汇总查询", f"#账号：[{seller_id}0156]",
        "#-----------------------------------------业务汇总列表----------------------------------------",
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）",
        f"合计,,{sum(1 for x in lines if x.kind == 'payment')},{sum(1 for x in lines if x.kind == 'refund')},"
        f"{yuan(paid - refunded)},{yuan(paid - refunded)}",
        "#-----------------------------------------业务汇总列表结束------------------------------------"]) + "\r\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(_GbkName(f"{seller_id}0156_{day}_业务明细.csv"), detail.encode("gbk"))
        z.writestr(_GbkName(f"{seller_id}0156_{day}_业务明细(汇总).csv"), summary.encode("gbk"))
    return out.getvalue()


def _backquoted(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([f"`{v}" for v in values])
    return out.getvalue()


def wechat_trade_bill(fake: "FakeWechatPay", bill_date: str, lines: list[BillLine]) -> bytes:
    """/v3/bill/tradebill bill_type=ALL: back-quoted values, fees with 5 decimals
    (refund lines give the fee back: negative), the summary header and values last."""
    header = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
              "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
              "手续费,费率,订单金额,申请退款金额,费率备注\r\n")
    text = header
    for line in lines:
        refund = line.kind == "refund"
        fee = Decimal(-line.fee_fen if refund else line.fee_fen) / 100
        text += _backquoted([
            f"{bill_date} 10:00:00", sorted(fake.appids)[0], fake.mchid, "0", "", line.txn_id, line.out_trade_no,
            "o_test", "APP", "REFUND" if refund else "SUCCESS", "OTHERS", "CNY",
            "0.00" if refund else yuan(line.fen), "0.00", line.refund_id if refund else "0",
            line.refund_no if refund else "0", yuan(line.fen) if refund else "0.00", "0.00",
            "ORIGINAL" if refund else "", line.refund_status if refund else "", "会员, 充值",
            '{"k":"v, w"}', f"{fee:.5f}", "0.60%", "0.00" if refund else yuan(line.fen),
            yuan(line.fen) if refund else "0.00", ""])
    paid = sum(x.fen for x in lines if x.kind == "payment")
    refunded = sum(x.fen for x in lines if x.kind == "refund")
    fees = Decimal(sum(x.fee_fen if x.kind == "payment" else -x.fee_fen for x in lines)) / 100
    text += "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    text += _backquoted([str(len(lines)), yuan(paid), yuan(refunded), "0.00", f"{fees:.5f}", yuan(paid),
                         yuan(refunded)])
    return text.encode("utf-8")


def wechat_fund_bill(bill_date: str, lines: list[BillLine]) -> bytes:
    header = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号\r\n"
    text, balance, income, expense, n_in, n_out, rows = header, 0, 0, 0, 0, 0, 0
    for line in lines:
        entries = [("退款", "支出", line.fen)] if line.kind == "refund" else [("交易", "收入", line.fen)]
        if line.kind == "payment" and line.fee_fen:
            entries.append(("扣除交易手续费", "支出", line.fee_fen))
        for name, direction, fen in entries:
            balance += fen if direction == "收入" else -fen
            income += fen if direction == "收入" else 0
            expense += fen if direction == "支出" else 0
            n_in += direction == "收入"
            n_out += direction == "支出"
            rows += 1
            text += _backquoted([f"{bill_date} 10:00:00", line.txn_id, secrets.token_hex(10), name, name, direction,
                                 yuan(fen), yuan(balance), "system", "缺省", line.refund_no or line.out_trade_no])
    text += "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n"
    text += _backquoted([str(rows), str(n_in), yuan(income), str(n_out), yuan(expense)])
    return text.encode("utf-8")


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
