"""Recharge commands for `python -m server` (kept here so __main__ stays small).

  ledger-check                      every wallet balance == the sum of its entries (exit 1 if not)
  recharge-catalog show             print the recharge catalog document (JSON, fen)
  recharge-catalog load FILE        replace it with FILE (validated; replicas reload)
  user-profile show USER_ID --store-id N         a user's profile in a store (003 `personal`)
  user-profile set USER_ID --store-id N --FIELD VALUE ...   create or change it
"""

from __future__ import annotations

import json
import sys


def seed(app) -> None:
    """Loads the documents' example catalog when there is none (part of `seed`)."""
    from server.recharge.rules import demo_catalog

    if not app.recharges.catalog.present():
        app.recharges.catalog.save(demo_catalog())
        print("seeded the demo recharge catalog")
    else:
        print("recharge catalog present; left as is")


def cmd_ledger_check(args) -> None:
    from server.recharge.ledger import check_ledger

    app = args.app()
    with app.uow_factory() as uow:
        problems = [str(p) for p in check_ledger(uow)] + app.refunds.check(uow)
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print("ledger OK: every wallet balance equals the sum of its entries; refunds never exceed an order's "
          "payment and each take-back is recorded exactly once")


def cmd_recharge_catalog(args) -> None:
    from server.platform.errors import DomainError
    from server.recharge.rules import catalog_from_document, catalog_to_document

    app = args.app()
    if args.action == "show":
        catalog = app.recharges.catalog.get()
        print(json.dumps(dict(catalog_to_document(catalog), version=catalog.version), ensure_ascii=False, indent=2))
        return
    if not args.file:
        sys.exit("load needs FILE")
    with open(args.file, encoding="utf-8") as f:
        document = json.load(f)
    document.pop("version", None)
    try:
        catalog = catalog_from_document(document)
    except DomainError as err:
        sys.exit("\n".join(f"{v.field}: {v.description}" for v in err.violations) or err.message)
    print(f"recharge catalog version {app.recharges.catalog.save(catalog)}")


def sandbox_order(app, number: str) -> tuple[str, str, int] | None:
    """For `sandbox-pay` (server/__main__.py): (notify path, channel, amount) of the recharge order."""
    order = app.recharges.order_by_number(number)
    if order is None:
        return None
    return f"/api/recharge/orders/{order.id}/sandbox-callback", order.channel, order.amount


def cmd_user_profile(args) -> None:
    from server.platform.errors import DomainError
    from server.recharge.profiles import DEFAULTS

    app = args.app()
    if args.action == "set":
        changes = {name: getattr(args, name) for name in DEFAULTS if getattr(args, name) is not None}
        try:
            app.profiles.save(args.user_id, args.store_id, **changes)
        except DomainError as err:
            sys.exit("\n".join(f"{v.field}: {v.description}" for v in err.violations) or err.message)
    row = app.profiles.get(args.user_id, args.store_id)
    if row is None:
        sys.exit(f"no profile for user {args.user_id} in store {args.store_id}")
    shown = {"user_id": row.user_id, "store_id": row.store_id}
    shown.update({name: getattr(row, name) for name in DEFAULTS})
    print(json.dumps(shown, ensure_ascii=False, indent=2))


def add_commands(sub) -> None:
    sub.add_parser("ledger-check").set_defaults(fn=cmd_ledger_check)
    p = sub.add_parser("recharge-catalog")
    p.add_argument("action", choices=["show", "load"])
    p.add_argument("file", nargs="?")
    p.set_defaults(fn=cmd_recharge_catalog)
    p = sub.add_parser("user-profile")
    p.add_argument("action", choices=["show", "set"])
    p.add_argument("user_id", type=int)
    p.add_argument("--store-id", type=int, required=True)
    from server.recharge.profiles import DEFAULTS

    for name, default in DEFAULTS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default))
    p.set_defaults(fn=cmd_user_profile)
