"""Wires the application once: settings -> engine -> adapters -> services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine

from .adapters.channels.base import ChannelRegistry
from .adapters.channels.configure import build_channels, build_iap_verifier
from .adapters.channels.sandbox import SandboxChannel
from .adapters.db import make_engine, make_session_factory
from .adapters.iap import IapVerifier, SandboxIapVerifier
from .adapters.orm import VipCatalogRow
from .config import Settings
from .domain.membership import PAY_METHODS
from .service_layer.abuse import AbuseGuard, Limits, png_captcha
from .service_layer.catalog import CatalogProvider, catalog_from_row, save_catalog
from .service_layer.memberships import MembershipService
from .service_layer.openapi import OpenApi, build_openapi
from .service_layer.recharge_catalog import RechargeCatalogProvider
from .service_layer.recharges import RechargeService
from .service_layer.settlement import SettlementService
from .service_layer.unit_of_work import UnitOfWork
from .service_layer.user_profiles import UserProfiles


@dataclass
class App:
    settings: Settings
    engine: Engine
    uow_factory: partial
    channels: ChannelRegistry
    sandbox: SandboxChannel
    iap: IapVerifier  # the App Store verifier when configured (adapters/appstore.py), else the sandbox
    memberships: MembershipService
    recharges: RechargeService  # wallet + recharge orders (docs/recharge.md)
    openapi: OpenApi  # merchant direct charge + callbacks (docs/openapi.md)
    settlement: SettlementService  # re-query / close unpaid orders (entrypoints/settlement_worker.py)
    profiles: UserProfiles  # per-store user profiles for 003's `personal` (docs/recharge.md)

    def save_catalog(self, catalog) -> int:
        with self.uow_factory() as uow:
            version = save_catalog(uow, catalog)
            uow.commit()
        return version


def build_app(settings: Settings, engine: Engine | None = None) -> App:
    engine = engine or make_engine(settings.sqlalchemy_url)
    uow_factory = partial(UnitOfWork, make_session_factory(engine))
    sandbox = SandboxChannel(settings.sandbox_secret)
    # Real providers where configured, the sandbox elsewhere (refused in production
    # unless ALLOW_SANDBOX): see adapters/channels/configure.py and docs/channels.md.
    channel_setup = build_channels(settings, sandbox)
    channels = channel_setup.registry()
    assert set(PAY_METHODS) <= set(channel_setup.routes)
    iap = build_iap_verifier(settings, SandboxIapVerifier(settings.sandbox_secret))
    order_ttl = timedelta(minutes=settings.order_close_minutes)

    catalog = CatalogProvider(uow_factory, settings.catalog_refresh_seconds, VipCatalogRow, catalog_from_row)
    memberships = MembershipService(uow_factory, catalog, channels, iap, settings.public_base_url,
                                    order_ttl=order_ttl)
    limits = Limits(settings.recharge_order_limit_per_user, settings.recharge_order_limit_per_ip,
                    settings.recharge_rate_window_seconds, settings.recharge_captcha_ttl_seconds)
    recharges = RechargeService(uow_factory, RechargeCatalogProvider(uow_factory, settings.catalog_refresh_seconds),
                                channels, memberships, AbuseGuard(uow_factory, limits, png_captcha),
                                settings.public_base_url, order_ttl=order_ttl)
    openapi = build_openapi(uow_factory, memberships)
    settlement = SettlementService(
        uow_factory, channels, [memberships.order_book(), recharges.order_book()], close_after=order_ttl,
        requery_after=timedelta(seconds=settings.settle_requery_after_seconds),
        requery_every=timedelta(seconds=max(settings.settle_interval_seconds, 1)),
        batch_size=settings.settle_batch_size,
    )
    return App(settings, engine, uow_factory, channels, sandbox, iap, memberships, recharges, openapi, settlement,
               UserProfiles(uow_factory))
