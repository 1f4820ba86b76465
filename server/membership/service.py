"""The membership area, composed: the parts share one clock, one unit of work, the
hot-path reads and group-commit writes. Each use case lives in the part named for it:
orders.py (001 orders and settling them), iap.py (App Store), ledger.py (membership
time: grants, exchanges, take-backs; MembershipGrants for the other areas), refunds.py
(the refund service's view of VIP orders)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from server.membership.iap import IapPurchases
from server.membership.ledger import MembershipLedger
from server.membership.orders import VipOrders
from server.membership.refunds import VipOrderRefunds
from server.payments.channels import ChannelRegistry
from server.payments.iap import IapVerifier
from server.platform.cached_catalog import CatalogProvider
from server.platform.group_commit import single_commits
from server.platform.hot_reads import SessionReads
from server.platform.unit_of_work import UnitOfWork


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
        self.catalog = catalog
        self.ledger = MembershipLedger(uow_factory, catalog, clock)
        self.orders = VipOrders(uow_factory, catalog, channels, self.ledger, public_base_url, clock=clock,
                                order_ttl=order_ttl, reads=reads or SessionReads(uow_factory),
                                writes=writes or single_commits(uow_factory))
        self.iap = IapPurchases(uow_factory, self.orders, self.ledger, iap, clock)
        self.refunds = VipOrderRefunds(self.orders, self.ledger)
