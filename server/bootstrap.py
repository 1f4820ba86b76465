"""Wires the application once: settings -> engine -> adapters -> services."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from .adapters.channels.base import ChannelRegistry
from .adapters.channels.sandbox import SandboxChannel
from .adapters.db import make_engine, make_session_factory
from .adapters.iap import SandboxIapVerifier
from .config import Settings
from .domain.membership import PAY_METHODS
from .service_layer.catalog import CatalogProvider, save_catalog
from .service_layer.memberships import MembershipService
from .service_layer.unit_of_work import UnitOfWork


@dataclass
class App:
    settings: Settings
    engine: Engine
    uow_factory: partial
    channels: ChannelRegistry
    memberships: MembershipService
    sandbox: SandboxChannel
    iap: SandboxIapVerifier

    def save_catalog(self, catalog) -> int:
        with self.uow_factory() as uow:
            version = save_catalog(uow, catalog)
            uow.commit()
        return version


def build_app(settings: Settings, engine: Engine | None = None) -> App:
    engine = engine or make_engine(settings.sqlalchemy_url)
    uow_factory = partial(UnitOfWork, make_session_factory(engine))
    sandbox = SandboxChannel(settings.sandbox_secret)
    # Until the real providers are configured every pay method is paid through the sandbox.
    channels = ChannelRegistry([sandbox], {method: sandbox.name for method in PAY_METHODS})
    iap = SandboxIapVerifier(settings.sandbox_secret)
    catalog = CatalogProvider(uow_factory, settings.catalog_refresh_seconds)
    memberships = MembershipService(uow_factory, catalog, channels, iap, settings.public_base_url)
    return App(settings, engine, uow_factory, channels, memberships, sandbox, iap)
