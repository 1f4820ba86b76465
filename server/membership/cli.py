"""Membership operator commands: the VIP catalog and sandbox payments for VIP orders."""

from __future__ import annotations

import json
import secrets
import sys


def seed(app) -> None:
    """Loads the demo VIP catalog (api-docs/001 prices) when there is none (part of `seed`)."""
    from server.membership.catalog import catalog_present, demo_catalog

    with app.uow_factory() as uow:
        present = catalog_present(uow)
    if not present:
        app.save_catalog(demo_catalog())
        print("seeded the demo VIP catalog")
    else:
        print("catalog present; left as is")


def sandbox_order(app, number: str) -> tuple[str, str, int] | None:
    """For `sandbox-pay` (server/__main__.py): (notify path, channel, amount) of the VIP order."""
    order = app.memberships.orders.by_trade_no(number)
    if order is None:
        return None
    return f"/api/v2/vip/orders/{order.id}/sandbox-callback", order.channel, order.pay_amount


def cmd_sandbox_receipt(args) -> None:
    app = args.app()
    order = app.memberships.orders.by_id(args.order_id)
    if order is None or not order.vip_info.get("iap"):
        sys.exit("no Iap order with that id")
    print(app.iap.issue(args.transaction_id or secrets.token_hex(8), order.vip_info["iap"], str(order.user_id)))


def cmd_catalog(args) -> None:
    from dataclasses import replace

    from server.membership.catalog import catalog_to_json
    from server.platform.money import parse_yuan

    app = args.app()
    catalog = app.memberships.catalog.get()
    if args.action == "show":
        print(json.dumps({"switch": catalog.switch, "exchange": catalog.exchange, "version": catalog.version,
                          "levels_fen": catalog_to_json(catalog)}, ensure_ascii=False, indent=2))
        return
    level = catalog.levels[args.level]
    settings = tuple(
        replace(s, price_fen=parse_yuan(args.price), enable=True) if s.duration == args.duration else s
        for s in level.settings
    )
    levels = dict(catalog.levels, **{args.level: replace(level, settings=settings)})
    version = app.save_catalog(replace(catalog, levels=levels))
    print(f"catalog version {version}")


def add_commands(sub) -> None:
    p = sub.add_parser("sandbox-receipt")
    p.add_argument("order_id", type=int)
    p.add_argument("--transaction-id", default="")
    p.set_defaults(fn=cmd_sandbox_receipt)
    p = sub.add_parser("catalog")
    p.add_argument("action", choices=["show", "set-price"])
    p.add_argument("--level", choices=["low", "middle", "high"])
    p.add_argument("--duration", type=int)
    p.add_argument("--price", help="yuan, e.g. 49.9")
    p.set_defaults(fn=cmd_catalog)
