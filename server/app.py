"""Composes the application: settings -> engine -> payment channels -> the areas, and
registers the areas' gRPC services with the platform's server."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine

from server.membership import servicer as membership_servicer
from server.membership.catalog import catalog_from_row, save_catalog
from server.membership.rules import PAY_METHODS
from server.membership.service import MembershipService
from server.membership.tables import VipCatalogRow
from server.merchant import servicer as merchant_servicer
from server.merchant.service import OpenApi, build_openapi
from server.payments.channels import ChannelRegistry
from server.payments import refund_servicer
from server.payments.configure import build_channels, build_iap_verifier
from server.payments.iap import IapVerifier, SandboxIapVerifier
from server.payments.refunds import RefundService
from server.payments.sandbox import SandboxChannel
from server.payments.settlement import SettlementService
from server.payments.settlement_worker import settle_forever
from server.platform import diagnostics
from server.platform.abuse import CAPTCHA, CHARGE_PAY, CHECK_IAP, VIP_ORDER, AbuseGuard, Limits, RateLimit, png_captcha
from server.platform.cached_catalog import CatalogProvider
from server.platform.database import make_engine, make_session_factory
from server.platform.grpc_server import GrpcServer
from server.platform.settings import Settings
from server.platform.unit_of_work import UnitOfWork
from server.recharge import servicer as recharge_servicer
from server.recharge import wallet_servicer
from server.recharge.catalog import RechargeCatalogProvider
from server.recharge.profiles import UserProfiles
from server.recharge.service import RechargeService

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
    abuse: AbuseGuard  # per-user / per-IP limits of every order-creating path (docs/recharge.md: Limits)

    def save_catalog(self, catalog) -> int:
        with self.uow_factory() as uow:
            version = save_catalog(uow, catalog)
            uow.commit()
        return version


def build_app(settings: Settings, engine: Engine | None = None, *, announce_channels: bool = True) -> App:
    """announce_channels=False: no provider set-up warnings (CLI commands that never
    talk to a payment provider)."""
    engine = engine or make_engine(settings.sqlalchemy_url)
    uow_factory = partial(UnitOfWork, make_session_factory(engine))
    sandbox = SandboxChannel(settings.sandbox_secret)
    # Real providers where configured, the sandbox elsewhere (refused in production
    # unless ALLOW_SANDBOX): see payments/configure.py and docs/channels.md.
    channel_setup = build_channels(settings, sandbox, announce_channels)
    channels = channel_setup.registry()
    assert set(PAY_METHODS) <= set(channel_setup.routes)
    iap = build_iap_verifier(settings, SandboxIapVerifier(settings.sandbox_secret), announce_channels)
    order_ttl = timedelta(minutes=settings.order_close_minutes)

    catalog = CatalogProvider(uow_factory, settings.catalog_refresh_seconds, VipCatalogRow, catalog_from_row)
    memberships = MembershipService(uow_factory, catalog, channels, iap, settings.public_base_url,
                                    order_ttl=order_ttl)
    limits = Limits(settings.recharge_order_limit_per_user, settings.recharge_order_limit_per_ip,
                    settings.recharge_rate_window_seconds, settings.recharge_captcha_ttl_seconds)
    orders = RateLimit(settings.order_limit_per_user, settings.order_limit_per_ip, settings.order_rate_window_seconds)
    captchas = RateLimit(settings.captcha_limit_per_user, settings.captcha_limit_per_ip,
                         settings.recharge_rate_window_seconds)
    abuse = AbuseGuard(uow_factory, limits, png_captcha,
                       rates={VIP_ORDER: orders, CHECK_IAP: orders, CHARGE_PAY: orders, CAPTCHA: captchas})
    recharges = RechargeService(uow_factory, RechargeCatalogProvider(uow_factory, settings.catalog_refresh_seconds),
                                channels, memberships, abuse, settings.public_base_url, order_ttl=order_ttl)
    openapi = build_openapi(uow_factory, memberships)
    settlement = SettlementService(
        uow_factory, channels, [memberships.order_book(), recharges.order_book()], close_after=order_ttl,
        requery_after=timedelta(seconds=settings.settle_requery_after_seconds),
        requery_every=timedelta(seconds=max(settings.settle_interval_seconds, 1)),
        batch_size=settings.settle_batch_size,
    )
    refunds = RefundService(
        uow_factory, channels,
        [memberships.refund_book(), recharges.refund_book(), openapi.charges.refund_book()],
        settings.public_base_url, requery_after=timedelta(seconds=settings.settle_requery_after_seconds),
        requery_every=timedelta(seconds=max(settings.settle_interval_seconds, 1)),
        batch_size=settings.settle_batch_size,
    )
    channels.on_refund = refunds.receive_statement  # refund notifications on any notify path
    settlement.refunds = refunds  # unknown refund outcomes are asked again by the same loop
    return App(settings, engine, uow_factory, channels, sandbox, iap, memberships, recharges, openapi, settlement,
               UserProfiles(uow_factory), refunds, abuse)


# The gRPC services, in registration order. Each module has register() (and may have background()).
SERVICES = (diagnostics, membership_servicer, recharge_servicer, wallet_servicer, merchant_servicer, refund_servicer)


def build_grpc_server(app: App, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    return GrpcServer(app, SERVICES, host, port)


async def serve_forever(app: App) -> None:
    server = build_grpc_server(app, app.settings.grpc_host, app.settings.grpc_port)
    await server.start()
    settling = asyncio.create_task(settle_forever(app))  # re-query / close unpaid orders
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    settling.cancel()
    await server.stop()
