"""WeChat Pay API v3 through the `wechatpayv3` SDK.

Creating an order (POST /v3/pay/transactions/app|jsapi) and querying one go through
the SDK, which signs our requests (Authorization: WECHATPAY2-SHA256-RSA2048 with the
merchant API key) and verifies the answers with the WeChat Pay public key.
Notifications are verified here with the SDK's primitives, because its callback()
neither checks the timestamp window nor lets us choose the key by Wechatpay-Serial
without a network round trip: the key is the WeChat Pay public key (PUB_KEY_ID_...)
or one of the configured platform certificates (during a switch both are valid)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from cryptography.x509 import load_pem_x509_certificate
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core
from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

from server.payments.channels import (
    REFUND_ABNORMAL,
    REFUND_FAILED,
    REFUND_NOT_FOUND,
    REFUND_PROCESSING,
    REFUND_SUCCEEDED,
    ChannelUnavailable,
    Notification,
    NotificationRejected,
    PayData,
    PaymentRequest,
    RefundRequest,
    RefundStatement,
    Reply,
)
from server.payments.statements import (
    MAX_FILE_BYTES,
    Statement,
    StatementError,
    gunzip_if_needed,
    parse_wechat_fundflow,
    parse_wechat_tradebill,
)

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
# trade_state values that end a trade unpaid (NOTPAY / USERPAYING: not paid yet).
CLOSED_STATES = ("CLOSED", "REVOKED", "PAYERROR")
BEIJING = timezone(timedelta(hours=8))
# Refund status (create/query answers, notification refund_status) -> ours.
REFUND_STATES = {"SUCCESS": REFUND_SUCCEEDED, "PROCESSING": REFUND_PROCESSING, "CLOSED": REFUND_FAILED,
                 "ABNORMAL": REFUND_ABNORMAL}
RETRYABLE_ERRORS = ("SYSTEM_ERROR", "FREQUENCY_LIMITED")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def load_platform_certs(directory: str) -> dict[str, object]:
    """serial (upper-case hex) -> public key, from *.pem files."""
    keys = {}
    if directory:
        for path in sorted(Path(directory).glob("*.pem")):
            cert = load_pem_x509_certificate(path.read_bytes())
            keys[format(cert.serial_number, "X")] = cert.public_key()
    return keys


class _GatewayCore(Core):
    """The SDK's signing transport at our API host: its constructor sets `_gate_way`
    to the production host and nothing else changes it, so this subclass sets its own."""

    def __init__(self, gateway_url: str, **options):
        super().__init__(**options)
        self._gate_way = gateway_url


class _GatewayWeChatPay(WeChatPay):
    """The SDK's client over a `_GatewayCore`: `WeChatPay.__init__` builds its Core
    itself (public key given: no network), so this subclass replaces it with ours."""

    def __init__(self, gateway_url: str, **options):
        super().__init__(**options)
        self._core = _GatewayCore(gateway_url, mchid=options["mchid"], cert_serial_no=options["cert_serial_no"],
                                  private_key=options["private_key"], apiv3_key=options["apiv3_key"],
                                  timeout=options["timeout"], public_key=options["public_key"],
                                  public_key_id=options["public_key_id"])


def sdk_call(call, **kwargs) -> tuple[int, str]:
    """(HTTP status, body) of one SDK call; ChannelUnavailable when there is no answer to trust."""
    try:
        return call(**kwargs)
    except requests.RequestException as exc:
        raise ChannelUnavailable(f"WeChat Pay unreachable: {exc}") from exc
    except Exception as exc:
        raise ChannelUnavailable(f"WeChat Pay answer rejected: {exc}") from exc


class WechatPayChannel:
    name = "wechat"

    def __init__(self, *, mchid: str, appid: str, js_appid: str, merchant_serial_no: str, private_key: str,
                 apiv3_key: str, public_key_id: str, public_key: str, api_base: str,
                 platform_keys: Mapping[str, object] | None = None, timeout: float = 10.0, clock=time.time):
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the WeChat Pay APIv3 key must be 32 bytes")
        self.mchid, self.appid, self.js_appid = mchid, appid, js_appid or appid
        self._apiv3_key = apiv3_key
        self._clock = clock
        self._api_base = api_base.rstrip("/")
        self._sdk = _GatewayWeChatPay(
            self._api_base, wechatpay_type=WeChatPayType.APP, mchid=mchid, private_key=private_key,
            cert_serial_no=merchant_serial_no, appid=appid, apiv3_key=apiv3_key,
            public_key=public_key, public_key_id=public_key_id, timeout=(timeout, timeout),
        )
        self._keys = {public_key_id: load_public_key(public_key), **dict(platform_keys or {})}

    @classmethod
    def from_settings(cls, s) -> "WechatPayChannel":
        return cls(
            mchid=s.wechatpay_mchid, appid=s.wechatpay_appid, js_appid=s.wechatpay_js_appid,
            merchant_serial_no=s.wechatpay_merchant_serial_no, private_key=s.secret("wechatpay_private_key"),
            apiv3_key=s.secret("wechatpay_apiv3_key").strip(), public_key_id=s.wechatpay_public_key_id,
            public_key=s.secret("wechatpay_public_key"), api_base=s.wechatpay_api_base,
            platform_keys=load_platform_certs(s.wechatpay_platform_certs_dir),
        )

    # ---- paying -------------------------------------------------------------

    def create_payment(self, request: PaymentRequest) -> PayData:
        jsapi = request.pay_method == "WechatPay_Js"
        if jsapi and not request.openid:
            raise ChannelUnavailable("WechatPay_Js needs the payer's openid")
        appid = self.js_appid if jsapi else self.appid
        extra = {}
        if request.expires_at is not None:
            extra["time_expire"] = rfc3339(request.expires_at)
        if request.client_ip:
            extra["scene_info"] = {"payer_client_ip": request.client_ip}
        try:
            code, text = self._sdk.pay(
                description=request.subject[:127], out_trade_no=request.trade_no,
                amount={"total": request.amount_fen, "currency": "CNY"}, notify_url=request.notify_url,
                appid=appid, pay_type=WeChatPayType.JSAPI if jsapi else WeChatPayType.APP,
                payer={"openid": request.openid} if jsapi else None, **extra,
            )
        except requests.RequestException as exc:
            raise ChannelUnavailable(f"WeChat Pay unreachable: {exc}") from exc
        except Exception as exc:  # the SDK raises bare Exception when the answer's signature is bad
            raise ChannelUnavailable(f"WeChat Pay answer rejected: {exc}") from exc
        if code != 200:
            raise ChannelUnavailable(f"WeChat Pay refused the order: {code} {text}")
        prepay_id = json.loads(text)["prepay_id"]
        timestamp, nonce = str(int(self._clock())), secrets.token_hex(16)
        if jsapi:
            package = f"prepay_id={prepay_id}"
            return PayData(client_params={
                "appId": appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": self._sdk.sign([appid, timestamp, nonce, package]),
            })
        return PayData(client_params={
            "appid": appid, "partnerid": self.mchid, "prepayid": prepay_id, "package": "Sign=WXPay",
            "noncestr": nonce, "timestamp": int(timestamp),
            "sign": self._sdk.sign([appid, timestamp, nonce, prepay_id]),
        })

    # ---- notifications ------------------------------------------------------

    def verify_notification(self, body: bytes, content_type: str, headers: Mapping[str, str]) -> Notification:
        h = {k.lower(): v for k, v in headers.items()}
        serial = h.get("wechatpay-serial", "")
        key = self._keys.get(serial) or self._keys.get(serial.upper())
        if key is None:
            raise NotificationRejected(f"unknown Wechatpay-Serial {serial!r}")
        if h.get("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048") != "WECHATPAY2-SHA256-RSA2048":
            raise NotificationRejected("unsupported signature type")
        try:
            stamp = int(h.get("wechatpay-timestamp", ""))
            text = body.decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotificationRejected("malformed timestamp or body") from exc
        # Checked before the signature so a replayed, once-valid notification is refused too.
        if abs(self._clock() - stamp) > MAX_SKEW_SECONDS:
            raise NotificationRejected("timestamp outside 5 minutes")
        if not rsa_verify(str(stamp), h.get("wechatpay-nonce", ""), text, h.get("wechatpay-signature", ""), key):
            raise NotificationRejected("bad signature")
        try:
            envelope = json.loads(text)
            resource = envelope["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise NotificationRejected("unsupported resource algorithm")
            plain = aes_decrypt(resource["nonce"], resource["ciphertext"], resource.get("associated_data", ""),
                                self._apiv3_key)
        except (ValueError, KeyError, TypeError) as exc:
            raise NotificationRejected("malformed notification") from exc
        if plain is None:
            raise NotificationRejected("resource does not decrypt with our APIv3 key")
        if str(envelope.get("event_type", "")).startswith("REFUND."):
            # REFUND.SUCCESS / ABNORMAL / CLOSED: ours, or started in the merchant console.
            refund = self._refund(json.loads(plain), NotificationRejected)
            return Notification(refund.trade_no, refund.total_fen or 0, False, refund.provider_txn_id, refund=refund)
        return self._transaction(json.loads(plain), NotificationRejected)

    def _transaction(self, txn: dict, error: type[Exception]) -> Notification:
        if txn.get("mchid") != self.mchid:
            raise error("mchid is not ours")
        if txn.get("appid") not in (self.appid, self.js_appid):
            raise error("appid is not ours")
        try:
            return Notification(str(txn["out_trade_no"]), int(txn["amount"]["total"]),
                                txn.get("trade_state") == "SUCCESS", str(txn.get("transaction_id", "")),
                                closed=txn.get("trade_state") in CLOSED_STATES)
        except (KeyError, TypeError, ValueError) as exc:
            raise error("missing out_trade_no or amount") from exc

    def ack(self) -> Reply:
        return Reply(204, b"")

    def nack(self, reason: str) -> Reply:
        body = json.dumps({"code": "FAIL", "message": reason}, ensure_ascii=False).encode()
        return Reply(400, body, "application/json")

    # ---- re-query -----------------------------------------------------------

    def query(self, trade_no: str) -> Notification | None:
        code, text = sdk_call(self._sdk.query, out_trade_no=trade_no)
        if code == 404:
            return None  # ORDER_NOT_EXIST
        if code != 200:
            raise ChannelUnavailable(f"WeChat Pay query answered {code}")
        note = self._transaction(json.loads(text), ChannelUnavailable)
        if note.trade_no != trade_no:
            raise ChannelUnavailable("WeChat Pay answered about another trade")
        return note

    def close(self, trade_no: str, amount_fen: int) -> bool:
        """POST …/out-trade-no/{no}/close (an operator's close): 204 closed, 404 never opened."""
        code, text = sdk_call(self._sdk.close, out_trade_no=trade_no)
        if code not in (200, 204, 404):
            raise ChannelUnavailable(f"WeChat Pay close answered {code} {text[:200]}")
        return True

    # ---- refunds (POST /v3/refund/domestic/refunds, GET …/{out_refund_no}) ---------

    def _refund(self, body: dict, error: type[Exception]) -> RefundStatement:
        if "mchid" in body and body["mchid"] != self.mchid:
            raise error("mchid is not ours")
        status = body.get("status") or body.get("refund_status")
        if status not in REFUND_STATES:
            raise error(f"unknown refund status {status!r}")
        try:
            amount = body["amount"]
            return RefundStatement(str(body["out_trade_no"]), REFUND_STATES[status], str(body["out_refund_no"]),
                                   int(amount["refund"]), total_fen=int(amount["total"]),
                                   provider_refund_id=str(body.get("refund_id", "")),
                                   provider_txn_id=str(body.get("transaction_id", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise error("missing out_trade_no, out_refund_no or amount") from exc

    def _refund_call(self, call, *args, **kwargs) -> tuple[int, str]:
        try:
            return call(*args, **kwargs)
        except requests.RequestException as exc:
            raise ChannelUnavailable(f"WeChat Pay unreachable: {exc}") from exc
        except Exception as exc:  # the SDK raises bare Exception when the answer's signature is bad
            raise ChannelUnavailable(f"WeChat Pay answer rejected: {exc}") from exc

    def refund(self, request: RefundRequest) -> RefundStatement:
        """Idempotent by out_refund_no (our refund number)."""
        code, text = self._refund_call(
            self._sdk.refund, out_refund_no=request.refund_no, out_trade_no=request.trade_no,
            amount={"refund": request.amount_fen, "total": request.total_fen, "currency": "CNY"},
            reason=request.reason[:80], notify_url=request.notify_url or None,
        )
        if code == 200:
            statement = self._refund(json.loads(text), ChannelUnavailable)
            if (statement.trade_no, statement.refund_no) != (request.trade_no, request.refund_no):
                raise ChannelUnavailable("WeChat Pay answered about another refund")
            return statement
        try:
            error = json.loads(text).get("code", "")
        except (ValueError, AttributeError):
            error = ""
        if 400 <= code < 500 and error not in RETRYABLE_ERRORS:
            # A business refusal (NOT_ENOUGH, INVALID_REQUEST, …): final.
            log.error("WeChat Pay refused the refund", extra={"refund_no": request.refund_no, "code": error})
            return RefundStatement(request.trade_no, REFUND_FAILED, request.refund_no, request.amount_fen)
        raise ChannelUnavailable(f"WeChat Pay refund answered {code} {error}")

    def query_refund(self, refund_no: str, trade_no: str) -> RefundStatement:
        code, text = self._refund_call(self._sdk.query_refund, out_refund_no=refund_no)
        if code == 404:
            return RefundStatement(trade_no, REFUND_NOT_FOUND, refund_no)
        if code != 200:
            raise ChannelUnavailable(f"WeChat Pay refund query answered {code}")
        statement = self._refund(json.loads(text), ChannelUnavailable)
        if statement.refund_no != refund_no:
            raise ChannelUnavailable("WeChat Pay answered about another refund")
        return statement

    # ---- statements (reconciliation): /v3/bill/tradebill, /v3/bill/fundflowbill ----------

    def _bill(self, call, business_date: str) -> bytes:
        """Applies for a bill (signed answer: download_url + hash), downloads it from our
        own API host only (the URL is WeChat's choice) and checks the hash, which is over
        the original file (a gzip is decompressed first)."""
        try:
            code, text = call(business_date, tar_type="GZIP")
        except requests.RequestException as exc:
            raise StatementError(f"WeChat Pay unreachable: {exc}") from exc
        except Exception as exc:  # the SDK raises bare Exception when the answer's signature is bad
            raise StatementError(f"WeChat Pay answer rejected: {exc}") from exc
        if code != 200:
            raise StatementError(f"WeChat Pay bill application answered {code}: {str(text)[:200]}")
        try:
            answer = json.loads(text)
            url, hash_type, hash_value = answer["download_url"], answer["hash_type"], answer["hash_value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StatementError("WeChat Pay bill answer malformed") from exc
        base = self._api_base + "/"
        if not isinstance(url, str) or not url.startswith(base) or "@" in url[:len(base) + 1]:
            raise StatementError("bill download URL is not on the configured WeChat Pay API host")
        try:
            code, data = self._sdk.download_bill(url)
        except requests.RequestException as exc:
            raise StatementError(f"bill download failed: {exc}") from exc
        if code != 200 or not isinstance(data, bytes):
            raise StatementError(f"bill download answered {code}")
        if len(data) > MAX_FILE_BYTES:
            raise StatementError("bill larger than the statement limit")
        data = gunzip_if_needed(data)
        if str(hash_type).upper() != "SHA1" or hashlib.sha1(data).hexdigest() != str(hash_value).lower():
            raise StatementError("bill hash does not match")
        return data

    def statement(self, business_date: str) -> Statement:
        statement = parse_wechat_tradebill(
            self._bill(lambda d, **kw: self._sdk.trade_bill(d, bill_type="ALL", **kw), business_date), business_date)
        statement.totals.update(parse_wechat_fundflow(
            self._bill(lambda d, **kw: self._sdk.fundflow_bill(d, account_type="BASIC", **kw), business_date)))
        return statement
