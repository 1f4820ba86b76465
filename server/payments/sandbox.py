"""The sandbox channel: pays nothing, but speaks a real signed protocol so the whole
flow (pay data -> notification through the gateway -> fulfilment) is exercised.

Notification: a form POST with out_trade_no, total_amount (fen), trade_status
(PAID | CLOSED), txn_id, timestamp (unix seconds) and sign = hex HMAC-SHA256 over
the other fields sorted and joined as k=v&k=v, keyed with SANDBOX_SECRET."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from server.payments.channels import (
    REFUND_SUCCEEDED,
    Notification,
    NotificationRejected,
    PayData,
    PaymentRequest,
    RefundRequest,
    RefundStatement,
    Reply,
)
from server.payments.sandbox_books import CLOSED, PAID, SandboxBooks

MAX_SKEW_SECONDS = 300


def canonical(fields: Mapping[str, str]) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k] != "")


def sign(secret: str, fields: Mapping[str, str]) -> str:
    return hmac.new(secret.encode(), canonical(fields).encode(), hashlib.sha256).hexdigest()


class SandboxChannel:
    name = "sandbox"

    def __init__(self, secret: str, clock=time.time, books: SandboxBooks | None = None):
        if not secret:
            raise ValueError("SANDBOX_SECRET is not set (run `python -m server keys`)")
        self._secret = secret
        self._clock = clock
        self.books = books  # the pretend provider's side (re-query, close); None: it knows no trade

    def create_payment(self, request: PaymentRequest) -> PayData:
        now = int(self._clock())
        if request.pay_method.startswith("WechatPay"):
            params = {
                "appid": "sandbox",
                "partnerid": "sandbox",
                "prepayid": f"sandbox_{request.trade_no}",
                "package": "Sign=WXPay",
                "noncestr": secrets.token_hex(16),
                "timestamp": str(now),
            }
            params["sign"] = sign(self._secret, params)
            params["timestamp"] = now
            return PayData(client_params=params)
        fields = {
            "app_id": "sandbox",
            "method": "sandbox.trade.pay",
            "charset": "utf-8",
            "sign_type": "HMAC-SHA256",
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
            "version": "1.0",
            "notify_url": request.notify_url,
            "out_trade_no": request.trade_no,
            "total_amount": str(request.amount_fen),
            "subject": request.subject,
        }
        fields["sign"] = sign(self._secret, fields)
        return PayData(order_string=urlencode(fields))

    def notification_for(self, trade_no: str, amount_fen: int, status: str = "PAID") -> bytes:
        """The body the sandbox provider posts (used by `sandbox-pay` and tests)."""
        fields = {
            "out_trade_no": trade_no,
            "total_amount": str(amount_fen),
            "trade_status": status,
            "txn_id": "sbx_" + secrets.token_hex(8),
            "timestamp": str(int(self._clock())),
        }
        fields["sign"] = sign(self._secret, fields)
        return urlencode(fields).encode()

    def pay(self, trade_no: str, amount_fen: int, status: str = "PAID") -> bytes:
        """The buyer pays (status PAID) at the sandbox: its books say so, and the body the
        sandbox posts as the notification is answered (`sandbox-pay`, tests)."""
        body = self.notification_for(trade_no, amount_fen, status)
        if status == "PAID" and self.books is not None:
            self.books.pay(trade_no, amount_fen, dict(parse_qsl(body.decode()))["txn_id"])
        return body

    def query(self, trade_no: str) -> Notification | None:
        """What the sandbox's books say about a trade (None: never paid nor closed there)."""
        trade = self.books.trade(trade_no) if self.books is not None else None
        if trade is None:
            return None
        state, amount, txn_id = trade
        return Notification(trade_no, amount, state == PAID, txn_id, closed=state == CLOSED)

    def close(self, trade_no: str, amount_fen: int) -> bool:
        """Closes an unpaid trade at the sandbox; False when the sandbox saw it paid."""
        return self.books.close(trade_no, amount_fen) if self.books is not None else True

    def verify_notification(self, body: bytes, content_type: str, headers: Mapping[str, str]) -> Notification:
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotificationRejected("body is not a form") from exc
        given = fields.get("sign", "")
        if not hmac.compare_digest(given, sign(self._secret, fields)):
            raise NotificationRejected("bad signature")
        try:
            ts = int(fields["timestamp"])
            amount = int(fields["total_amount"])
            status = fields["trade_status"]
            trade_no = fields["out_trade_no"]
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("missing or malformed field") from exc
        if abs(self._clock() - ts) > MAX_SKEW_SECONDS:
            raise NotificationRejected("stale timestamp")
        return Notification(trade_no, amount, status == "PAID", fields.get("txn_id", ""), status == "CLOSED")

    def ack(self) -> Reply:
        return Reply(200, b"success")

    def nack(self, reason: str) -> Reply:
        return Reply(400, b"fail")

    # ---- refunds: the sandbox moves no money, so a refund succeeds at once ----------

    def refund(self, request: RefundRequest) -> RefundStatement:
        return RefundStatement(request.trade_no, REFUND_SUCCEEDED, request.refund_no, request.amount_fen,
                               provider_refund_id="sbxr_" + hmac.new(self._secret.encode(), request.refund_no.encode(),
                                                                     hashlib.sha256).hexdigest()[:16])

    def query_refund(self, refund_no: str, trade_no: str) -> RefundStatement:
        return RefundStatement(trade_no, REFUND_SUCCEEDED, refund_no)
