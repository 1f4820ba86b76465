"""Membership use cases. Each public method is one transaction; fulfilment is
idempotent because the unpaid -> paid transition is a conditional UPDATE that only
one of any number of concurrent duplicate notifications can win."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from server.membership import rules
from server.membership.tables import (
    AppStoreNotificationRow,
    IapRedemptionRow,
    IapTransactionRow,
    MembershipGrantRow,
    MembershipRow,
    VipCatalogRow,
    VipOrderRow,
)
from server.payments.channels import (
    ChannelRegistry,
    ChannelUnavailable,
    Notification,
    PayData,
    PaymentChannel,
    PaymentRequest,
    Reply,
)
from server.payments.iap import IapVerifier, ReceiptRejected
from server.payments.refunds import OrderFacts, RefundBook, refunded_sql
from server.payments.settlement import OrderBook, receive_notification
from server.platform import metrics
from server.platform.cached_catalog import CatalogProvider
from server.platform.errors import DomainError, Kind, Violations, not_found
from server.platform.times import day_start, naive, utc
from server.platform.unit_of_work import UnitOfWork, session_reads, single_commits

log = logging.getLogger(__name__)
ORDER_COLUMNS = VipOrderRow.__table__
INSERT_ORDER = insert(VipOrderRow.__table__)
NEXT_ORDER_ID = {
    "sqlite": sql_text("SELECT coalesce(max(id), 0) + 1 FROM vip_orders"),
    "postgresql": sql_text("SELECT nextval(pg_get_serial_sequence('vip_orders', 'id'))"),
}

# The caller's own order by id: hot single-row reads, plain SQL on a kept connection
# (platform/unit_of_work.py Reads.one).
OWN_ORDER = "FROM vip_orders WHERE id = :id AND user_id = :user_id AND user_deleted_at IS NULL"
OWN_ORDER_STATUS_SQL = f"SELECT pay_status {OWN_ORDER}"
# The order and the fen refunded of it, in one statement.
OWN_ORDER_SQL = (f"SELECT {', '.join(c.name for c in VipOrderRow.__table__.columns)}, "
                 f"{refunded_sql('vip_orders', 'vip_orders.id')} {OWN_ORDER}")
JSON_COLUMNS = {c.name for c in VipOrderRow.__table__.columns if c.type._type_affinity.__name__ == "JSON"}
ORDER_KEYS = tuple(c.key for c in VipOrderRow.__table__.columns)
TIME_COLUMNS = {c.name for c in VipOrderRow.__table__.columns if c.type._type_affinity.__name__ == "DateTime"}


def _order_from(values: tuple) -> VipOrderRow:
    """A read-only order (the VipOrderRow attributes, without the ORM's instrumentation)
    from a raw row; SQLite hands back JSON and times as text."""
    fields = {}
    for name, value in zip(ORDER_KEYS, values):
        if isinstance(value, str):
            if name in JSON_COLUMNS:
                value = json.loads(value)
            elif name in TIME_COLUMNS:
                value = datetime.fromisoformat(value)
        fields[name] = value
    return SimpleNamespace(**fields)  # type: ignore[return-value]
EPOCH = datetime(1970, 1, 1)
REFUND_SOURCE, REFUND_UNDO = "order_refund", "order_refund_undo"  # membership_grants.source of refund take-backs


def share(before: int, amount: int, total: int) -> float:
    """The fraction of a grant one refund takes back: cumulative, so the refunds of an order
    add up to exactly 1 when they add up to its payment."""
    total = max(total, 1)
    return min((before + amount) / total, 1.0) - min(before / total, 1.0)


@dataclass(frozen=True)
class CreatedOrder:
    order: VipOrderRow
    pay_data: PayData | None


@dataclass(frozen=True)
class MembershipView:
    user_id: int
    levels: dict[str, datetime]  # level -> aware UTC expiry
    now: datetime

    @property
    def current_level(self) -> str:
        return rules.current_level(self.levels, self.now)


class MembershipService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        catalog: CatalogProvider,
        channels: ChannelRegistry,
        iap: IapVerifier,
        public_base_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        order_ttl: timedelta | None = None,
        reads: Callable | None = None,
        writes: Callable | None = None,
    ):
        self._uow = uow_factory
        # Order inserts: group commit (platform/unit_of_work.py GroupCommit).
        self._writes = writes or single_commits(uow_factory)
        # Hot reads: Core on read-only connections (platform/unit_of_work.py Reads).
        self._reads = reads or session_reads(uow_factory)
        self.catalog = catalog
        self._channels = channels
        self._iap = iap
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
            self.catalog.get(),
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
            "pay_status": 0,
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
            order = VipOrderRow(**written)
            metrics.ORDERS_CREATED.labels("membership").inc()
        except IntegrityError:  # a concurrent twin with the same request_id won
            existing = self._order_by_request(user_id, request_id)
            assert existing is not None
            return CreatedOrder(existing, self._pay_data(existing, openid, client_ip))
        # The provider call happens after commit: an unpaid order that never gets
        # pay data is harmless and closes later.
        return CreatedOrder(order, self._pay_data(order, openid, client_ip))

    def _order_by_request(self, user_id: int, request_id: str) -> VipOrderRow | None:
        with self._uow() as uow:
            return uow.session.scalar(
                select(VipOrderRow).where(VipOrderRow.user_id == user_id, VipOrderRow.request_id == request_id)
            )

    def _pay_data(self, order: VipOrderRow, openid: str = "", client_ip: str = "") -> PayData | None:
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
            raise DomainError("PAYMENT_CHANNEL_UNAVAILABLE", "The payment channel is unavailable; please retry.",
                              Kind.UNAVAILABLE, metadata={"channel": channel.name}) from exc

    def list_orders(
        self, user_id: int, *, offset: int, limit: int, start: str, end: str, timezone_name: str
    ) -> tuple[list[VipOrderRow], bool]:
        v = Violations()
        if offset < 0:
            v.add("offset", "The offset must be at least 0.")
        if not 1 <= limit <= 100:
            v.add("limit", "The limit must be between 1 and 100.")
        try:
            tz = rules.zone(timezone_name)
        except ValueError:
            v.add("timezone", "The timezone must be a valid IANA zone.")
            tz = None
        bounds = {}
        for field_name, text in (("s", start), ("d", end)):
            if text:
                try:
                    bounds[field_name] = date.fromisoformat(text)
                except ValueError:
                    v.add(field_name, f"The {field_name} must be a date YYYY-MM-DD.")
        v.raise_if_any()
        query = select(ORDER_COLUMNS).where(VipOrderRow.user_id == user_id, VipOrderRow.user_deleted_at.is_(None))
        since = day_start(bounds["s"], tz) if "s" in bounds else None
        until = day_start(bounds["d"], tz, days_after=1) if "d" in bounds else None
        if since is not None:
            query = query.where(VipOrderRow.created_at >= since)
        if until is not None:
            query = query.where(VipOrderRow.created_at < until)
        # ix_vip_orders_user_id (user_id, id) gives this order without a sort.
        query = query.order_by(VipOrderRow.id.desc()).offset(offset).limit(limit + 1)
        with self._reads() as conn:
            rows = list(conn.execute(query))
        return rows[:limit], len(rows) > limit

    def get_order(self, user_id: int, order_id: int) -> tuple[VipOrderRow, int]:
        """The caller's order (detached, read-only) and the fen refunded of it."""
        values = self._reads.one(OWN_ORDER_SQL, {"id": order_id, "user_id": user_id})
        if values is None:
            raise not_found("order", order_id)
        return _order_from(values[:-1]), int(values[-1])

    def _own_order(self, uow: UnitOfWork, user_id: int, order_id: int, lock: bool = False) -> VipOrderRow:
        query = select(VipOrderRow).where(
            VipOrderRow.id == order_id, VipOrderRow.user_id == user_id, VipOrderRow.user_deleted_at.is_(None)
        )
        order = uow.session.scalar(query.with_for_update() if lock else query)
        if order is None:
            raise not_found("order", order_id)
        return order

    def delete_order(self, user_id: int, order_id: int) -> None:
        with self._uow() as uow:
            order = self._own_order(uow, user_id, order_id, lock=True)
            now = naive(self._clock())
            order.user_deleted_at = now
            order.updated_at = now
            uow.commit()

    def is_paid(self, user_id: int, order_id: int) -> bool:
        row = self._reads.one(OWN_ORDER_STATUS_SQL, {"id": order_id, "user_id": user_id})
        if row is None:
            raise not_found("order", order_id)
        return row[0] == 1

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
            is_open=lambda: and_(VipOrderRow.pay_status == 0, VipOrderRow.closed_at.is_(None)),
            close_values=lambda now: {"closed_at": naive(now), "updated_at": naive(now)},
            settle=self.settle,
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
                return channel.nack("amount mismatch")
            if note.paid:
                self._fulfil(uow, order, note.provider_txn_id)
            uow.commit()
        return channel.ack()

    def _fulfil(self, uow: UnitOfWork, order: VipOrderRow, provider_txn_id: str) -> bool:
        """Marks the order paid and extends the membership, inside the caller's
        transaction. Returns False (and changes nothing) when it was already paid."""
        now = self._clock()
        won = uow.session.execute(
            update(VipOrderRow)
            .where(VipOrderRow.id == order.id, VipOrderRow.pay_status == 0)
            .values(pay_status=1, paid_at=naive(now), updated_at=naive(now), provider_txn_id=provider_txn_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            return False
        self.grant_in(uow, order.user_id, order.level, order.duration * order.quantity, order.timezone,
                      source="vip_order", source_ref=str(order.id))
        uow.session.refresh(order)
        metrics.count_paid_on_commit(uow.session, "membership")
        return True

    def grant_in(
        self, uow: UnitOfWork, user_id: int, level: str, months: int, timezone_name: str, *, source: str,
        source_ref: str,
    ) -> datetime:
        """Extends a membership inside the caller's transaction (other areas, e.g.
        recharge packages and merchant direct charges, grant through this).
        (source, source_ref) is unique: granting the same thing twice raises
        IntegrityError, so callers must make their own transition idempotent first.
        Returns the new expiry (aware UTC)."""
        now = self._clock()
        membership = self._lock_membership(uow, user_id, level)
        previous = utc(membership.expires_at)
        expiry = rules.extend_expiry(previous, now, months, timezone_name)
        self._record(uow, membership, expiry, now, source, source_ref, previous)
        return expiry

    def revoke_in(
        self, uow: UnitOfWork, user_id: int, level: str, taken: timedelta, *, source: str, source_ref: str,
    ) -> datetime:
        """Takes `taken` off a membership inside the caller's transaction (a refunded
        or revoked purchase). Recorded as a grant row with a negative effect; the
        same (source, source_ref) twice raises IntegrityError, like grant_in."""
        now = self._clock()
        membership = self._lock_membership(uow, user_id, level)
        previous = utc(membership.expires_at)
        expiry = max(previous - taken, now) if previous > now else previous
        self._record(uow, membership, expiry, now, source, source_ref, previous)
        return expiry

    def granted_span(self, uow: UnitOfWork, source: str, source_ref: str, level: str) -> timedelta:
        """How much one earlier grant added (expires_at - max(previous, granted at))."""
        grant = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.source == source, MembershipGrantRow.source_ref == source_ref,
            MembershipGrantRow.level == level))
        if grant is None:
            return timedelta(0)
        start = max(grant.previous_expires_at or grant.created_at, grant.created_at)
        return grant.expires_at - start

    def _lock_membership(self, uow: UnitOfWork, user_id: int, level: str) -> MembershipRow:
        uow.session.execute(
            uow.insert(MembershipRow)
            .values(user_id=user_id, level=level, expires_at=EPOCH, updated_at=EPOCH)
            .on_conflict_do_nothing(index_elements=["user_id", "level"])
        )
        return uow.session.scalars(
            select(MembershipRow)
            .where(MembershipRow.user_id == user_id, MembershipRow.level == level)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()

    def _record(self, uow, membership, expiry, now, source, source_ref, previous) -> None:
        membership.expires_at = naive(expiry)
        membership.updated_at = naive(now)
        uow.session.add(
            MembershipGrantRow(
                user_id=membership.user_id,
                level=membership.level,
                source=source,
                source_ref=source_ref,
                previous_expires_at=naive(previous) if previous and previous > EPOCH.replace(tzinfo=timezone.utc) else None,
                expires_at=naive(expiry),
                created_at=naive(now),
            )
        )
        uow.session.flush()

    def check_iap(self, user_id: int, order_id: int, receipt: str) -> VipOrderRow:
        """Verifies an App Store purchase for the user's Iap order and fulfils it.
        Any failure leaves everything as it was."""
        if not receipt:
            v = Violations()
            v.add("receipt", "The receipt field is required.")
            v.raise_if_any()
        with self._uow() as uow:
            order = self._own_order(uow, user_id, order_id)
        if order.pay_method != "Iap":
            raise DomainError("NOT_IAP_ORDER", "The order is not an in-app purchase.", Kind.FAILED_PRECONDITION)
        if order.pay_status == 1:
            return order
        # Verified before locking anything: a legacy receipt costs an App Store round trip.
        try:
            purchase = self._iap.verify(receipt)
        except ReceiptRejected as exc:
            raise DomainError("IAP_VERIFICATION_FAILED", f"Receipt rejected: {exc}", Kind.FAILED_PRECONDITION) from exc
        with self._uow() as uow:
            order = self._own_order(uow, user_id, order_id, lock=True)
            if order.pay_status == 1:
                return order
            if purchase.product_id != order.vip_info.get("iap"):
                raise DomainError("IAP_PRODUCT_MISMATCH", "The purchase is for another product.", Kind.FAILED_PRECONDITION)
            if purchase.quantity != order.quantity:
                # One transaction pays for what it bought, never for an order of several
                # (orders of quantity > 1 from before Iap was limited to 1 included).
                raise DomainError("ORDER_QUANTITY_MISMATCH", "The purchase is not for the order's quantity.",
                                  Kind.FAILED_PRECONDITION,
                                  metadata={"order_quantity": str(order.quantity), "quantity": str(purchase.quantity)})
            if purchase.app_account_token != self._iap.account_token(user_id):
                raise DomainError("IAP_ACCOUNT_MISMATCH", "The purchase belongs to another account.", Kind.FAILED_PRECONDITION)
            # Locked first (the same row a REFUND/REVOKE notification locks): a refund that
            # arrived before, or races this redemption, is seen here or sees our redemption.
            known = self._lock_iap_transaction(uow, purchase.transaction_id)
            if known.revoked_at is not None:
                raise DomainError("IAP_REFUNDED", "This purchase was refunded or revoked by the App Store.",
                                  Kind.FAILED_PRECONDITION, metadata={"transaction_id": purchase.transaction_id})
            already = uow.session.get(IapRedemptionRow, purchase.transaction_id)
            if already is not None:
                raise DomainError("IAP_ALREADY_REDEEMED", "This purchase was already redeemed.", Kind.CONFLICT,
                                  metadata={"transaction_id": purchase.transaction_id})
            uow.session.add(IapRedemptionRow(
                transaction_id=purchase.transaction_id, order_id=order.id, user_id=user_id,
                created_at=naive(self._clock()),
            ))
            try:
                uow.session.flush()
            except IntegrityError as exc:  # a concurrent check redeemed it for another order first
                raise DomainError("IAP_ALREADY_REDEEMED", "This purchase was already redeemed.", Kind.CONFLICT,
                                  metadata={"transaction_id": purchase.transaction_id}) from exc
            self._fulfil(uow, order, purchase.transaction_id)
            uow.commit()
            return order

    def handle_appstore_notification(self, body: bytes) -> int:
        """App Store Server Notifications V2. Returns the HTTP status for Apple:
        200 when handled or already handled (deduplicated on notificationUUID),
        400 when it does not verify (Apple retries; nothing changed)."""
        decode = getattr(self._iap, "decode_notification", None)
        if decode is None:
            raise DomainError("APP_STORE_NOT_CONFIGURED", "App Store notifications are not configured.", Kind.NOT_FOUND)
        try:
            signed = json.loads(body)["signedPayload"]
            note = decode(signed)
        except (ValueError, KeyError, TypeError, ReceiptRejected) as exc:
            log.warning("app store notification rejected", extra={"why": str(exc)})
            return 400
        txn_id = note.transaction.transaction_id if note.transaction else None
        with self._uow() as uow:
            fresh = uow.session.execute(
                uow.insert(AppStoreNotificationRow)
                .values(notification_uuid=note.notification_uuid, notification_type=note.notification_type,
                        subtype=note.subtype or None, transaction_id=txn_id, created_at=naive(self._clock()))
                .on_conflict_do_nothing(index_elements=["notification_uuid"])
            ).rowcount
            if fresh and note.notification_type in ("REFUND", "REVOKE") and txn_id:
                known = self._lock_iap_transaction(uow, txn_id)
                if known.revoked_at is None:  # remembered, so a later redemption is refused
                    known.revoked_at, known.revocation = naive(self._clock()), note.notification_type
                self._take_back(uow, txn_id, note.notification_type)
            uow.commit()
        return 200

    def _lock_iap_transaction(self, uow: UnitOfWork, transaction_id: str) -> IapTransactionRow:
        uow.session.execute(
            uow.insert(IapTransactionRow)
            .values(transaction_id=transaction_id, created_at=naive(self._clock()))
            .on_conflict_do_nothing(index_elements=["transaction_id"])
        )
        return uow.session.scalars(
            select(IapTransactionRow).where(IapTransactionRow.transaction_id == transaction_id)
            .with_for_update().execution_options(populate_existing=True)
        ).one()

    def _take_back(self, uow: UnitOfWork, transaction_id: str, why: str) -> None:
        """Takes back what a refunded / revoked App Store purchase granted (once),
        following an exchange if the purchase's days were converted."""
        redemption = uow.session.get(IapRedemptionRow, transaction_id)
        if redemption is None:
            log.info("refund for a transaction not redeemed (yet): remembered", extra={"transaction_id": transaction_id})
            return
        order = uow.session.get(VipOrderRow, redemption.order_id)
        ref = str(order.id)
        already = uow.session.scalar(select(MembershipGrantRow.id).where(
            MembershipGrantRow.source == "iap_refund", MembershipGrantRow.source_ref == ref))
        if already is not None:
            return  # REFUND then REVOKE (or the reverse) for the same purchase
        taken = self.take_back_in(uow, order.user_id, "vip_order", ref, 1, source="iap_refund", source_ref=ref)
        log.warning("app store %s: membership taken back", why.lower(),
                    extra={"order_id": order.id, "user_id": order.user_id,
                           "taken": {lvl: span.total_seconds() for lvl, span in taken}})

    def take_back_in(self, uow: UnitOfWork, user_id: int, grant_source: str, grant_ref: str, fraction: float, *,
                     source: str, source_ref: str) -> list[tuple[str, timedelta]]:
        """Takes back `fraction` (0..1] of what one grant (grant_source, grant_ref)
        added, inside the caller's transaction: where an exchange converted the
        grant's days into a higher level, from that level (rules.trace_grant).
        Recorded as (source, source_ref) rows per level, so twice raises IntegrityError."""
        grants = uow.session.scalars(select(MembershipGrantRow).where(
            MembershipGrantRow.source == grant_source, MembershipGrantRow.source_ref == grant_ref)).all()
        spans: dict[str, timedelta] = {}
        for grant in grants:
            start = max(grant.previous_expires_at or grant.created_at, grant.created_at)
            for level, span in self._trace(uow, user_id, grant.level, start, grant.expires_at, grant.created_at):
                spans[level] = spans.get(level, timedelta(0)) + span * fraction
        taken = []
        for level, span in sorted(spans.items(), key=lambda item: rules.RANK[item[0]]):
            span = timedelta(seconds=round(span.total_seconds()))
            if span > timedelta(0):
                self.revoke_in(uow, user_id, level, span, source=source, source_ref=source_ref)
                taken.append((level, span))
        return taken

    def _trace(self, uow: UnitOfWork, user_id: int, level: str, start: datetime, end: datetime, since: datetime,
               depth: int = 0) -> list[tuple[str, timedelta]]:
        """Where the segment [start, end] of `level`'s timeline (granted at `since`)
        went: still on `level`, or converted by a later exchange into its target."""
        out = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.user_id == user_id, MembershipGrantRow.level == level,
            MembershipGrantRow.source == "exchange_out", MembershipGrantRow.created_at >= since,
        ).order_by(MembershipGrantRow.created_at, MembershipGrantRow.id).limit(1))
        if out is None or depth > 3:
            return [(level, end - start)]
        moved = uow.session.scalar(select(MembershipGrantRow).where(
            MembershipGrantRow.source == "exchange_in", MembershipGrantRow.source_ref == out.source_ref))
        consumed = uow.session.scalars(select(MembershipGrantRow).where(
            MembershipGrantRow.source == "exchange_out", MembershipGrantRow.source_ref == out.source_ref)).all()
        if moved is None:
            return [(level, end - start)]
        exchanged_at = out.created_at
        share = rules.exchange_share(
            level, moved.level, start, end, exchanged_at,
            {row.level: row.previous_expires_at for row in consumed if row.previous_expires_at},
            uow.session.scalar(select(VipCatalogRow.exchange)) or 1,  # same transaction: no second session
        )
        in_start = max(moved.previous_expires_at or moved.created_at, moved.created_at)
        span = (moved.expires_at - in_start) * share
        if span <= timedelta(0):
            return []
        return self._trace(uow, user_id, moved.level, in_start, in_start + span, moved.created_at, depth + 1)

    # ---- refunds (service_layer/refunds.py) ---------------------------------

    def refund_book(self) -> RefundBook:
        """VIP orders (001) as the refund service sees them: a refund takes back the
        refunded share of the months the order granted (following an exchange)."""
        return RefundBook("vip_orders", find=self._refund_find, lock=self._refund_lock,
                          fulfil=self._refund_fulfil, take_back=self._refund_take_back,
                          restore=self._refund_restore, check=self.check_refund_take_back)

    @staticmethod
    def _refund_find(uow: UnitOfWork, number: str) -> int | None:
        return uow.session.scalar(select(VipOrderRow.id).where(VipOrderRow.trade_no == number))

    @staticmethod
    def _refund_lock(uow: UnitOfWork, order_id: int) -> OrderFacts:
        order = uow.session.scalars(select(VipOrderRow).where(VipOrderRow.id == order_id).with_for_update()
                                    .execution_options(populate_existing=True)).one()
        return OrderFacts("vip_orders", order.id, order.trade_no or "", order.channel, order.pay_status == 1,
                          order.pay_amount, order.provider_txn_id or "")

    def _refund_fulfil(self, uow: UnitOfWork, order_id: int, provider_txn_id: str) -> None:
        self._fulfil(uow, uow.session.get(VipOrderRow, order_id), provider_txn_id)

    def _refund_take_back(self, uow: UnitOfWork, facts: OrderFacts, refund_no: str, amount: int, before: int,
                          strict: bool) -> dict:
        order = uow.session.get(VipOrderRow, facts.id)
        return self.refund_take_back_in(uow, order.user_id, "vip_order", str(order.id),
                                        share(before, amount, order.pay_amount), refund_no)

    def _refund_restore(self, uow: UnitOfWork, facts: OrderFacts, refund_no: str, summary: dict) -> None:
        order = uow.session.get(VipOrderRow, facts.id)
        self.refund_restore_in(uow, order.user_id, refund_no, summary)

    def refund_take_back_in(self, uow: UnitOfWork, user_id: int, grant_source: str, grant_ref: str,
                            fraction: float, refund_no: str) -> dict:
        """For any area's refund: takes back `fraction` of one grant, recorded under
        the refund number; returns the summary kept on the refund row."""
        taken = self.take_back_in(uow, user_id, grant_source, grant_ref, min(fraction, 1.0),
                                  source=REFUND_SOURCE, source_ref=refund_no)
        return {"membership": {level: int(span.total_seconds()) for level, span in taken}}

    def refund_restore_in(self, uow: UnitOfWork, user_id: int, refund_no: str, summary: dict) -> None:
        """The refund failed at the provider: gives the taken span back."""
        # Rank order, like every other multi-level lock (exchange), so two transactions never deadlock.
        for level, seconds in sorted(summary.get("membership", {}).items(), key=lambda item: rules.RANK[item[0]]):
            now = self._clock()
            membership = self._lock_membership(uow, user_id, level)
            previous = utc(membership.expires_at)
            self._record(uow, membership, max(previous, now) + timedelta(seconds=seconds), now, REFUND_UNDO,
                         refund_no, previous)

    @staticmethod
    def check_refund_take_back(uow: UnitOfWork, refund) -> list[str]:
        """The membership part of a refund's take-back is recorded exactly once (and
        undone exactly once when the refund failed)."""
        wanted = sorted(json.loads(refund.take_back).get("membership", {}))
        problems = []
        for source, expect in ((REFUND_SOURCE, wanted), (REFUND_UNDO, wanted if refund.state == "failed" else [])):
            levels = sorted(uow.session.scalars(select(MembershipGrantRow.level).where(
                MembershipGrantRow.source == source, MembershipGrantRow.source_ref == refund.refund_no)))
            if levels != expect:
                problems.append(f"{source} rows for levels {levels}, expected {expect}")
        return problems

    # ---- memberships ------------------------------------------------------

    def status(self, user_id: int) -> MembershipView:
        with self._uow() as uow:
            rows = uow.session.scalars(select(MembershipRow).where(MembershipRow.user_id == user_id)).all()
        return MembershipView(
            user_id,
            {r.level: utc(r.expires_at) for r in rows if r.expires_at > EPOCH},
            self._clock(),
        )

    def exchange(self, user_id: int, target: str) -> tuple[int, MembershipView]:
        catalog = self.catalog.get()
        now = self._clock()
        with self._uow() as uow:
            locked = {level: self._lock_membership(uow, user_id, level) for level in rules.LEVELS}
            held = {lvl: utc(row.expires_at) for lvl, row in locked.items() if row.expires_at > EPOCH}
            plan = rules.plan_exchange(held, target, catalog.exchange, now)
            ref = f"{user_id}:{now.isoformat()}"
            for level in plan.consumed_levels:
                self._record(uow, locked[level], now, now, "exchange_out", ref, held[level])
            self._record(uow, locked[target], plan.new_target_expiry, now, "exchange_in", ref, held.get(target))
            uow.commit()
        return plan.converted_days, self.status(user_id)

    def count_grants(self, source_ref: str) -> int:
        """Operator check: how many times one source was granted (must be 0 or 1)."""
        with self._uow() as uow:
            return uow.session.scalar(
                select(func.count()).select_from(MembershipGrantRow).where(MembershipGrantRow.source_ref == source_ref)
            )
