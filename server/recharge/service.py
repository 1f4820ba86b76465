"""Recharge use cases: orders for the three client families, payment notifications,
history, and the internal wallet operations. Each public method is one
transaction. Paying is idempotent: WAITING -> SUCCESSFUL is a conditional UPDATE
that only one of any number of concurrent duplicate notifications can win, and the
winner credits the wallet (and grants VIP) in that same transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, func, select, update

from server.membership.grants import MembershipGrants
from server.payments.channels import (
    ChannelRegistry,
    ChannelUnavailable,
    Notification,
    PayData,
    PaymentChannel,
    PaymentRequest,
    Reply,
)
from server.payments import notes
from server.payments.settlement import OrderBook, receive_notification
from server.platform import metrics
from server.platform.errors import DomainError, Kind, Violations
from server.platform.times import day_start, naive, utc
from server.platform.hot_reads import SessionReads
from server.platform.unit_of_work import UnitOfWork
from server.recharge import history, ledger, rules
from server.recharge.captchas import CaptchaGuard
from server.recharge.catalog import RechargeCatalogProvider
from server.recharge.ledger import GIFT, RECHARGE
from server.recharge.refunds import RechargeOrderRefunds
from server.recharge.rules import Refusal
from server.recharge.tables import RechargeOrderRow
from server.recharge.views import RechargeOrderView
from server.recharge.wallet import Wallets

log = logging.getLogger(__name__)
assert RechargeOrderView._fields == tuple(c.key for c in RechargeOrderRow.__table__.columns), \
    "RechargeOrderView holds the recharge_orders columns, in order"



def local_text(stored: datetime) -> str:
    """Naive UTC from the database -> Asia/Shanghai "YYYY-MM-DD HH:MM:SS"."""
    return utc(stored).astimezone(rules.ZONE).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class CreatedOrder:
    order: RechargeOrderView
    pay_data: PayData


class RechargeService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        catalog: RechargeCatalogProvider,
        channels: ChannelRegistry,
        memberships: MembershipGrants,
        captchas: CaptchaGuard,
        public_base_url: str,
        order_ttl: timedelta | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        reads: Callable | None = None,
    ):
        self._uow = uow_factory
        self._reads = reads or SessionReads(uow_factory)  # read-only Core (platform/hot_reads.py)
        self.catalog = catalog
        self._channels = channels
        self._memberships = memberships
        self.captchas = captchas  # 002's limit and captchas (docs/recharge.md: Limits)
        self._base_url = public_base_url.rstrip("/")
        self._order_ttl = order_ttl  # unpaid orders fail after this (settlement.py)
        self._clock = clock
        self.wallet = Wallets(uow_factory)  # balances and the internal wallet operations

    # ---- reading ----------------------------------------------------------

    def history(self, user_id: int, *, page: int, rows: int, start: str, end: str, state: str
                ) -> tuple[int, list[RechargeOrderView]]:
        v = Violations()
        if page < 1:
            v.add("page", "The page must be at least 1.")
        if not 1 <= rows <= 100:
            v.add("rows", "The rows must be between 1 and 100.")
        bounds = {}
        for name, text in (("startDate", start), ("endDate", end)):
            if text:
                try:
                    bounds[name] = date.fromisoformat(text)
                except ValueError:
                    v.add(name, f"The {name} must be a date YYYY-MM-DD.")
        if state and state not in rules.STATES:
            v.add("orderState", "The orderState must be one of " + ", ".join(rules.STATES) + ".")
        v.raise_if_any()
        where = [RechargeOrderRow.user_id == user_id, RechargeOrderRow.store_id == 0]
        since = day_start(bounds["startDate"], rules.ZONE) if "startDate" in bounds else None
        until = day_start(bounds["endDate"], rules.ZONE, days_after=1) if "endDate" in bounds else None
        if since is not None:
            where.append(RechargeOrderRow.created_at >= since)
        if until is not None:
            where.append(RechargeOrderRow.created_at < until)
        if state:
            where.append(RechargeOrderRow.state == state)
        # One snapshot for the count and the page (recharge/history.py: walks the index, no sort).
        page_sql = history.page_statement(sqlite=self._reads.dialect == "sqlite", since=since is not None,
                                          until=until is not None, state=bool(state))
        params = {"user_id": user_id, "limit": rows, "offset": (page - 1) * rows, "since": since,
                  "until": until, "state": state or None}
        with self._reads() as conn:
            total = conn.execute(select(func.count()).select_from(RechargeOrderRow).where(*where)).scalar_one()
            found = list(conn.execute(page_sql, {k: v for k, v in params.items() if v is not None}))
        return total, [RechargeOrderView._make(row) for row in found]

    def order_by_number(self, number: str) -> RechargeOrderView | None:
        with self._uow() as uow:
            order = uow.session.scalar(select(RechargeOrderRow).where(RechargeOrderRow.order_number == number))
            return RechargeOrderView.of(order) if order is not None else None

    def get_order(self, order_id: int) -> RechargeOrderView | None:
        with self._uow() as uow:
            order = uow.session.get(RechargeOrderRow, order_id)
            return RechargeOrderView.of(order) if order is not None else None

    # ---- ordering ---------------------------------------------------------

    def order_recharge(self, user_id: int, *, plan_id: int, price: str, pay_mode_id: int, goods_id: int | None,
                       verify_code: str, client_ip: str, openid: str = "") -> CreatedOrder:
        """002: a plan, a custom amount (plan_id 0) or a VIP-giving package (goods_id)."""
        self.captchas.check(user_id, client_ip, verify_code)
        v = Violations()
        if plan_id < 0:
            v.add("id", "The id must be a recharge amount id, or 0 for a custom amount.")
        try:
            amount = rules.parse_price(price)
        except DomainError as err:
            v.items.extend(err.violations)
            amount = 0
        catalog = self.catalog.get()
        mode = catalog.pay_mode(pay_mode_id)
        if mode is None:
            v.add("payModeId", "The payModeId names no available pay mode.")
        v.raise_if_any()
        assert mode is not None
        if goods_id is not None:
            quote = rules.quote_package(catalog, goods_id, amount)
        else:
            quote = rules.quote_plan(catalog, plan_id, amount)
        return self._create(user_id, "recharge", quote, mode.pay_method, client_ip=client_ip, openid=openid)

    def order_package(self, user_id: int, *, package_id: int, pay_type: str,
                      attempt: Callable[[Connection], DomainError | None] | None = None) -> CreatedOrder:
        """000: a charge package paid through one of the app's pay types. `attempt`: counts
        this attempt against the order limits in the order's own transaction
        (AbuseGuard.attempt); a refusal it answers is raised, its count kept."""
        catalog = self.catalog.get()
        kind = catalog.charge_pay_type(pay_type)
        if kind is None:
            v = Violations()
            v.add("payType", "The payType must be one of " + ", ".join(t.type_name for t in catalog.charge_pay_types)
                  + ".")
            v.raise_if_any()
        assert kind is not None
        return self._create(user_id, "charge", rules.quote_package(catalog, package_id), kind.pay_method,
                            attempt=attempt)

    def _create(self, user_id: int, family: str, quote: rules.Quote, pay_method: str, store_id: int = 0,
                *, client_ip: str = "", openid: str = "",
                attempt: Callable[[Connection], DomainError | None] | None = None) -> CreatedOrder:
        channel = self._channels.for_method(pay_method)
        now = self._clock()
        with self._uow() as uow:
            refusal = attempt(uow.session.connection()) if attempt else None
            if refusal is not None:
                uow.commit()  # the attempt counts; no order
                raise refusal
            order = RechargeOrderRow(
                user_id=user_id, store_id=store_id, family=family, kind=quote.kind, plan_id=quote.plan_id,
                package_id=quote.package_id, amount=quote.amount_fen, gift_amount=quote.gift_fen,
                vip_level=quote.vip_level, vip_months=quote.vip_months, pay_method=pay_method,
                channel=channel.name, state=rules.OrderState.WAITING,
                snapshot=json.dumps(quote.snapshot(), ensure_ascii=False, separators=(",", ":")),
                created_at=naive(now), updated_at=naive(now),
            )
            uow.session.add(order)
            uow.session.flush()
            order.order_number = rules.order_number(now.astimezone(rules.ZONE), order.id)
            uow.commit()
        metrics.ORDERS_CREATED.labels("recharge").inc()
        # The provider call happens after commit: an order that never gets pay data
        # stays waiting and is closed by the settlement task.
        try:
            pay_data = channel.create_payment(PaymentRequest(
                trade_no=order.order_number, amount_fen=order.amount, subject=quote.title, pay_method=pay_method,
                notify_url=f"{self._base_url}/api/recharge/orders/{order.id}/{channel.name}-callback",
                client_ip=client_ip, openid=openid,
                expires_at=now + self._order_ttl if self._order_ttl else None,
            ))
        except ChannelUnavailable as exc:
            log.error("payment channel failed", extra={"order_id": order.id, "channel": channel.name, "why": str(exc)})
            raise DomainError(Refusal.PAYMENT_CHANNEL_UNAVAILABLE, "The payment channel is unavailable; please retry.",
                              Kind.UNAVAILABLE, metadata={"channel": channel.name}) from exc
        return CreatedOrder(RechargeOrderView.of(order), pay_data)

    # ---- paying -----------------------------------------------------------

    def handle_notification(self, order_id: int, channel_name: str, body: bytes, content_type: str,
                            headers: Mapping[str, str]) -> Reply:
        """Only an authentic notification whose number and amount match the order
        changes anything; duplicates are acknowledged so the provider stops retrying."""
        return receive_notification(self._channels, channel_name, order_id, body, content_type, headers,
                                    self.settle)

    def settle(self, order_id: int, channel: PaymentChannel, note: Notification) -> Reply:
        """Applies a verified provider statement (a notification, or the answer to a
        re-query) to one order: the one code path that settles recharge orders."""
        with self._uow() as uow:
            order = uow.session.get(RechargeOrderRow, order_id)
            if order is None or order.order_number != note.trade_no or order.channel != channel.name:
                return channel.nack("unknown order")
            if note.amount_fen != order.amount:
                log.error("recharge notification amount mismatch", extra={"order_id": order_id})
                notes.keep(uow, "recharge_orders", order_id, channel.name, note, self._clock(), mismatch=True)
                uow.commit()
                return channel.nack("amount mismatch")
            settled = note.paid and self._fulfil(uow, order, note.provider_txn_id)
            notes.keep(uow, "recharge_orders", order_id, channel.name, note, self._clock(), settled=settled)
            if note.closed and not note.paid:  # not paid *yet* (WAIT_BUYER_PAY, NOTPAY) leaves it waiting
                self._transition(uow, order, rules.OrderState.FAILED, note.provider_txn_id)
            uow.commit()
        return replace(channel.ack(), settled=settled)

    def order_book(self) -> OrderBook:
        """Recharge orders as the settlement task sees them: waiting ones are
        re-queried, and fail (FAILURE_TO_PAY) after the order time-out."""
        return OrderBook(
            "recharge_orders", RechargeOrderRow, RechargeOrderRow.order_number,
            is_open=lambda: RechargeOrderRow.state == rules.OrderState.WAITING,
            close_values=lambda now: {"state": rules.OrderState.FAILED, "updated_at": naive(now)},
            settle=self.settle,
            is_paid=lambda: RechargeOrderRow.state == rules.OrderState.PAID, amount=RechargeOrderRow.amount,
            paid_at=RechargeOrderRow.paid_at,
        )

    def _transition(self, uow: UnitOfWork, order: RechargeOrderRow, state: str, txn_id: str) -> bool:
        now = naive(self._clock())
        values = {"state": state, "updated_at": now, "provider_txn_id": txn_id or None}
        if state == rules.OrderState.PAID:
            values["paid_at"] = now
        # Paid is final and may follow a failure (a payment that lands after we timed
        # the order out was still taken, so it is honoured); failed only follows waiting.
        sources = (rules.OrderState.WAITING, rules.OrderState.FAILED) if state == rules.OrderState.PAID else (rules.OrderState.WAITING,)
        return uow.session.execute(
            update(RechargeOrderRow)
            .where(RechargeOrderRow.id == order.id, RechargeOrderRow.state.in_(sources))
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount == 1

    def _fulfil(self, uow: UnitOfWork, order: RechargeOrderRow, txn_id: str) -> bool:
        """Marks the order paid and credits amount + gift (and grants VIP) in the
        caller's transaction. False, changing nothing, when it was already settled."""
        if not self._transition(uow, order, rules.OrderState.PAID, txn_id):
            return False
        reference = f"recharge_order:{order.id}"
        wallet = ledger.lock_wallet(uow, order.user_id, order.store_id)
        ledger.post(uow, wallet, order.amount, RECHARGE, reference)
        if order.gift_amount:
            ledger.post(uow, wallet, order.gift_amount, GIFT, reference)
        if order.vip_months and order.vip_level:
            self._memberships.grant_in(uow, order.user_id, order.vip_level, order.vip_months, rules.ZONE.key,
                                       source="recharge_order", source_ref=str(order.id))
        metrics.count_paid_on_commit(uow.session, "recharge")
        return True

    # ---- refunds (payments/refunds.py) -----------------------------------------

    def refund_book(self) -> RechargeOrderRefunds:
        """Recharge orders as the refund service sees them (refunds.py)."""
        return RechargeOrderRefunds(self._fulfil, self._memberships)
