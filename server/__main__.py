"""Command line: `python -m server <command>`.

  keys                     generate dev secrets into var/dev.env (once)
  migrate                  apply database migrations
  seed                     load the demo catalog (api-docs/001 prices) if empty
  serve                    gRPC server only
  run                      gRPC server + Envoy gateway (Ctrl-C stops both)
  token --user-id N        print a bearer token (--role service|admin)
  sandbox-pay TRADE_NO     send a signed sandbox payment notification through Envoy
  sandbox-receipt ORDER_ID print a sandbox App Store receipt for an Iap order
  catalog show|set-price   inspect or edit the VIP catalog
  merchant ...             merchant OpenAPI registry and callbacks (server/merchant_cli.py)
  ledger-check, recharge-catalog, recharge-sandbox-pay, user-profile   see server/recharge_cli.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys

from .config import VAR, get_settings


def cmd_keys(_args) -> None:
    VAR.mkdir(exist_ok=True)
    env = VAR / "dev.env"
    existing = env.read_text() if env.exists() else ""
    lines = []
    for name in ("JWT_SECRET", "SANDBOX_SECRET"):
        if f"{name}=" not in existing:
            lines.append(f"{name}={secrets.token_urlsafe(32)}")
    if lines:
        with env.open("a") as f:
            f.write("\n".join(lines) + "\n")
        env.chmod(0o600)
    from .merchant_cli import ensure_platform_key

    ensure_platform_key()
    print(f"dev secrets in {env}")


def cmd_migrate(_args) -> None:
    from .migrate import upgrade

    upgrade(get_settings().sqlalchemy_url)
    print("database migrated")


def cmd_seed(_args) -> None:
    from sqlalchemy import select

    from .adapters.orm import VipCatalogRow
    from .bootstrap import build_app
    from .service_layer.catalog import demo_catalog

    app = build_app(get_settings())
    with app.uow_factory() as uow:
        present = uow.session.scalar(select(VipCatalogRow.id))
    if present is None:
        app.save_catalog(demo_catalog())
        print("seeded the demo VIP catalog")
    else:
        print("catalog present; left as is")
    from . import recharge_cli

    recharge_cli.seed(app)


def cmd_serve(_args) -> None:
    from .bootstrap import build_app
    from .entrypoints.grpc_server import serve_forever

    asyncio.run(serve_forever(build_app(get_settings())))


def cmd_run(_args) -> None:
    from .bootstrap import build_app
    from .entrypoints.envoy import Envoy
    from .entrypoints.grpc_server import serve_forever

    s = get_settings()
    envoy = Envoy(s.http_port, s.envoy_admin_port, s.grpc_port, VAR, log_path=VAR / "envoy.log")
    envoy.start()
    print(f"gateway http://127.0.0.1:{s.http_port}  admin http://127.0.0.1:{s.envoy_admin_port}  "
          f"gRPC 127.0.0.1:{s.grpc_port}  (Envoy log: var/envoy.log)", flush=True)
    try:
        asyncio.run(serve_forever(build_app(s)))
    finally:
        envoy.stop()


def cmd_token(args) -> None:
    from .entrypoints.auth import issue_token

    s = get_settings()
    print(issue_token(s.jwt_secret, s.jwt_issuer, s.jwt_audience, args.user_id, args.role))


def cmd_sandbox_pay(args) -> None:
    from sqlalchemy import select

    from .adapters.orm import VipOrderRow
    from .bootstrap import build_app
    from .sandbox_tools import send_sandbox_notification

    app = build_app(get_settings())
    with app.uow_factory() as uow:
        order = uow.session.scalar(select(VipOrderRow).where(VipOrderRow.trade_no == args.trade_no))
    if order is None:
        sys.exit(f"no order {args.trade_no}")
    send_sandbox_notification(app, f"/api/v2/vip/orders/{order.id}/sandbox-callback", order.trade_no,
                              order.pay_amount, args.status)


def cmd_sandbox_receipt(args) -> None:
    from .adapters.orm import VipOrderRow
    from .bootstrap import build_app

    app = build_app(get_settings())
    with app.uow_factory() as uow:
        order = uow.session.get(VipOrderRow, args.order_id)
    if order is None or not order.vip_info.get("iap"):
        sys.exit("no Iap order with that id")
    print(app.iap.issue(args.transaction_id or secrets.token_hex(8), order.vip_info["iap"], str(order.user_id)))


def cmd_catalog(args) -> None:
    from dataclasses import replace

    from .bootstrap import build_app
    from .domain.money import parse_yuan
    from .service_layer.catalog import catalog_to_json

    app = build_app(get_settings())
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


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("keys").set_defaults(fn=cmd_keys)
    sub.add_parser("migrate").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed").set_defaults(fn=cmd_seed)
    sub.add_parser("serve").set_defaults(fn=cmd_serve)
    sub.add_parser("run").set_defaults(fn=cmd_run)
    p = sub.add_parser("token")
    p.add_argument("--user-id", type=int, required=True)
    p.add_argument("--role", default="user", choices=["user", "service", "admin"])
    p.set_defaults(fn=cmd_token)
    p = sub.add_parser("sandbox-pay")
    p.add_argument("trade_no")
    p.add_argument("--status", default="PAID", choices=["PAID", "CLOSED"])
    p.set_defaults(fn=cmd_sandbox_pay)
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
    from . import recharge_cli

    recharge_cli.add_commands(sub)
    from . import merchant_cli

    merchant_cli.add_commands(sub)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
