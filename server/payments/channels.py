"""The payment-channel interface every provider adapter implements.

A channel turns an order into what the client needs to pay (pay data), and turns a
provider's notification into a verified `Notification`; it never touches the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class PaymentRequest:
    trade_no: str
    amount_fen: int
    subject: str
    pay_method: str
    notify_url: str
    # Optional, for the real providers: the buyer's IP (WeChat scene_info), the
    # JSAPI payer's openid, and when the provider must stop accepting payment.
    client_ip: str = ""
    openid: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PayData:
    """Exactly one of these is set, by pay method."""

    order_string: str | None = None  # Alipay app order string / redirect query
    client_params: dict | None = None  # WeChat Pay App / JSAPI parameters
    gateway_url: str | None = None  # page/wap pay: where the order string is posted


@dataclass(frozen=True)
class RefundRequest:
    """Give back `amount_fen` of a paid trade. `refund_no` is ours and the provider
    dedupes on it, so sending the same request again never refunds twice."""

    refund_no: str
    trade_no: str
    provider_txn_id: str
    amount_fen: int
    total_fen: int
    reason: str
    notify_url: str = ""


class RefundState(StrEnum):
    """refunds.state, and the providers' statements about a refund mapped onto it."""

    PENDING = "pending"  # ours: asked, no answer yet
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    FAILED = "failed"
    ABNORMAL = "abnormal"
    NOT_FOUND = "not_found"  # a statement only: the provider never received this refund number


REFUND_SUCCEEDED, REFUND_PROCESSING, REFUND_FAILED, REFUND_ABNORMAL = (
    RefundState.SUCCEEDED, RefundState.PROCESSING, RefundState.FAILED, RefundState.ABNORMAL)
REFUND_NOT_FOUND = RefundState.NOT_FOUND


@dataclass(frozen=True)
class RefundStatement:
    """A provider's verified statement about a refund of one trade: the answer to a
    refund request or query, or a refund notification (also for refunds started in
    the provider's console, which carry the provider's refund number)."""

    trade_no: str
    state: str
    refund_no: str = ""  # "" when the provider names none (an Alipay console refund)
    amount_fen: int | None = None  # this refund; None when only the total is known
    refunded_total_fen: int | None = None  # Alipay: all refunds of the trade so far
    total_fen: int | None = None  # the trade's amount, when stated
    provider_refund_id: str = ""
    provider_txn_id: str = ""


@dataclass(frozen=True)
class Notification:
    """A provider's verified statement about one payment."""

    trade_no: str
    amount_fen: int
    paid: bool
    provider_txn_id: str
    # The trade is over without payment (closed / timed out at the provider). Not
    # paid and not closed means "not paid yet": the buyer may still pay.
    closed: bool = False
    # Set when the notification is about a refund of the trade (WeChat Pay REFUND.*,
    # Alipay's refund_fee fields): handled by the refund service, not by settle().
    refund: RefundStatement | None = None
    # How it reached us, set by us (never by a channel): "notification" (posted by the
    # provider), "query" (the answer to a re-query), "statement" (a daily statement line
    # reconciliation heals); kept with it (payments/notes.py).
    via: str = "notification"


@dataclass(frozen=True)
class Reply:
    """What the provider expects back."""

    status: int
    body: bytes
    content_type: str = "text/plain"
    # Set by an area's settle() (never sent): this statement marked the order paid, so the
    # caller knows whether it or a concurrent one settled it (payments/order_actions.py).
    settled: bool = False


class NotificationRejected(Exception):
    """The notification is not authentic or not well-formed: nothing changes."""


class ChannelUnavailable(Exception):
    """The provider could not be reached or answered an error (retry later)."""


class PaymentChannel(Protocol):
    name: str

    def create_payment(self, request: PaymentRequest) -> PayData: ...

    def verify_notification(
        self, body: bytes, content_type: str, headers: Mapping[str, str]
    ) -> Notification: ...

    def ack(self) -> Reply: ...

    def nack(self, reason: str) -> Reply: ...

    # Optional (real providers): asks the provider about one trade, for orders whose
    # notification never arrived. None when the provider does not know the trade
    # (not yet paid / never opened); raises ChannelUnavailable when it cannot tell.
    # Callers use `getattr(channel, "query", None)`.
    # def query(self, trade_no: str) -> Notification | None: ...

    # Optional: tells the provider to close an unpaid trade (an operator's close,
    # payments/order_actions.py). True when closed or never opened there, False when the
    # provider saw it paid; raises ChannelUnavailable when it cannot tell.
    # def close(self, trade_no: str, amount_fen: int) -> bool: ...

    # Optional (channels that can refund): refund() sends a RefundRequest and answers
    # a RefundStatement (succeeded / processing / failed / abnormal); query_refund()
    # asks about one refund number (state REFUND_NOT_FOUND when the provider never
    # got it). Both raise ChannelUnavailable when the outcome is unknown.
    # def refund(self, request: RefundRequest) -> RefundStatement: ...
    # def query_refund(self, refund_no: str, trade_no: str) -> RefundStatement: ...


# The refund service's inbox as the notify paths see it: a verified refund statement
# of `channel` in, the provider's reply out (payments/refunds.py receive_statement).
RefundStatements = Callable[[PaymentChannel, RefundStatement], Reply]


class ChannelRegistry:
    """Which channel serves which pay method, and the channels by name (the
    notify path names the channel: `/…/{id}/{name}-callback`)."""

    def __init__(self, channels: list[PaymentChannel], routes: Mapping[str, str],
                 on_refund: RefundStatements | None = None):
        self._by_name = {c.name: c for c in channels}
        self._routes = dict(routes)
        # Where verified refund statements go (the refund service), so any notify path
        # can carry one (Alipay sends refunds to the payment's notify_url).
        self.on_refund = on_refund

    def name_for(self, pay_method: str) -> str:
        """The channel an order of this pay method belongs to (its `channel` column).
        It may have no channel object: "appstore" (Iap) is paid through check-iap-result
        and has no per-order notification or query."""
        return self._routes[pay_method]

    def for_method(self, pay_method: str) -> PaymentChannel:
        return self._by_name[self._routes[pay_method]]

    def by_name(self, name: str) -> PaymentChannel | None:
        return self._by_name.get(name)
