"""Merchant direct charges (api-docs/004): authenticate the signed request, then
debit the prepaid balance, create the order, grant the membership (or fail and
refund) and write the status callback to the outbox — all in one transaction.

Every refusal happens before anything is written, except the nonce: once a
signature is valid its nonce is consumed (its own small transaction), so a
captured request can never be replayed later, even one that was refused."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from server.membership.grants import MembershipGrants
from server.merchant import rules
from server.merchant.addresses import AddressPolicy, AddressRefused
from server.merchant.refunds import MerchantOrderRefunds
from server.merchant.rules import OrderState
from server.merchant.signing import verify_md5, verify_rsa
from server.merchant.views import MerchantOrderView
from server.merchant.tables import (
    MerchantBalanceEntryRow,
    MerchantBusinessRow,
    MerchantCallbackRow,
    MerchantNonceRow,
    MerchantOrderRow,
    MerchantProductRow,
    MerchantRow,
    UserAccountRow,
)
from server.platform import metrics, money
from server.platform.times import naive, naive_now
from server.platform.unit_of_work import UnitOfWork

GRANT_TIMEZONE = "Asia/Shanghai"  # calendar months of a merchant product are counted here
NONCE_RETENTION = timedelta(minutes=15)  # > 2 x the timestamp window
NONCE_PURGE_EVERY = 60.0  # seconds between purges from the request path
NONCE_PURGE_BATCH = 1000  # most nonces one such purge deletes
log = logging.getLogger(__name__)

CHARGE_PATH = "/v1/openapi/order/VIPCharge"
QUERY_ORDER_PATH = "/v1/openapi/order/query"
BALANCE_PATH = "/v1/openapi/merchant/balance"


@dataclass(frozen=True)
class Caller:
    merchant_pk: int
    merchant_id: str
    business_id: str
    body: dict[str, str]


@dataclass(frozen=True)
class ChargeResult:
    order: MerchantOrderView
    status: int  # 200, or 4012 when the order failed and was refunded
    message: str


class MerchantChargeService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], memberships: MembershipGrants,
                 addresses: AddressPolicy | None = None, clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 *, nonce_purge_every: float = NONCE_PURGE_EVERY, monotonic: Callable[[], float] = time.monotonic):
        self._uow = uow_factory
        self._memberships = memberships
        self._addresses = addresses or AddressPolicy()
        self._clock_ms = clock_ms
        # Expired nonces are purged from the request path too (at most one bounded batch
        # per interval per process), so they never pile up when no dispatcher runs.
        self._purge_every = nonce_purge_every
        self._monotonic = monotonic
        self._purge_lock = threading.Lock()  # the request threads all pass through _purge_due
        self._next_purge = 0.0

    # ---- authentication -------------------------------------------------------------

    def authenticate(self, metadata: dict[str, str], path: str, raw: bytes, fields: dict[str, bool]) -> Caller:
        headers = rules.parse_headers(metadata)
        rules.check_timestamp(headers.timestamp_ms, self._clock_ms())
        with self._uow() as uow:
            row = uow.session.execute(
                select(MerchantRow).join(MerchantBusinessRow, MerchantBusinessRow.merchant_pk == MerchantRow.id)
                .where(MerchantBusinessRow.business_id == headers.business_id)
            ).scalar_one_or_none()
        if row is None:
            raise rules.refusal(rules.Refusal.OPENAPI_BUSINESS_UNKNOWN)
        message = rules.signing_string("POST", path, headers.business_id, headers.timestamp_ms, headers.nonce, raw)
        if headers.sign_type == "SHA256-RSA":
            if not row.rsa_public_key:
                raise rules.refusal(rules.Refusal.OPENAPI_SIGN_TYPE_UNSUPPORTED)
            ok = verify_rsa(row.rsa_public_key, message, headers.sign)
        else:
            if not row.md5_secret:
                raise rules.refusal(rules.Refusal.OPENAPI_SIGN_TYPE_UNSUPPORTED)
            ok = verify_md5(row.md5_secret, message, headers.sign)
        if not ok:
            raise rules.refusal(rules.Refusal.OPENAPI_SIGN_INVALID)
        self._consume_nonce(headers.business_id, headers.nonce)
        if row.state != "active":
            raise rules.refusal(rules.Refusal.OPENAPI_MERCHANT_DISABLED)
        body = rules.parse_body(raw, fields)
        if body["businessId"] != headers.business_id or body["merchantId"] != row.merchant_id:
            raise rules.refusal(rules.Refusal.OPENAPI_BUSINESS_MISMATCH)
        return Caller(row.id, row.merchant_id, headers.business_id, body)

    def _consume_nonce(self, business_id: str, nonce: str) -> None:
        now = naive_now()
        with self._uow() as uow:
            inserted = uow.session.execute(
                uow.insert(MerchantNonceRow).values(business_id=business_id, nonce=nonce, created_at=now)
                .on_conflict_do_nothing(index_elements=["business_id", "nonce"])
                .returning(MerchantNonceRow.nonce)
            ).first()
            uow.commit()
        if inserted is None:
            raise rules.refusal(rules.Refusal.OPENAPI_NONCE_REPLAYED)
        if self._purge_due():
            try:
                self.purge_nonces(limit=NONCE_PURGE_BATCH)
            except SQLAlchemyError:  # housekeeping (e.g. a deadlock with a concurrent purge) never fails a request
                log.warning("nonce purge failed", exc_info=True)

    def _purge_due(self) -> bool:
        """True for the one request per interval that purges (the others pass on)."""
        with self._purge_lock:
            now = self._monotonic()
            if now < self._next_purge:
                return False
            self._next_purge = now + self._purge_every
            return True

    def purge_nonces(self, limit: int | None = None) -> int:
        """Nonces older than the window can never be replayed (their timestamp is refused).
        At most `limit` of them (the oldest first) when given."""
        expired = MerchantNonceRow.created_at < naive_now() - NONCE_RETENTION
        with self._uow() as uow:
            if limit is None:
                stmt = delete(MerchantNonceRow).where(expired)
            else:
                batch = (select(MerchantNonceRow.business_id, MerchantNonceRow.nonce).where(expired)
                         .order_by(MerchantNonceRow.created_at).limit(limit))
                stmt = delete(MerchantNonceRow).where(tuple_(MerchantNonceRow.business_id, MerchantNonceRow.nonce)
                                                      .in_(batch))
            count = uow.session.execute(stmt).rowcount
            uow.commit()
        return count

    # ---- the charge ----------------------------------------------------------------

    def charge(self, metadata: dict[str, str], raw: bytes) -> ChargeResult:
        caller = self.authenticate(metadata, CHARGE_PATH, raw, rules.CHARGE_FIELDS)
        request = rules.ChargeRequest.of(caller.body)
        rules.check_callback_url(request.callback_url)
        if request.callback_url:
            try:
                self._addresses.check(request.callback_url)
            except AddressRefused as exc:
                raise rules.refusal(rules.Refusal.OPENAPI_INVALID_PARAMS, str(exc)) from None
        try:
            return self._charge(caller, request)
        except IntegrityError:
            # A concurrent identical request created the order first: answer that one.
            with self._uow() as uow:
                existing = self._order_by_biz_code(uow, caller.merchant_pk, request.biz_code)
            if existing is None:
                raise
            return self._replay(existing, request)

    def _charge(self, caller: Caller, request: rules.ChargeRequest) -> ChargeResult:
        with self._uow() as uow:
            s = uow.session
            existing = self._order_by_biz_code(uow, caller.merchant_pk, request.biz_code)
            if existing is not None:
                return self._replay(existing, request)
            product = s.execute(select(MerchantProductRow).where(
                MerchantProductRow.merchant_pk == caller.merchant_pk,
                MerchantProductRow.product_code == request.product_code,
                MerchantProductRow.state == "active",
            )).scalar_one_or_none()
            if product is None:
                raise rules.refusal(rules.Refusal.OPENAPI_PRODUCT_NOT_ALLOWED)
            price = product.settlement_price_fen
            # The conditional UPDATE is the overdraft guard: it never takes the balance below 0,
            # whatever runs concurrently (row lock on PostgreSQL, one writer on SQLite).
            debited = s.execute(
                update(MerchantRow).where(MerchantRow.id == caller.merchant_pk, MerchantRow.balance_fen >= price)
                .values(balance_fen=MerchantRow.balance_fen - price)
            ).rowcount
            if debited != 1:
                raise rules.refusal(rules.Refusal.OPENAPI_INSUFFICIENT_BALANCE)
            now = naive_now()
            order = MerchantOrderRow(
                order_code=new_order_code(now), merchant_pk=caller.merchant_pk, biz_code=request.biz_code,
                business_id=caller.business_id, product_code=product.product_code, account=request.account,
                mobile=request.mobile, callback_url=request.callback_url, level=product.level, months=product.months,
                settlement_price_fen=price, state=OrderState.PROCESSING, created_at=now,
            )
            s.add(order)
            s.flush()  # the unique (merchant, bizCode) key fires here for a concurrent duplicate
            self._ledger(uow, caller.merchant_pk, "charge", -price, order.id, now)
            self._fulfil(uow, order, now)
            self._enqueue_callback(uow, order, caller.merchant_id, now)
            uow.commit()
        metrics.ORDERS_CREATED.labels("merchant").inc()
        if order.state == OrderState.SUCCESS:  # a direct charge is paid from the balance at once
            metrics.ORDERS_PAID.labels("merchant").inc()
        return _result(order)

    def _fulfil(self, uow: UnitOfWork, order: MerchantOrderRow, now: datetime) -> None:
        account = uow.session.get(UserAccountRow, order.account)
        if account is None:
            uow.session.execute(update(MerchantRow).where(MerchantRow.id == order.merchant_pk)
                                .values(balance_fen=MerchantRow.balance_fen + order.settlement_price_fen))
            self._ledger(uow, order.merchant_pk, "refund", order.settlement_price_fen, order.id, now)
            order.state, order.fail_reason = OrderState.FAILED, "account not found"
        else:
            expiry = self._memberships.grant_in(uow, account.user_id, order.level, order.months, GRANT_TIMEZONE,
                                                source="merchant_order", source_ref=str(order.id))
            order.user_id = account.user_id
            order.expires_at = naive(expiry)
            order.state = OrderState.SUCCESS
        order.finished_at = now
        uow.session.flush()

    def _enqueue_callback(self, uow: UnitOfWork, order: MerchantOrderRow, merchant_id: str, now: datetime) -> None:
        merchant = uow.session.get(MerchantRow, order.merchant_pk)
        url = order.callback_url or (merchant.callback_url if merchant else "") or ""
        if not url:
            return  # no address to report to: the merchant polls QueryOrder
        uow.session.add(MerchantCallbackRow(
            order_pk=order.id, business_id=order.business_id, url=url,
            body=callback_body(order, merchant_id), state="pending", attempts=0, next_attempt_at=now,
            created_at=now, updated_at=now,
        ))

    def _ledger(self, uow: UnitOfWork, merchant_pk: int, kind: str, amount: int, order_pk: int | None,
                now: datetime, note: str | None = None) -> None:
        balance = uow.session.execute(
            select(MerchantRow.balance_fen).where(MerchantRow.id == merchant_pk)
            .execution_options(populate_existing=True)
        ).scalar_one()
        uow.session.add(MerchantBalanceEntryRow(merchant_pk=merchant_pk, kind=kind, amount_fen=amount,
                                                balance_after_fen=balance, order_pk=order_pk, note=note,
                                                created_at=now))

    @staticmethod
    def _order_by_biz_code(uow: UnitOfWork, merchant_pk: int, biz_code: str) -> MerchantOrderRow | None:
        return uow.session.execute(select(MerchantOrderRow).where(
            MerchantOrderRow.merchant_pk == merchant_pk, MerchantOrderRow.biz_code == biz_code,
        )).scalar_one_or_none()

    @staticmethod
    def _replay(existing: MerchantOrderRow, request: rules.ChargeRequest) -> ChargeResult:
        same = (existing.business_id, existing.product_code, existing.account, existing.mobile,
                existing.callback_url) == (request.business_id, request.product_code, request.account, request.mobile,
                                           request.callback_url)
        if not same:
            raise rules.refusal(rules.Refusal.OPENAPI_BIZ_CODE_CONFLICT, order_code=existing.order_code)
        return _result(existing)

    # ---- refunds (payments/refunds.py) ------------------------------------------------

    def refund_book(self) -> MerchantOrderRefunds:
        """Merchant orders as the refund service sees them (refunds.py)."""
        return MerchantOrderRefunds(self._memberships, self._ledger, self._enqueue_callback)

    # ---- queries -------------------------------------------------------------------

    def query_order(self, metadata: dict[str, str], raw: bytes) -> tuple[MerchantOrderView, str]:
        caller = self.authenticate(metadata, QUERY_ORDER_PATH, raw, rules.QUERY_ORDER_FIELDS)
        biz_code, order_code = caller.body["bizCode"], caller.body["orderCode"]
        if not biz_code and not order_code:
            raise rules.refusal(rules.Refusal.OPENAPI_INVALID_PARAMS, "bizCode or orderCode is required")
        with self._uow() as uow:
            q = select(MerchantOrderRow).where(MerchantOrderRow.merchant_pk == caller.merchant_pk)
            if biz_code:
                q = q.where(MerchantOrderRow.biz_code == biz_code)
            if order_code:
                q = q.where(MerchantOrderRow.order_code == order_code)
            order = uow.session.execute(q).scalar_one_or_none()
            if order is None:
                raise rules.refusal(rules.Refusal.OPENAPI_ORDER_NOT_FOUND)
            callback = uow.session.execute(
                select(MerchantCallbackRow.state).where(MerchantCallbackRow.order_pk == order.id)
                .order_by(MerchantCallbackRow.id.desc()).limit(1)
            ).scalar_one_or_none()
        return MerchantOrderView.of(order), callback or ""

    def balance(self, metadata: dict[str, str], raw: bytes) -> tuple[str, int]:
        caller = self.authenticate(metadata, BALANCE_PATH, raw, rules.BALANCE_FIELDS)
        with self._uow() as uow:
            balance = uow.session.execute(
                select(MerchantRow.balance_fen).where(MerchantRow.id == caller.merchant_pk)
            ).scalar_one()
        return caller.merchant_id, balance


def _result(order: MerchantOrderRow) -> ChargeResult:
    if order.state == OrderState.FAILED:
        code, message = rules.STATUS[rules.Refusal.OPENAPI_ORDER_FAILED]
        return ChargeResult(MerchantOrderView.of(order), code, message)
    return ChargeResult(MerchantOrderView.of(order), rules.SUCCESS, "success")


def new_order_code(now: datetime) -> str:
    return f"VC{now:%Y%m%d%H%M%S}{secrets.token_hex(5).upper()}"


def shanghai(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")  # China has no DST


def callback_body(order: MerchantOrderRow, merchant_id: str) -> str:
    """The status report, serialised once: every attempt sends these exact bytes."""
    failed = order.state == OrderState.FAILED
    status, message = rules.STATUS[rules.Refusal.OPENAPI_ORDER_FAILED] if failed else (rules.SUCCESS, "success")
    if order.state == OrderState.REFUNDED:  # refunded by the operator to the merchant's prepaid balance
        message = "refunded"
    return json.dumps({
        "merchantId": merchant_id,
        "businessId": order.business_id,
        "orderCode": order.order_code,
        "bizCode": order.biz_code,
        "productCode": order.product_code,
        "account": order.account,
        "settlementPrice": money.yuan_number(order.settlement_price_fen),
        "state": order.state,
        "status": status,
        "message": message,
        "finishedAt": shanghai(order.finished_at),
    }, ensure_ascii=False, separators=(",", ":"))
