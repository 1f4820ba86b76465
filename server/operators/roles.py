"""Who may do what (pure). Operators log in as `support`, `finance` or `admin`; their
credential carries that role, and every admin RPC asks `require_permission` on the
server, so hiding a button in the console is never the only guard."""

from __future__ import annotations

from enum import StrEnum

from server.platform.auth import Principal
from server.platform.errors import permission_denied, unauthenticated


class Role(StrEnum):
    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"          # every console page, every list and detail RPC
    REFUND = "refund"      # refunds, re-query, close unpaid orders
    WALLET = "wallet"      # wallet adjustments
    CATALOG = "catalog"    # VIP catalog, recharge plans
    MERCHANTS = "merchants"  # merchants, keys, products, top-ups, callback resends


GRANTS: dict[str, frozenset[Permission]] = {
    Role.SUPPORT: frozenset({Permission.READ}),
    Role.FINANCE: frozenset({Permission.READ, Permission.REFUND, Permission.WALLET}),
    Role.ADMIN: frozenset(Permission),
}

# The internal services' own credential (role `service`) keeps what it had before the
# console: reads and wallet moves (WalletService, GetMembershipStatus).
SERVICE = "service"
SERVICE_GRANTS = frozenset({Permission.READ, Permission.WALLET})


def allowed(role: str, permission: Permission) -> bool:
    if role == SERVICE:
        return permission in SERVICE_GRANTS
    return permission in GRANTS.get(role, frozenset())


def require_permission(principal: Principal | None, permission: Permission, *, service: bool = False) -> Principal:
    """The caller's principal when its role grants `permission`; `service=True` also
    admits internal services' credentials for this RPC."""
    if principal is None:
        raise unauthenticated()
    if principal.role == SERVICE and not service:
        raise permission_denied(f"Requires permission {permission}.")
    if not allowed(principal.role, permission):
        raise permission_denied(f"Requires permission {permission}.")
    return principal
