"""VIP orders (001): create, list, read, delete, check; and settling them — the one code
path that marks an order paid and grants its months. Each public method is one
transaction; fulfilment is idempotent because the unpaid -> paid transition is a
conditional UPDATE that only one of any number of concurrent duplicate notifications
can win."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from server.membership import rules
from server.membership.history import read_history_page
from server.membership.ledger import MembershipLedger
from server.membership.rules import Refusal
from server.membership.tables import VipOrderRow
from server.membership.views import FIELDS, VipOrderView
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
from server.payments.refund_records import refunded_sql
from server.payments.settlement import OrderBook, receive_notification
from server.platform import metrics
from server.platform.cached_catalog import CatalogProvider
from server.platform.errors import DomainError, Kind, Violations, not_found
from server.platform.times import naive, utc
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
ORDER_COLUMNS = VipOrderRow.__table__
INSERT_ORDER = insert(VipOrderRow.__table__)
NEXT_ORDER_ID = {
    "sqlite": sql_text("SELECT coalesce(max(id), 0) + 1 FROM vip_orders"),
    "postgresql": sql_text("SELECT nextval(pg_get_serial_sequence('vip_orders', 'id'))"),
}
ORDER_KEYS = tuple(c.key for c in VipOrderRow.__table__.columns)
assert ORDER_KEYS == FIELDS, "VipOrderView holds the vip_orders columns, in order"

# The caller's own order by id: hot single-row reads, plain SQL on a kept connection
# (platform/hot_reads.py Reads.one).
OWN_ORDER = "FROM vip_orders WHERE id = :id AND user_id = :user_id AND user_deleted_at IS NULL"
OWN_ORDER_STATUS_SQL = f"SELECT pay_status {OWN_ORDER}"
# The order and the fen refunded of it, in one statement.
OWN_ORDER_SQL = (f"SELECT {', '.join(c.name for c in VipOrderRow.__table__.columns)}, "
                 f"{refunded_sql('vip_orders', 'vip_orders.id')} {OWN_ORDER}")


@dataclass(frozen=True)
class CreatedOrder:
    order: VipOrderView
    pay_data: PayData | None


class VipOrders:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], catalog: CatalogProvider, channels: ChannelRegistry,
                 ledger: MembershipLedger, public_base_url: str, *, clock: Callable[[], datetime],
                 order_ttl: timedelta | None, reads: Callable, writes: Callable):
        self._uow = uow_factory
        self._writes = writes  # order inserts: group commit (platform/group_commit.py)
        self._reads = reads  # hot reads: Core on read-only connections (platform/hot_reads.py)
        self._catalog = catalog
        self._channels = channels
        self._ledger = ledger
        self._base_url = public_base_url.rstrip("/")
        self._clock = clock
        self._order_ttl = order_ttl  # unpaid orders close after this (settlement.py)

    # ---- orders -----------------------------------------------------------

    def create_order(
        self,
        user_id: int,
        *,
        level: str,
        duration: int,
        quantity: int,
        pay_method: str,
        timezone_name: str,
        request_id: str = "",
        openid: str = "",
        client_ip: str = "",
        attempt: Callable[[Connection], DomainError | None] | None = None,
    ) -> CreatedOrder:
        """`attempt`: a write job counting this attempt against the caller's order
        limits (AbuseGuard.attempt); it runs in the order's own transaction, so the
        count costs no commit of its own, and a refusal it answers is raised here."""
        if len(request_id) > rules.MAX_REQUEST_ID or not request_id.isprintable():
            v = Violations()  # NUL and over-long ids would fail in PostgreSQL (a 500 before)
            v.add("request_id", f"The request_id must be at most {rules.MAX_REQUEST_ID} printable characters.")
            v.raise_if_any()
        quote = rules.quote_order(
            self._catalog.get(),
            level=level,
            duration=duration,
            quantity=quantity,
            pay_method=pay_method,
            timezone_name=timezone_name,
        )
        if request_id:
            existing = self._order_by_request(user_id, request_id)
            if existing is not None:
                return CreatedOrder(existing, self._pay_data(existing, openid, client_ip))
        channel_name = self._channels.name_for(pay_method)
        now = self._clock()
        local_now = now.astimezone(rules.zone(quote.timezone))
        values = {
            "user_id": user_id,
            "request_id": request_id or None,
            "level": quote.level,
            "duration": quote.duration,
            "quantity": quote.quantity,
            "pay_method": quote.pay_method,
            "channel": channel_name,
            "total_amount": quote.total_fen,
            "pay_amount": quote.total_fen,
            "pay_status": rules.PayStatus.UNPAID,
            "vip_info": quote.vip_info,
            "timezone": quote.timezone,
            "created_at": naive(now),
            "updated_at": naive(now),
        }

        def write(conn) -> dict | DomainError:
            refusal = attempt(conn) if attempt else None
            if refusal is not None:
                return refusal  # the count commits; no order
            # One INSERT per order: the id is taken first (under SQLite's writer lock,
            # or from the PostgreSQL sequence) so the trade_no goes in with the row.
            order_id = conn.execute(NEXT_ORDER_ID[conn.dialect.name]).scalar_one()
            row = dict(values, id=order_id, trade_no=rules.trade_no(local_now, order_id))
            conn.execute(INSERT_ORDER, row)
            return row

        try:
            written = self._writes(write)  # answered once the order is durably committed
            if isinstance(written, DomainError):
                raise written
            order = VipOrderView.from_mapping(written)
            metrics.ORDERS_CREATED.labels("membership").inc()
        except IntegrityError:  # a concurrent twin with the same request_id won
            existing = self._order_by_request(user_id, request_id)
            assert existing is not None
            return CreatedOrder(existing, self._pay_data(existing, openid, client_ip))
        # The provider call happens after commit: an unpaid order that never gets
        # pay data is harmless and closes later.
        return CreatedOrder(order, self._pay_data(order, openid, client_ip))

    def _order_by_request(self, user_id: int, request_id: str) -> VipOrderView | None:
        with self._uow() as uow:
            order = uow.session.scalar(
                select(VipOrderRow).where(VipOrderRow.user_id == user_id, VipOrderRow.request_id == request_id)
            )
            return VipOrderView.of(order) if order is not None else None

    def _pay_data(self, order: VipOrderView, openid: str = "", client_ip: str = "") -> PayData | None:
        if order.pay_method == "Iap":
            return None  # the App Store collects; the client confirms with check-iap-result
        channel = self._channels.by_name(order.channel) or self._channels.for_method(order.pay_method)
        try:
            return channel.create_payment(
                PaymentRequest(
                    trade_no=order.trade_no or "",
                    amount_fen=order.pay_amount,
                    subject=f"购买会员 {order.vip_info.get('name', order.level)}",
                    pay_method=order.pay_method,
                    notify_url=f"{self._base_url}/api/v2/vip/orders/{order.id}/{channel.name}-callback",
                    client_ip=client_ip,
                    openid=openid,
                    expires_at=utc(order.created_at) + self._order_ttl if self._order_ttl else None,
                )
            )
        except ChannelUnavailable as exc:
            # The order stays unpaid (and closes later); the client may retry with the same request_id.
            log.error("payment channel failed", extra={"order_id": order.id, "channel": channel.name, "why": str(exc)})
            raise DomainError(Refusal.PAYMENT_CHANNEL_UNAVAILABLE, "The payment channel is unavailable; please retry.",
                              Kind.UNAVAILABLE, metadata={"channel": channel.name}) from exc

    def list_orders(self, user_id: int, **page) -> tuple[list[VipOrderView], bool]:
        """A history page's orders (operator and test use; clients get `history_page`)."""
        rows, more = self.history_page(user_id, **page)
        return [order for order, _refunded in rows], more

    def history_page(
        self, user_id: int, *, offset: int, limit: int, start: str, end: str, timezone_name: str,
        before_id: int | None = None,
    ) -> tuple[list[tuple[VipOrderView, int]], bool]:
        """A history page: (order, fen refunded of it) newest first, and whether more
        follow (membership/history.py). `before_id`: only orders older than it (a keyset
        page token), walking the same index."""
        rows = read_history_page(self._reads, user_id, offset=offset, limit=limit, start=start, end=end,
                                 timezone_name=timezone_name, before_id=before_id)
        return [(VipOrderView.from_values(row[:-1]), int(row[-1])) for row in rows[:limit]], len(rows) > limit

    def get_order(self, user_id: int, order_id: int) -> tuple[VipOrderView, int]:
        """The caller's order and the fen refunded of it."""
        values = self._reads.one(OWN_ORDER_SQL, {"id": order_id, "user_id": user_id})
        if values is None:
            raise not_found("order", order_id)
        return VipOrderView.from_values(values[:-1]), int(values[-1])

    def by_id(self, order_id: int) -> VipOrderView | None:
        """Any user's order (operator commands)."""
        with self._uow() as uow:
            order = uow.session.get(VipOrderRow, order_id)
            return VipOrderView.of(order) if order is not None else None

    def by_trade_no(self, trade_no: str) -> VipOrderView | None:
        """Any user's order by its number (operator commands)."""
        with self._uow() as uow:
            order = uow.session.scalar(select(VipOrderRow).where(VipOrderRow.trade_no == trade_no))
            return VipOrderView.of(order) if order is not None else None

    def own_order(self, uow: UnitOfWork, user_id: int, order_id: int, lock: bool = False) -> VipOrderRow:
        query = select(VipOrderRow).where(
            VipOrderRow.id == order_id, VipOrderRow.user_id == user_id, VipOrderRow.user_deleted_at.is_(None)
        )
        order = uow.session.scalar(query.with_for_update() if lock else query)
        if order is None:
            raise not_found("order", order_id)
        return order

    def delete_order(self, user_id: int, order_id: int) -> None:
        with self._uow() as uow:
            order = self.own_order(uow, user_id, order_id, lock=True)
            now = naive(self._clock())
            order.user_deleted_at = now
            order.updated_at = now
            uow.commit()

    def is_paid(self, user_id: int, order_id: int) -> bool:
        row = self._reads.one(OWN_ORDER_STATUS_SQL, {"id": order_id, "user_id": user_id})
        if row is None:
            raise not_found("order", order_id)
        return row[0] == rules.PayStatus.PAID

    # ---- paying -----------------------------------------------------------

    def handle_notification(
        self, order_id: int, channel_name: str, body: bytes, content_type: str, headers: Mapping[str, str]
    ) -> Reply:
        """A provider's notification for one order. Only an authentic notification
        whose trade_no and amount match the order changes anything; the reply is
        what the provider expects (ack also for duplicates, so it stops retrying)."""
        return receive_notification(self._channels, channel_name, order_id, body, content_type, headers,
                                    self.settle)

    def order_book(self) -> OrderBook:
        """VIP orders as the settlement task sees them (re-query, close)."""
        return OrderBook(
            "vip_orders", VipOrderRow, VipOrderRow.trade_no,
            is_open=lambda: and_(VipOrderRow.pay_status == rules.PayStatus.UNPAID, VipOrderRow.closed_at.is_(None)),
            close_values=lambda now: {"closed_at": naive(now), "updated_at": naive(now)},
            settle=self.settle,
            is_paid=lambda: VipOrderRow.pay_status == rules.PayStatus.PAID, amount=VipOrderRow.pay_amount,
            paid_at=VipOrderRow.paid_at,
        )

    def settle(self, order_id: int, channel: PaymentChannel, note: Notification) -> Reply:
        """Applies a verified provider statement (a notification, or the answer to a
        re-query) to one order: the one code path that marks orders paid."""
        with self._uow() as uow:
            order = uow.session.get(VipOrderRow, order_id)
            if order is None or order.trade_no != note.trade_no or order.channel != channel.name:
                log.warning("notification for unknown order", extra={"order_id": order_id, "trade_no": note.trade_no})
                return channel.nack("unknown order")
            if note.amount_fen != order.pay_amount:
                log.error("notification amount mismatch", extra={"order_id": order_id, "amount": note.amount_fen})
                notes.keep(uow, "vip_orders", order_id, channel.name, note, self._clock(), mismatch=True)
                uow.commit()
                return channel.nack("amount mismatch")
            settled = note.paid and self.fulfil(uow, order, note.provider_txn_id)
            notes.keep(uow, "vip_orders", order_id, channel.name, note, self._clock(), settled=settled)
            uow.commit()
        return replace(channel.ack(), settled=settled)

    def fulfil(self, uow: UnitOfWork, order: VipOrderRow, provider_txn_id: str) -> bool:
        """Marks the order paid and extends the membership, inside the caller's
        transaction. Returns False (and changes nothing) when it was already paid."""
        now = self._clock()
        won = uow.session.execute(
            update(VipOrderRow)
            .where(VipOrderRow.id == order.id, VipOrderRow.pay_status == rules.PayStatus.UNPAID)
            .values(pay_status=rules.PayStatus.PAID, paid_at=naive(now), updated_at=naive(now),
                    provider_txn_id=provider_txn_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            return False
        self._ledger.grant_in(uow, order.user_id, order.level, order.duration * order.quantity, order.timezone,
                              source="vip_order", source_ref=str(order.id))
        uow.session.refresh(order)
        metrics.count_paid_on_commit(uow.session, "membership")
        return True
