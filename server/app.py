"""Composes the application: settings -> engine -> payment channels -> the areas, and
registers the areas' gRPC services with the platform's server.

The composition root: every object gets what it uses through its constructor (or,
for a gRPC service, through its register()); nothing is set onto an object after it
is built. Each area's settings are read here and handed in."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine
from vipay.legacy.v1 import options_pb2

from server.console import servicer as console_servicer
from server.membership import servicer as membership_servicer
from server.membership.catalog import catalog_from_row, save_catalog
from server.membership.rules import PAY_METHODS
from server.membership.service import MembershipService
from server.membership.tables import VipCatalogRow
from server.merchant import admin_servicer as merchant_admin_servicer
from server.merchant import servicer as merchant_servicer
from server.merchant.callbacks import outbox_gauges
from server.merchant.addresses import system_resolver
from server.merchant.config import OpenApiSettings
from server.merchant.service import OpenApi, build_openapi
from server.membership.limits import CHECK_IAP, VIP_ORDER
from server.payments.channels import ChannelRegistry, PaymentChannel, RefundStatement, Reply
from server.payments import reconcile_servicer, refund_servicer
from server.operators import servicer as operators_servicer
from server.operators.service import Operators
from server.payments.configure import build_channels, build_iap_verifier
from server.payments.iap import IapVerifier, SandboxIapVerifier
from server.payments.reconciliation import ReconciliationService
from server.payments.order_actions import OrderActions
from server.payments.refunds import RefundService
from server.payments.sandbox import SandboxChannel
from server.payments.sandbox_books import SandboxBooks
from server.payments.settlement import SettlementService
from server.payments.settlement_worker import settle_forever
from server.platform import diagnostics, legacy_operations
from server.platform.admission import Priority
from server.platform.metrics import DatabaseGauges, MetricsEndpoint
from server.platform.cached_catalog import CatalogProvider
from server.platform.database import make_engine, make_read_engine, make_session_factory
from server.platform.auth import TokenVerifier, token_keys
from server.platform.grpc_server import GrpcServer, Registration
from server.platform.migrate import schema_behind
from server.platform.rate_limits import RateLimit, RateLimiter
from server.platform.readiness import Readiness
from server.platform.settings import Settings
from server.platform.group_commit import GroupCommit
from server.platform.hot_reads import Reads
from server.platform.unit_of_work import UnitOfWork
from server.recharge import servicer as recharge_servicer
from server.recharge import wallet_servicer
from server.recharge.captchas import CAPTCHA, CHARGE_PAY, CaptchaGuard, Limits, png_captcha
from server.recharge.catalog import RechargeCatalogProvider
from server.recharge.profiles import UserProfiles
from server.recharge.service import RechargeService
from server.recharge.settings import RechargeSettings

log = logging.getLogger("vipay.server")


@dataclass
class App:
    settings: Settings
    engine: Engine
    uow_factory: partial
    channels: ChannelRegistry
    sandbox: SandboxChannel
    iap: IapVerifier  # the App Store verifier when configured (payments/appstore.py), else the sandbox
    memberships: MembershipService
    recharges: RechargeService  # wallet + recharge orders (docs/recharge.md)
    openapi: OpenApi  # merchant direct charge + callbacks (docs/openapi.md)
    settlement: SettlementService  # re-query / close unpaid orders (payments/settlement_worker.py)
    profiles: UserProfiles  # per-store user profiles for 003's `personal` (docs/recharge.md)
    refunds: RefundService  # operator and provider-console refunds (docs/refunds.md)
    abuse: RateLimiter  # per-user / per-IP limits of every order-creating path (docs/recharge.md: Limits)
    reconciliation: ReconciliationService  # daily statements vs our books (docs/reconciliation.md)
    operators: Operators  # console accounts, sessions, audit log (docs/console.md)

    def save_catalog(self, catalog, audit=None) -> int:
        """audit(uow): records the change in the same transaction (docs/console.md)."""
        with self.uow_factory() as uow:
            version = save_catalog(uow, catalog)
            if audit is not None:
                audit(uow)
            uow.commit()
        return version


def build_app(settings: Settings, engine: Engine | None = None, *, announce_channels: bool = True,
              recharge_settings: RechargeSettings | None = None, openapi_settings: OpenApiSettings | None = None,
              callback_resolver: Callable[[str, int], list[str]] = system_resolver) -> App:
    """announce_channels=False: no provider set-up warnings (CLI commands that never
    talk to a payment provider). The areas' own settings: from the environment
    (and var/dev.env) unless given. `callback_resolver`: how merchants' callback host
    names resolve (tests name their local receivers)."""
    recharge_settings = RechargeSettings() if recharge_settings is None else recharge_settings
    openapi_settings = OpenApiSettings() if openapi_settings is None else openapi_settings
    engine = engine or make_engine(settings.sqlalchemy_url)
    session_factory = make_session_factory(engine)
    uow_factory = partial(UnitOfWork, session_factory)
    reads = Reads(make_read_engine(engine))  # hot reads: read-only, never behind the SQLite writer lock
    # Concurrent order inserts share one durable commit (GroupCommit's docstring).
    writes = GroupCommit(engine, settings.group_commit_delay_ms / 1000)
    sandbox = SandboxChannel(settings.sandbox_secret, books=SandboxBooks(uow_factory))
    # Real providers where configured, the sandbox elsewhere (refused in production
    # unless ALLOW_SANDBOX): see payments/configure.py and docs/channels.md.
    channel_setup = build_channels(settings, sandbox, announce_channels)
    # The refund service is built from the areas' refund books, which need the channels;
    # the channels reach it for refund statements on any notify path through this
    # function, which looks `refunds` up when a statement arrives (it is bound below).
    def refund_statement(channel: PaymentChannel, statement: RefundStatement) -> Reply:
        return refunds.receive_statement(channel, statement)

    channels = channel_setup.registry(on_refund=refund_statement)
    assert set(PAY_METHODS) <= set(channel_setup.routes)
    iap = build_iap_verifier(settings, SandboxIapVerifier(settings.sandbox_secret), announce_channels)
    order_ttl = timedelta(minutes=settings.order_close_minutes)

    catalog = CatalogProvider(uow_factory, settings.catalog_refresh_seconds, VipCatalogRow, catalog_from_row)
    memberships = MembershipService(uow_factory, catalog, channels, iap, settings.public_base_url,
                                    order_ttl=order_ttl, reads=reads, writes=writes)
    orders = RateLimit(settings.order_limit_per_user, settings.order_limit_per_ip, settings.order_rate_window_seconds)
    r = recharge_settings
    captcha_images = RateLimit(r.captcha_limit_per_user, r.captcha_limit_per_ip, r.recharge_rate_window_seconds)
    abuse = RateLimiter(uow_factory, writes=writes,
                        rates={VIP_ORDER: orders, CHECK_IAP: orders, CHARGE_PAY: orders, CAPTCHA: captcha_images})
    captchas = CaptchaGuard(uow_factory, abuse, Limits(r.recharge_order_limit_per_user, r.recharge_order_limit_per_ip,
                                                       r.recharge_rate_window_seconds, r.recharge_captcha_ttl_seconds),
                            png_captcha)
    recharges = RechargeService(uow_factory, RechargeCatalogProvider(uow_factory, settings.catalog_refresh_seconds),
                                channels, memberships.ledger, captchas, settings.public_base_url, order_ttl=order_ttl,
                                reads=reads)
    # The stack's own ports are never a callback target (docs/openapi.md: Callback address policy).
    own_ports = frozenset(p for p in (settings.http_port, settings.grpc_port, settings.envoy_admin_port,
                                      settings.metrics_port) if p)
    openapi = build_openapi(uow_factory, memberships.ledger, openapi_settings, callback_resolver, own_ports)
    requery_after = timedelta(seconds=settings.settle_requery_after_seconds)
    requery_every = timedelta(seconds=max(settings.settle_interval_seconds, 1))
    refunds = RefundService(
        uow_factory, channels,
        [memberships.refunds, recharges.refund_book(), openapi.charges.refund_book()],
        settings.public_base_url, requery_after=requery_after, requery_every=requery_every,
        batch_size=settings.settle_batch_size, reads=reads,
    )
    settlement = SettlementService(
        uow_factory, channels, [memberships.orders.order_book(), recharges.order_book()], close_after=order_ttl,
        requery_after=requery_after, requery_every=requery_every, batch_size=settings.settle_batch_size,
        refunds=refunds,  # unknown refund outcomes are asked again by the same loop
    )
    reconciliation = ReconciliationService(
        uow_factory, channels, settlement, refunds, hour=settings.reconcile_hour,
        retry_after=timedelta(seconds=settings.reconcile_retry_seconds),
        lease=timedelta(seconds=settings.reconcile_lease_seconds),
    )
    return App(settings, engine, uow_factory, channels, sandbox, iap, memberships, recharges, openapi, settlement,
               UserProfiles(uow_factory), refunds, abuse, reconciliation, Operators(uow_factory, token_keys(settings)[1]))


def services(app: App) -> list[Registration]:
    """The gRPC services, in registration order, each bound to what it uses."""
    return [
        diagnostics.register,
        partial(membership_servicer.register, memberships=app.memberships, save_catalog=app.save_catalog,
                refunded=partial(app.refunds.refunded_fen, "vip_orders"), limiter=app.abuse,
                audit=app.operators.record),
        partial(recharge_servicer.register, recharges=app.recharges, profiles=app.profiles,
                refunded=partial(app.refunds.refunded_fen, "recharge_orders"), limiter=app.abuse),
        partial(wallet_servicer.register, wallets=app.recharges.wallet, audited=app.operators.audited),
        partial(merchant_servicer.register, charges=app.openapi.charges),
        partial(refund_servicer.register, refunds=app.refunds, audited=app.operators.audited),
        partial(reconcile_servicer.register, reconciliation=app.reconciliation),
        partial(operators_servicer.register, operators=app.operators),
        partial(console_servicer.register, uow_factory=app.uow_factory, refund_check=app.refunds.check,
                recharge_catalog=app.recharges.catalog, record=app.operators.record,
                membership_status=app.memberships.ledger.status, grant_chain=app.memberships.ledger.grant_chain,
                order_actions=OrderActions(app.uow_factory, app.channels, app.settlement.books),
                audited=app.operators.audited),
        partial(merchant_admin_servicer.register, registry=app.openapi.registry, audited=app.operators.audited),
    ]


def build_grpc_server(app: App, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    s = app.settings
    # Checked on the read engine: on SQLite a check through the writer engine would take the
    # writer lock (BEGIN IMMEDIATE) every second.
    readiness = Readiness(make_read_engine(app.engine), interval=s.readiness_interval_seconds)
    verifier = TokenVerifier(*token_keys(s), session_ended=app.operators.session_ended)
    return GrpcServer(services(app), merchant_servicer.background(app.openapi), verifier=verifier,
                      workers=s.grpc_workers, read_workers=s.read_workers, host=host, port=port, readiness=readiness,
                      max_in_flight=s.grpc_max_in_flight, priority_reserve=s.grpc_priority_reserve,
                      priority=call_priority)


# Never refused by the server's in-flight bound before reads are (docs/operations.md:
# Overload): money arriving from outside, as Envoy's HIGH routes (gateway/envoy.yaml).
_PRIORITY_FAMILIES = {options_pb2.FAMILY_NOTIFICATION, options_pb2.FAMILY_MERCHANT}
_LIVENESS = "/vipay.diagnostics.v1.DiagnosticsService/Ping"


def call_priority(method: str) -> Priority:
    if method == _LIVENESS:
        return Priority.EXEMPT
    if legacy_operations.declared(method).family in _PRIORITY_FAMILIES:
        return Priority.HIGH
    return Priority.DEFAULT


def database_gauges(app: App) -> DatabaseGauges:
    """The metrics read from the database at scrape time (names: README, Metrics)."""

    def outbox() -> dict[str, tuple[int, float, float]]:
        return outbox_gauges(app.uow_factory)

    return DatabaseGauges([
        ("vipay_merchant_callbacks_pending", "Merchant status callbacks waiting in the outbox", [],
         lambda: [((), sum(v[0] for v in outbox().values()))]),
        ("vipay_merchant_callbacks_oldest_pending_seconds", "Age of the oldest pending merchant callback", [],
         lambda: [((), max((v[1] for v in outbox().values()), default=0.0))]),
        ("vipay_merchant_callbacks_pending_by_business", "Merchant status callbacks waiting, per businessId",
         ["business_id"], lambda: [((b,), v[0]) for b, v in outbox().items()]),
        ("vipay_merchant_callbacks_oldest_pending_by_business_seconds",
         "Age of the oldest pending merchant callback, per businessId", ["business_id"],
         lambda: [((b,), v[1]) for b, v in outbox().items()]),
        ("vipay_merchant_callbacks_overdue_by_business_seconds",
         "How late the most overdue callback attempt is (0: every attempt on time), per businessId",
         ["business_id"], lambda: [((b,), v[2]) for b, v in outbox().items()]),
        ("vipay_settlement_lag_seconds", "How long the oldest open order of each book has been due for "
         "settlement (re-query); 0 when none is overdue", ["book"],
         lambda: [((book,), lag) for book, lag in app.settlement.lag_seconds().items()]),
        ("vipay_reconciliation_discrepancies", "Items of each channel's latest successful reconciliation, by class "
         "(docs/reconciliation.md)", ["channel", "class"], lambda: app.reconciliation.gauges()[0]),
        ("vipay_reconciliation_last_success_timestamp_seconds", "When each channel's reconciliation last succeeded "
         "(unix time)", ["channel"], lambda: app.reconciliation.gauges()[1]),
    ])


def start_metrics(app: App, port: int | None = None) -> MetricsEndpoint | None:
    """The Prometheus endpoint on 127.0.0.1 (METRICS_PORT; off when unset)."""
    port = app.settings.metrics_port if port is None else port
    return MetricsEndpoint(port, database_gauges(app)) if port is not None else None


async def serve_forever(app: App) -> None:
    # A thread back from the database (a worker, the group-commit writer) waits for the
    # GIL up to the switch interval while the event loop runs; at the default 5 ms a
    # write under a heavy read load waited seconds. 0.5 ms keeps the handoffs prompt.
    sys.setswitchinterval(0.0005)
    behind = schema_behind(app.engine)
    if behind is not None:  # every call would fail: refuse to start, saying what to do
        raise SystemExit(f"vipay: {behind}")
    server = build_grpc_server(app, app.settings.grpc_host, app.settings.grpc_port)
    await server.start()
    metrics_endpoint = start_metrics(app)
    # Re-query / close unpaid orders; reconcile yesterday's statements once a day.
    settling = asyncio.create_task(settle_forever(app.settlement, app.settings.settle_interval_seconds,
                                                  app.reconciliation.run_due))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    settling.cancel()
    await server.stop(app.settings.stop_grace_seconds, drain=app.settings.drain_seconds)
    if metrics_endpoint is not None:
        metrics_endpoint.stop()
