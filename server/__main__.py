"""Command line: `python -m server <command>`.

  keys                     generate dev secrets into var/dev.env (once)
  migrate                  apply database migrations
  seed                     load the demo catalog (api-docs/001 prices) if empty
  serve                    gRPC server only
  run [--replicas N]       gRPC server(s) + Envoy gateway (Ctrl-C stops all; docs/edge.md)
  token --user-id N        print a bearer token (--role service|admin: a 10-minute service
                           credential signed with SERVICE_JWT_SECRET)
  sandbox-pay NUMBER       pay any sandbox order (VIP or recharge) through Envoy
  refund ORDER_NUMBER      refund a paid order (--amount YUAN, --reason TEXT; server/payments/cli.py)
  sandbox-receipt ORDER_ID print a sandbox App Store receipt for an Iap order
  catalog show|set-price   inspect or edit the VIP catalog (server/membership/cli.py)
  merchant ...             merchant OpenAPI registry and callbacks (server/merchant/cli.py)
  ledger-check, recharge-catalog, user-profile   see server/recharge/cli.py
  operator create NAME --role R   a console operator account (server/operators/cli.py)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys

from server.membership import cli as membership_cli
from server.merchant import cli as merchant_cli
from server.operators import cli as operators_cli
from server.payments import cli as payments_cli
from server.payments.sandbox_tools import GATEWAY_FILE
from server.platform.settings import VAR, get_settings
from server.recharge import cli as recharge_cli

# Each area contributes its sub-commands (add_commands), demo data (seed) and the
# lookup `sandbox-pay` uses (sandbox_order).
AREA_CLIS = (membership_cli, recharge_cli, merchant_cli, payments_cli, operators_cli)


def cmd_keys(_args) -> None:
    VAR.mkdir(exist_ok=True)
    env = VAR / "dev.env"
    existing = env.read_text() if env.exists() else ""
    lines = []
    for name in ("JWT_SECRET", "SERVICE_JWT_SECRET", "SANDBOX_SECRET"):
        if f"{name}=" not in existing:
            lines.append(f"{name}={secrets.token_urlsafe(32)}")
    if lines:
        with env.open("a") as f:
            f.write("\n".join(lines) + "\n")
        env.chmod(0o600)
    from server.merchant.cli import ensure_platform_key

    ensure_platform_key()
    print(f"dev secrets in {env}")


def cmd_seed(args) -> None:
    for area in AREA_CLIS:
        if hasattr(area, "seed"):
            area.seed(args.app())


def cmd_migrate(_args) -> None:
    from server.platform.migrate import upgrade

    upgrade(get_settings().sqlalchemy_url)
    print("database migrated")


def cmd_serve(_args) -> None:
    from server.app import build_app, serve_forever

    asyncio.run(serve_forever(build_app(get_settings())))  # announces the channels


def cmd_run(args) -> None:
    s = get_settings()
    if args.replicas > 1:
        _run_replicas(s, args.replicas)
        return
    from server.app import build_app, serve_forever
    from server.platform.envoy import Envoy, edge_config

    envoy = Envoy(s.http_port, s.envoy_admin_port, s.grpc_port, VAR, log_path=VAR / "envoy.log",
                  edge=edge_config(s), console=_console(s), max_requests=s.gateway_max_requests)
    envoy.start()
    (VAR / GATEWAY_FILE).write_text(s.public_base_url + "\n")  # for sandbox-pay & co.
    envoy.supervise()  # an Envoy that dies is started again (with backoff)
    print(f"gateway http://127.0.0.1:{s.http_port}  admin http://127.0.0.1:{s.envoy_admin_port}  "
          f"gRPC (internal) {s.grpc_host}:{s.grpc_port}  (Envoy log: var/envoy.log)", flush=True)
    _announce_console(s)
    try:
        asyncio.run(serve_forever(build_app(s)))
    finally:
        (VAR / GATEWAY_FILE).unlink(missing_ok=True)
        envoy.stop()


def _run_replicas(s, count: int) -> None:
    """N gRPC processes; Envoy serves the public door and the internal gRPC door."""
    import signal
    import threading

    from server.platform.envoy import Envoy, edge_config
    from server.platform.replicas import Replicas

    replicas = Replicas(count)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    replicas.start()
    envoy = Envoy(s.http_port, s.envoy_admin_port, replicas.ports, VAR, log_path=VAR / "envoy.log",
                  internal=(s.grpc_host, s.grpc_port), edge=edge_config(s), console=_console(s),
                  max_requests=s.gateway_max_requests)
    try:
        envoy.start()
        envoy.wait_healthy(count)  # announce the doors once every replica serves
        (VAR / GATEWAY_FILE).write_text(s.public_base_url + "\n")  # for sandbox-pay & co.
        print(f"gateway http://127.0.0.1:{s.http_port}  admin http://127.0.0.1:{s.envoy_admin_port}  "
              f"gRPC (internal, {count} replicas) {s.grpc_host}:{s.grpc_port}  (Envoy log: var/envoy.log)",
              flush=True)
        _announce_console(s)
        replicas.supervise(stop, also=envoy.keep_running)  # Envoy too is started again if it dies
    finally:
        (VAR / GATEWAY_FILE).unlink(missing_ok=True)
        # Replicas first (each drains: NOT_SERVING, serves on while Envoy moves away, finishes
        # its calls), Envoy last, so no call in flight is cut.
        replicas.stop(grace=s.drain_seconds + s.stop_grace_seconds + 5)
        envoy.stop()


CONSOLE_DIST = VAR.parent / "console" / "dist"


def _console(s):
    """The operator console's listener (docs/console.md), when it has been built (`make console`)."""
    return (s.console_host, s.console_port, CONSOLE_DIST) if (CONSOLE_DIST / "index.html").exists() else None


def _announce_console(s) -> None:
    if _console(s) is None:
        print("console: not built (`make console`), not served", flush=True)
    else:
        print(f"console http://{s.console_host}:{s.console_port}  (operators: `python -m server operator create "
              f"NAME --role admin`, docs/console.md)", flush=True)


def cmd_token(args) -> None:
    from server.platform.auth import issue_service_token, issue_token, token_keys

    s = get_settings()
    if args.role == "user":
        print(issue_token(s.jwt_secret, s.jwt_issuer, s.jwt_audience, args.user_id))
        return
    _, service = token_keys(s)
    if service is None:
        sys.exit("SERVICE_JWT_SECRET is not set (run `python -m server keys`)")
    print(issue_service_token(service, args.user_id, args.role, args.ttl))


def cmd_sandbox_pay(args) -> None:
    """Pays any sandbox order by its number (VIP trade_no, recharge RC…) through Envoy."""
    from server.payments.sandbox_tools import running_gateway, send_sandbox_notification

    app = args.app()
    for area in AREA_CLIS:
        found = area.sandbox_order(app, args.number) if hasattr(area, "sandbox_order") else None
        if found is not None:
            break
    else:
        sys.exit(f"no VIP or recharge order {args.number}")
    path, channel, amount = found
    if channel != "sandbox":
        sys.exit(f"order {args.number} is paid through {channel}, not the sandbox")
    # The gateway: --gateway; else PUBLIC_BASE_URL / HTTP_PORT when set in the environment; else
    # the one a running `server run` recorded (whichever ports it was started with); else settings.
    explicit = any(name in os.environ for name in ("PUBLIC_BASE_URL", "HTTP_PORT"))
    gateway = args.gateway or (None if explicit else running_gateway(VAR))
    if args.no_notify:  # the buyer paid, the notification is lost: a re-query finds it
        app.sandbox.pay(args.number, amount)
        print(f"{args.number} paid at the sandbox; no notification sent")
        return
    if not send_sandbox_notification(app, path, args.number, amount, args.status, gateway):
        sys.exit(f"the notification for {args.number} was not accepted")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("keys").set_defaults(fn=cmd_keys)
    sub.add_parser("migrate").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed").set_defaults(fn=cmd_seed)
    sub.add_parser("serve").set_defaults(fn=cmd_serve)
    p = sub.add_parser("run")
    p.add_argument("--replicas", type=int, default=1,
                   help="gRPC server processes behind Envoy (docs/edge.md); internal gRPC via Envoy on GRPC_PORT")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("token")
    p.add_argument("--user-id", type=int, required=True)
    p.add_argument("--role", default="user", choices=["user", "service", "admin", "finance", "support"])
    p.add_argument("--ttl", type=int, default=600, help="service/admin credentials: seconds, at most 600")
    p.set_defaults(fn=cmd_token)
    p = sub.add_parser("sandbox-pay", help="pay a sandbox order (VIP trade_no or recharge RC…) through Envoy")
    p.add_argument("number")
    p.add_argument("--status", default="PAID", choices=["PAID", "CLOSED"])
    p.add_argument("--gateway", help="gateway URL (default: the running `server run`'s, else PUBLIC_BASE_URL)")
    p.add_argument("--no-notify", action="store_true", help="pay at the sandbox without notifying (a lost notification)")
    p.set_defaults(fn=cmd_sandbox_pay)
    for area in AREA_CLIS:
        area.add_commands(sub)
    parser.set_defaults(app=_app_factory())
    args = parser.parse_args(argv)
    args.fn(args)


def _app_factory():
    """Commands that need the composed application call `args.app()`: built once, on demand,
    so commands that need none (keys, token, migrate) stay fast and areas never import server.app."""
    built = []

    def app(talks_to_providers: bool = False):
        # Provider set-up warnings ("… is not configured") only for commands that use a provider.
        if not built:
            from server.app import build_app

            built.append(build_app(get_settings(), announce_channels=talks_to_providers))
        return built[0]

    return app


if __name__ == "__main__":
    main()
