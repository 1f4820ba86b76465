"""In-app purchases (App Store): redeeming a purchase for the user's Iap order
(check-iap-result), and the App Store's server notifications — a REFUND / REVOKE takes
back what the purchase granted, once, and is remembered so a later redemption is refused."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from server.membership import rules
from server.membership.ledger import MembershipLedger
from server.membership.orders import VipOrders
from server.membership.rules import Refusal
from server.membership.tables import AppStoreNotificationRow, IapRedemptionRow, IapTransactionRow, VipOrderRow
from server.membership.views import VipOrderView
from server.payments.iap import IapVerifier, ReceiptRejected
from server.platform.errors import DomainError, Kind, Violations
from server.platform.times import naive
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class IapPurchases:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], orders: VipOrders, ledger: MembershipLedger,
                 iap: IapVerifier, clock: Callable[[], datetime]):
        self._uow = uow_factory
        self._orders = orders
        self._ledger = ledger
        self._iap = iap
        self._clock = clock

    def check_iap(self, user_id: int, order_id: int, receipt: str) -> VipOrderView:
        """Verifies an App Store purchase for the user's Iap order and fulfils it.
        Any failure leaves everything as it was."""
        if not receipt:
            v = Violations()
            v.add("receipt", "The receipt field is required.")
            v.raise_if_any()
        with self._uow() as uow:
            order = VipOrderView.of(self._orders.own_order(uow, user_id, order_id))
        if order.pay_method != "Iap":
            raise DomainError(Refusal.NOT_IAP_ORDER, "The order is not an in-app purchase.", Kind.FAILED_PRECONDITION)
        if order.pay_status == rules.PayStatus.PAID:
            return order
        # Verified before locking anything: a legacy receipt costs an App Store round trip.
        try:
            purchase = self._iap.verify(receipt)
        except ReceiptRejected as exc:
            raise DomainError(Refusal.IAP_VERIFICATION_FAILED, f"Receipt rejected: {exc}", Kind.FAILED_PRECONDITION) from exc
        with self._uow() as uow:
            locked = self._orders.own_order(uow, user_id, order_id, lock=True)
            if locked.pay_status != rules.PayStatus.PAID:
                self._redeem(uow, user_id, locked, purchase)
                uow.commit()
            return VipOrderView.of(locked)

    def _redeem(self, uow: UnitOfWork, user_id: int, order: VipOrderRow, purchase) -> None:
        """Pays the locked order with a verified purchase, or refuses (nothing written)."""
        if purchase.product_id != order.vip_info.get("iap"):
            raise DomainError(Refusal.IAP_PRODUCT_MISMATCH, "The purchase is for another product.", Kind.FAILED_PRECONDITION)
        if purchase.quantity != order.quantity:
            # One transaction pays for what it bought, never for an order of several
            # (orders of quantity > 1 from before Iap was limited to 1 included).
            raise DomainError(Refusal.ORDER_QUANTITY_MISMATCH, "The purchase is not for the order's quantity.",
                              Kind.FAILED_PRECONDITION,
                              metadata={"order_quantity": str(order.quantity), "quantity": str(purchase.quantity)})
        if purchase.app_account_token != self._iap.account_token(user_id):
            raise DomainError(Refusal.IAP_ACCOUNT_MISMATCH, "The purchase belongs to another account.", Kind.FAILED_PRECONDITION)
        # Locked first (the same row a REFUND/REVOKE notification locks): a refund that
        # arrived before, or races this redemption, is seen here or sees our redemption.
        known = self._lock_iap_transaction(uow, purchase.transaction_id)
        if known.revoked_at is not None:
            raise DomainError(Refusal.IAP_REFUNDED, "This purchase was refunded or revoked by the App Store.",
                              Kind.FAILED_PRECONDITION, metadata={"transaction_id": purchase.transaction_id})
        already = uow.session.get(IapRedemptionRow, purchase.transaction_id)
        if already is not None:
            raise DomainError(Refusal.IAP_ALREADY_REDEEMED, "This purchase was already redeemed.", Kind.CONFLICT,
                              metadata={"transaction_id": purchase.transaction_id})
        uow.session.add(IapRedemptionRow(
            transaction_id=purchase.transaction_id, order_id=order.id, user_id=user_id,
            created_at=naive(self._clock()),
        ))
        try:
            uow.session.flush()
        except IntegrityError as exc:  # a concurrent check redeemed it for another order first
            raise DomainError(Refusal.IAP_ALREADY_REDEEMED, "This purchase was already redeemed.", Kind.CONFLICT,
                              metadata={"transaction_id": purchase.transaction_id}) from exc
        self._orders.fulfil(uow, order, purchase.transaction_id)

    def handle_appstore_notification(self, body: bytes) -> int:
        """App Store Server Notifications V2. Returns the HTTP status for Apple:
        200 when handled or already handled (deduplicated on notificationUUID),
        400 when it does not verify (Apple retries; nothing changed)."""
        decode = getattr(self._iap, "decode_notification", None)
        if decode is None:
            raise DomainError(Refusal.APP_STORE_NOT_CONFIGURED, "App Store notifications are not configured.", Kind.NOT_FOUND)
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
        return uow.lock_or_create(IapTransactionRow, {"created_at": naive(self._clock())},
                                  transaction_id=transaction_id)

    def _take_back(self, uow: UnitOfWork, transaction_id: str, why: str) -> None:
        """Takes back what a refunded / revoked App Store purchase granted (once),
        following an exchange if the purchase's days were converted."""
        redemption = uow.session.get(IapRedemptionRow, transaction_id)
        if redemption is None:
            log.info("refund for a transaction not redeemed (yet): remembered", extra={"transaction_id": transaction_id})
            return
        order = uow.session.get(VipOrderRow, redemption.order_id)
        ref = str(order.id)
        if self._ledger.has_grant(uow, "iap_refund", ref):
            return  # REFUND then REVOKE (or the reverse) for the same purchase
        taken = self._ledger.take_back_in(uow, order.user_id, "vip_order", ref, 1, source="iap_refund",
                                          source_ref=ref)
        log.warning("app store %s: membership taken back", why.lower(),
                    extra={"order_id": order.id, "user_id": order.user_id,
                           "taken": {lvl: span.total_seconds() for lvl, span in taken}})
