"""The merchant OpenAPI area, wired once (server/app.py) and shared by the gRPC
servicer, the callback dispatcher and the operator CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.membership.grants import MembershipGrants
from server.merchant import rules
from server.merchant.addresses import AddressPolicy, system_resolver
from server.merchant.callbacks import CallbackDispatcher, DispatchConfig, platform_signer_loader
from server.merchant.charges import MerchantChargeService
from server.merchant.config import OpenApiSettings
from server.merchant.merchants import MerchantRegistry
from server.merchant.signing import PlatformSigner
from server.platform.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class OpenApi:
    """Fixed once built; a differently configured copy (dataclasses.replace) shares the
    rest, e.g. a dispatcher with another schedule."""

    charges: MerchantChargeService
    registry: MerchantRegistry
    dispatch: DispatchConfig
    signer: Callable[[], PlatformSigner]
    dispatcher_enabled: bool
    uow_factory: Callable[[], UnitOfWork]
    addresses: AddressPolicy  # shared by charge-time and send-time checks

    def dispatcher(self, name: str | None = None) -> CallbackDispatcher:
        extra = {"name": name} if name else {}
        return CallbackDispatcher(self.uow_factory, lambda: self.signer(), self.dispatch,
                                  housekeeping=self.charges.purge_nonces, addresses=self.addresses, **extra)


def build_openapi(uow_factory: Callable[[], UnitOfWork], memberships: MembershipGrants, s: OpenApiSettings,
                  resolver: Callable[[str, int], list[str]] = system_resolver,
                  own_ports: frozenset[int] = frozenset()) -> OpenApi:
    """`s`: read by the composition root (server/app.py), never here; `resolver`: how
    callback host names resolve; `own_ports`: the stack's ports, never a callback target."""
    dispatch = DispatchConfig(backoff=rules.parse_backoff(s.callback_backoff), interval=s.dispatch_interval_seconds,
                              lease=s.callback_lease_seconds, timeout=s.callback_timeout_seconds,
                              concurrency=max(s.callback_concurrency, 1))
    addresses = AddressPolicy(allow_private=s.callback_allow_private_networks, resolver=resolver, own_ports=own_ports)
    return OpenApi(MerchantChargeService(uow_factory, memberships, addresses), MerchantRegistry(uow_factory), dispatch,
                   platform_signer_loader(s.platform_key_file), s.dispatcher_enabled, uow_factory, addresses)
