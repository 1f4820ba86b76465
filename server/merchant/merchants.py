"""The merchant registry, for operators (`python -m server merchant ...`): merchants,
businessIds, keys, products, prepaid balance, account mapping, callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update

from server.membership.grants import LEVELS
from server.merchant.rules import Refusal, check_callback_url
from server.merchant.signing import generate_md5_secret, generate_rsa_keypair, normalise_public_key
from server.merchant.tables import (
    MerchantBalanceEntryRow,
    MerchantBusinessRow,
    MerchantCallbackRow,
    MerchantOrderRow,
    MerchantProductRow,
    MerchantRow,
    UserAccountRow,
)
from server.merchant.views import MerchantBalanceEntryView, MerchantBalanceLedger
from server.platform.errors import DomainError, Kind
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork


def _problem(message: str) -> DomainError:
    return DomainError(Refusal.MERCHANT_ADMIN, message, Kind.FAILED_PRECONDITION)


def _check_url(url: str | None) -> None:
    """The same rule as a request's callbackUrl: a default URL without a scheme would
    only fail at delivery, hours later."""
    try:
        check_callback_url(url or "")
    except DomainError:
        raise _problem(f"callback URL must be http(s)://...: {url}") from None


@dataclass(frozen=True)
class IssuedKeys:
    """Shown to the operator once; only the public key / secret is stored."""

    rsa_private_key: str | None = None
    md5_secret: str | None = None


class MerchantRegistry:
    def __init__(self, uow_factory: Callable[[], UnitOfWork]):
        self._uow = uow_factory

    def _merchant(self, uow: UnitOfWork, merchant_id: str, lock: bool = False) -> MerchantRow:
        q = select(MerchantRow).where(MerchantRow.merchant_id == merchant_id)
        row = uow.session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
        if row is None:
            raise _problem(f"no merchant {merchant_id}")
        return row

    def create(self, merchant_id: str, name: str, business_ids: list[str], callback_url: str | None = None,
               rsa: bool = True, md5: bool = False, rsa_public_key: str | None = None) -> IssuedKeys:
        _check_url(callback_url)
        now = naive_now()
        with self._uow() as uow:
            if uow.session.execute(select(MerchantRow.id).where(MerchantRow.merchant_id == merchant_id)).first():
                raise _problem(f"merchant {merchant_id} exists")
            row = MerchantRow(merchant_id=merchant_id, name=name, state="active", balance_fen=0,
                              callback_url=callback_url or None, created_at=now, updated_at=now)
            uow.session.add(row)
            uow.session.flush()
            keys = self._set_keys(row, rsa, md5, rsa_public_key)
            for business_id in business_ids or [merchant_id]:
                self._add_business(uow, row, business_id, now)
            uow.commit()
        return keys

    def rotate_keys(self, merchant_id: str, rsa: bool, md5: bool, rsa_public_key: str | None = None) -> IssuedKeys:
        with self._uow() as uow:
            row = self._merchant(uow, merchant_id, lock=True)
            keys = self._set_keys(row, rsa, md5, rsa_public_key)
            row.updated_at = naive_now()
            uow.commit()
        return keys

    @staticmethod
    def _set_keys(row: MerchantRow, rsa: bool, md5: bool, rsa_public_key: str | None) -> IssuedKeys:
        private = secret = None
        if rsa_public_key:
            row.rsa_public_key = normalise_public_key(rsa_public_key)  # the merchant kept its private key
        elif rsa:
            private, row.rsa_public_key = generate_rsa_keypair()
        if md5:
            secret = row.md5_secret = generate_md5_secret()
        return IssuedKeys(private, secret)

    def add_business(self, merchant_id: str, business_id: str) -> None:
        with self._uow() as uow:
            self._add_business(uow, self._merchant(uow, merchant_id), business_id, naive_now())
            uow.commit()

    @staticmethod
    def _add_business(uow: UnitOfWork, row: MerchantRow, business_id: str, now) -> None:
        if uow.session.get(MerchantBusinessRow, business_id) is not None:
            raise _problem(f"businessId {business_id} is taken")
        uow.session.add(MerchantBusinessRow(business_id=business_id, merchant_pk=row.id, created_at=now))

    def set_product(self, merchant_id: str, product_code: str, level: str, months: int, price_fen: int,
                    enabled: bool = True) -> None:
        if level not in LEVELS or months < 1 or price_fen < 0:
            raise _problem(f"level must be one of {LEVELS}, months >= 1, price >= 0")
        with self._uow() as uow:
            row = self._merchant(uow, merchant_id)
            product = uow.session.execute(select(MerchantProductRow).where(
                MerchantProductRow.merchant_pk == row.id, MerchantProductRow.product_code == product_code,
            )).scalar_one_or_none()
            if product is None:
                product = MerchantProductRow(merchant_pk=row.id, product_code=product_code, created_at=naive_now())
                uow.session.add(product)
            product.level, product.months, product.settlement_price_fen = level, months, price_fen
            product.state = "active" if enabled else "disabled"
            uow.commit()

    def top_up(self, merchant_id: str, amount_fen: int, note: str | None = None) -> int:
        if amount_fen <= 0:
            raise _problem("the amount must be positive")
        now = naive_now()
        with self._uow() as uow:
            row = self._merchant(uow, merchant_id)
            uow.session.execute(update(MerchantRow).where(MerchantRow.id == row.id)
                                .values(balance_fen=MerchantRow.balance_fen + amount_fen, updated_at=now))
            balance = uow.session.execute(select(MerchantRow.balance_fen).where(MerchantRow.id == row.id)
                                          .execution_options(populate_existing=True)).scalar_one()
            uow.session.add(MerchantBalanceEntryRow(merchant_pk=row.id, kind="topup", amount_fen=amount_fen,
                                                    balance_after_fen=balance, note=note, created_at=now))
            uow.commit()
        return balance

    def set_state(self, merchant_id: str, active: bool) -> None:
        with self._uow() as uow:
            row = self._merchant(uow, merchant_id, lock=True)
            row.state, row.updated_at = ("active" if active else "disabled"), naive_now()
            uow.commit()

    def set_callback_url(self, merchant_id: str, url: str | None) -> None:
        _check_url(url)
        with self._uow() as uow:
            row = self._merchant(uow, merchant_id, lock=True)
            row.callback_url, row.updated_at = url or None, naive_now()
            uow.commit()

    def link_account(self, account: str, user_id: int, mobile: str | None = None) -> None:
        with self._uow() as uow:
            row = uow.session.get(UserAccountRow, account)
            if row is None:
                uow.session.add(UserAccountRow(account=account, user_id=user_id, mobile=mobile, created_at=naive_now()))
            else:
                row.user_id, row.mobile = user_id, mobile
            uow.commit()

    def list(self) -> list[dict]:
        with self._uow() as uow:
            out = []
            for m in uow.session.execute(select(MerchantRow).order_by(MerchantRow.id)).scalars():
                businesses = uow.session.execute(select(MerchantBusinessRow.business_id)
                                                 .where(MerchantBusinessRow.merchant_pk == m.id)).scalars().all()
                products = uow.session.execute(select(MerchantProductRow)
                                               .where(MerchantProductRow.merchant_pk == m.id)).scalars().all()
                orders = uow.session.execute(select(func.count()).select_from(MerchantOrderRow)
                                             .where(MerchantOrderRow.merchant_pk == m.id)).scalar_one()
                out.append({
                    "merchantId": m.merchant_id, "name": m.name, "state": m.state, "balance_fen": m.balance_fen,
                    "businessIds": list(businesses), "callbackUrl": m.callback_url,
                    "signTypes": [t for t, k in (("SHA256-RSA", m.rsa_public_key), ("MD5", m.md5_secret)) if k],
                    "products": [{"productCode": p.product_code, "level": p.level, "months": p.months,
                                  "settlement_price_fen": p.settlement_price_fen, "state": p.state}
                                 for p in products],
                    "orders": orders,
                })
        return out

    def balance_entries(self, merchant_id: str, before_id: int | None, limit: int) -> MerchantBalanceLedger:
        """A page of the balance ledger, newest (highest id) first, after `before_id` when
        given (keyset paging: a deep page costs what the first does)."""
        with self._uow() as uow:
            merchant = self._merchant(uow, merchant_id)
            mine = MerchantBalanceEntryRow.merchant_pk == merchant.id
            q = (select(MerchantBalanceEntryRow, MerchantOrderRow.order_code)
                 .outerjoin(MerchantOrderRow, MerchantOrderRow.id == MerchantBalanceEntryRow.order_pk)
                 .where(mine).order_by(MerchantBalanceEntryRow.id.desc()).limit(limit + 1))  # one more: is there a next page
            if before_id is not None:
                q = q.where(MerchantBalanceEntryRow.id < before_id)
            entries = [MerchantBalanceEntryView(e.id, e.kind, e.amount_fen, e.balance_after_fen, code, e.note,
                                                e.created_at) for e, code in uow.session.execute(q).all()]
            total = uow.session.scalar(select(func.count()).select_from(MerchantBalanceEntryRow).where(mine))
            return MerchantBalanceLedger(entries[:limit], len(entries) > limit, total, merchant.balance_fen)

    def callbacks(self, state: str | None = None, limit: int = 50) -> list[dict]:
        with self._uow() as uow:
            q = (select(MerchantCallbackRow, MerchantOrderRow.order_code)
                 .join(MerchantOrderRow, MerchantOrderRow.id == MerchantCallbackRow.order_pk)
                 .order_by(MerchantCallbackRow.id.desc()).limit(limit))
            if state:
                q = q.where(MerchantCallbackRow.state == state)
            return [{"id": c.id, "orderCode": code, "url": c.url, "state": c.state, "attempts": c.attempts,
                     "next_attempt_at": str(c.next_attempt_at), "last_error": c.last_error}
                    for c, code in uow.session.execute(q).all()]

    def resend(self, callback_id: int) -> None:
        """Queues one more attempt now (also for delivered or undelivered reports)."""
        with self._uow() as uow:
            row = uow.session.get(MerchantCallbackRow, callback_id, with_for_update=True)
            if row is None:
                raise _problem(f"no callback {callback_id}")
            now = naive_now()
            row.state, row.next_attempt_at, row.updated_at = "pending", now, now
            uow.commit()
