"""Alipay (open platform, RSA2) through python-alipay-sdk (`import alipay`).

Pay methods: Alipay_AopApp (app order string), Alipay_AopWap and Alipay_AopPage
(redirect URL = gateway + "?" + signed query). Notifications are form POSTs to the
notify_url; they are verified with ALIPAY's public key after removing `sign` and
`sign_type` (the SDK's verify() only drops sign_type), then app_id and seller_id
must be ours. Reply exactly `success`; anything else makes Alipay retry."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from urllib.error import URLError
from urllib.parse import parse_qsl

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig

from server.payments.channels import (
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
from server.payments.statements import Statement, StatementError, parse_alipay_zip
from server.payments.url_policy import fetch_allowed
from server.platform.money import parse_yuan, yuan_string_2dp

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8))  # Alipay's timestamps are Beijing time
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
KNOWN_STATUSES = PAID + ("WAIT_BUYER_PAY", "TRADE_CLOSED")
# Where a statement may be downloaded from (the query answers a provider-chosen URL):
# Alipay's bill centre; ALIPAY_BILL_HOSTS adds others (host or host:port).
BILL_HOSTS = ("dwbillcenter.alipay.com",)
METHODS = {
    "Alipay_AopApp": ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
    "Alipay_AopWap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
    "Alipay_AopPage": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
}


def pem(key: str, kind: str) -> str:
    """Alipay's console hands out bare base64 keys; the SDK wants PEM."""
    key = key.strip()
    if key.startswith("-----BEGIN"):
        return key
    body = "\n".join(textwrap.wrap("".join(key.split()), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def bj_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class _GatewayAliPay(AliPay):
    """The SDK's client at our gateway: the SDK only knows production and its sandbox
    (its constructor sets `_gateway` from `debug`), so this subclass sets its own."""

    def __init__(self, gateway_url: str, **options):
        super().__init__(**options)
        self._gateway = gateway_url


class AlipayChannel:
    name = "alipay"

    def __init__(self, *, app_id: str, seller_id: str, app_private_key: str, alipay_public_key: str,
                 gateway_url: str, timeout: float = 10.0, clock=lambda: datetime.now(timezone.utc),
                 bill_hosts: tuple[str, ...] = BILL_HOSTS):
        if not (app_id and seller_id and app_private_key and alipay_public_key):
            raise ValueError("Alipay needs app_id, seller_id, the app private key and Alipay's public key")
        self.app_id = app_id
        self.seller_id = seller_id
        self.gateway_url = gateway_url
        self._clock = clock
        self._timeout = timeout
        self._bill_hosts = tuple(h.strip().lower() for h in bill_hosts if h.strip())
        self._sdk = _GatewayAliPay(
            gateway_url,
            appid=app_id,
            app_notify_url=None,
            app_private_key_string=pem(app_private_key, "PRIVATE KEY"),  # the label does not matter to the SDK
            alipay_public_key_string=pem(alipay_public_key, "PUBLIC KEY"),
            sign_type="RSA2",
            config=AliPayConfig(timeout=timeout),
        )

    # ---- paying -------------------------------------------------------------

    def create_payment(self, request: PaymentRequest) -> PayData:
        method, product_code = METHODS[request.pay_method]
        biz = {
            "out_trade_no": request.trade_no,
            "total_amount": yuan_string_2dp(request.amount_fen),
            "subject": request.subject,
            "product_code": product_code,
        }
        if request.expires_at is not None:
            biz["time_expire"] = bj_time(request.expires_at)
        signed = self._sdk.client_api(method, biz, notify_url=request.notify_url, timestamp=bj_time(self._clock()))
        if method == "alipay.trade.app.pay":
            return PayData(order_string=signed)
        # wap / page: the client opens this URL (a GET to the gateway with the signed query).
        return PayData(order_string=f"{self.gateway_url}?{signed}", gateway_url=self.gateway_url)

    # ---- notifications ------------------------------------------------------

    def verify_notification(self, body: bytes, content_type: str, headers: Mapping[str, str]) -> Notification:
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotificationRejected("body is not a form") from exc
        signature = fields.pop("sign", "")
        if not signature:
            raise NotificationRejected("unsigned")
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("unsupported sign_type")
        try:
            # verify() pops sign_type itself; sign was removed above.
            authentic = self._sdk.verify(dict(fields), signature)
        except (AliPayException, ValueError, TypeError) as exc:
            raise NotificationRejected(f"signature check failed: {exc}") from exc
        if not authentic:
            raise NotificationRejected("bad signature")
        if fields.get("app_id") != self.app_id:
            raise NotificationRejected("app_id is not ours")
        if fields.get("seller_id") != self.seller_id:
            raise NotificationRejected("seller_id is not ours")
        status = fields.get("trade_status", "")
        if status not in KNOWN_STATUSES:
            raise NotificationRejected(f"unknown trade_status {status!r}")
        try:
            amount = parse_yuan(fields["total_amount"])
            trade_no = fields["out_trade_no"]
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("missing or malformed out_trade_no / total_amount") from exc
        refund = None
        if fields.get("refund_fee"):
            # A refund of this trade (ours, or started in Alipay's console): refund_fee is the
            # trade's refunded total, out_biz_no the refund request number.
            try:
                refunded = parse_yuan(fields["refund_fee"])
            except ValueError as exc:
                raise NotificationRejected("malformed refund_fee") from exc
            if refunded > 0:
                refund = RefundStatement(trade_no, REFUND_SUCCEEDED, fields.get("out_biz_no", ""),
                                         refunded_total_fen=refunded, total_fen=amount,
                                         provider_txn_id=fields.get("trade_no", ""))
        return Notification(trade_no, amount, status in PAID, fields.get("trade_no", ""), status == "TRADE_CLOSED",
                            refund=refund)

    def ack(self) -> Reply:
        return Reply(200, b"success")

    def nack(self, reason: str) -> Reply:
        return Reply(400, b"fail")

    # ---- re-query -----------------------------------------------------------

    def _call(self, api: str, biz: dict) -> dict:
        """One signed server call; its answer's signature verified by the SDK."""
        try:
            return self._sdk.server_api(api, biz, timestamp=bj_time(self._clock()))
        except AliPayValidationError as exc:
            raise ChannelUnavailable(f"{api} answer has a bad signature") from exc
        except AliPayException as exc:
            raise ChannelUnavailable(f"{api} failed: {exc}") from exc
        except (URLError, OSError, ValueError) as exc:
            raise ChannelUnavailable(f"alipay gateway unreachable: {exc}") from exc

    def query(self, trade_no: str) -> Notification | None:
        """alipay.trade.query: the signed answer about one of our trades."""
        answer = self._call("alipay.trade.query", {"out_trade_no": trade_no})
        code = answer.get("code")
        if code == "40004" and answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return None  # the buyer never opened the cashier
        if code != "10000":
            raise ChannelUnavailable(f"alipay.trade.query answered {code} {answer.get('sub_code')}")
        if answer.get("out_trade_no") != trade_no:
            raise ChannelUnavailable("alipay.trade.query answered about another trade")
        status = answer.get("trade_status", "")
        try:
            amount = parse_yuan(answer["total_amount"])
        except (KeyError, ValueError) as exc:
            raise ChannelUnavailable("alipay.trade.query: malformed total_amount") from exc
        return Notification(trade_no, amount, status in PAID, answer.get("trade_no", ""), status == "TRADE_CLOSED")

    def close(self, trade_no: str, amount_fen: int) -> bool:
        """alipay.trade.close (an operator's close): True when the trade is closed or was
        never opened (nothing to close), False when it is paid there (ACQ.TRADE_STATUS_ERROR)."""
        answer = self._call("alipay.trade.close", {"out_trade_no": trade_no})
        code, sub_code = answer.get("code"), answer.get("sub_code")
        if code == "10000" or (code == "40004" and sub_code == "ACQ.TRADE_NOT_EXIST"):
            return True
        if code == "40004" and sub_code == "ACQ.TRADE_STATUS_ERROR":
            return False
        raise ChannelUnavailable(f"alipay.trade.close answered {code} {sub_code}")

    # ---- refunds --------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundStatement:
        """alipay.trade.refund, idempotent by out_request_no (our refund number)."""
        answer = self._call("alipay.trade.refund", {
            "out_trade_no": request.trade_no, "refund_amount": yuan_string_2dp(request.amount_fen),
            "out_request_no": request.refund_no, "refund_reason": request.reason[:256],
        })
        code = answer.get("code")
        if code == "10000":
            if answer.get("out_trade_no", request.trade_no) != request.trade_no:
                raise ChannelUnavailable("alipay.trade.refund answered about another trade")
            if answer.get("fund_change") == "Y":
                return RefundStatement(request.trade_no, REFUND_SUCCEEDED, request.refund_no, request.amount_fen,
                                       provider_refund_id=answer.get("trade_no", ""))
            # fund_change N (or absent): Alipay says to confirm with the refund query.
            try:
                return self.query_refund(request.refund_no, request.trade_no)
            except ChannelUnavailable:
                return RefundStatement(request.trade_no, REFUND_PROCESSING, request.refund_no)
        if code == "40004" and answer.get("sub_code") not in ("ACQ.SYSTEM_ERROR", "ACQ.REFUND_FEE_ERROR_RETRY"):
            # A business refusal (not refundable, amount over the rest, trade finished ...): final.
            log.error("alipay refused the refund", extra={"refund_no": request.refund_no,
                                                           "sub_code": answer.get("sub_code")})
            return RefundStatement(request.trade_no, REFUND_FAILED, request.refund_no, request.amount_fen)
        raise ChannelUnavailable(f"alipay.trade.refund answered {code} {answer.get('sub_code')}")

    def query_refund(self, refund_no: str, trade_no: str) -> RefundStatement:
        """alipay.trade.fastpay.refund.query: REFUND_SUCCESS, or no refund_status when
        Alipay never took this request (then it may be sent again)."""
        answer = self._call("alipay.trade.fastpay.refund.query",
                            {"out_trade_no": trade_no, "out_request_no": refund_no})
        code = answer.get("code")
        if code == "40004" and answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return RefundStatement(trade_no, REFUND_NOT_FOUND, refund_no)
        if code != "10000":
            raise ChannelUnavailable(f"alipay refund query answered {code} {answer.get('sub_code')}")
        if answer.get("refund_status") != "REFUND_SUCCESS":
            return RefundStatement(trade_no, REFUND_NOT_FOUND, refund_no)
        try:
            amount = parse_yuan(answer["refund_amount"])
        except (KeyError, ValueError) as exc:
            raise ChannelUnavailable("alipay refund query: malformed refund_amount") from exc
        return RefundStatement(trade_no, REFUND_SUCCEEDED, refund_no, amount, provider_refund_id=answer.get("trade_no", ""))

    # ---- statements (reconciliation) ---------------------------------------------

    def statement(self, business_date: str) -> Statement:
        """The trade bill of one business date: alipay.data.dataservice.bill.downloadurl.query
        answers a short-lived URL (signed answer, checked by the SDK); the zip is fetched
        only from the bill hosts. Raises StatementError (the run fails and is retried)."""
        try:
            answer = self._call("alipay.data.dataservice.bill.downloadurl.query",
                                {"bill_type": "trade", "bill_date": business_date})
        except ChannelUnavailable as exc:
            raise StatementError(str(exc)) from exc
        if answer.get("code") != "10000" or not answer.get("bill_download_url"):
            raise StatementError(f"bill download URL query answered {answer.get('code')} {answer.get('sub_code')}")
        data = fetch_allowed(answer["bill_download_url"], self._bill_hosts, self._timeout)
        return parse_alipay_zip(data, business_date)
