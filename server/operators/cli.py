"""`python -m server operator create NAME --role admin|finance|support [--totp]`: the
password is read from stdin (one line) or asked for on a terminal; with --totp the
account's TOTP secret is printed once (add it to an authenticator app)."""

from __future__ import annotations

import getpass
import sys

from server.operators.passwords import totp_uri
from server.operators.roles import Role
from server.platform.errors import DomainError


def add_commands(sub) -> None:
    op = sub.add_parser("operator", help="console operator accounts (docs/console.md)")
    op_sub = op.add_subparsers(dest="operator_command", required=True)
    create = op_sub.add_parser("create", help="create an operator account")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--totp", action="store_true", help="require a TOTP code at login (prints the secret once)")
    create.set_defaults(fn=cmd_create)


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            sys.exit("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_create(args) -> None:
    app = args.app()
    try:
        row = app.operators.create(args.name, args.role, _password(), totp=args.totp)
    except DomainError as exc:
        details = "; ".join(f"{v.field}: {v.description}" for v in exc.violations) or exc.message
        sys.exit(f"refused: {details}")
    print(f"operator {row.name} (id {row.id}, role {row.role}) created")
    if row.totp_secret:
        print(f"TOTP (shown once): {totp_uri(row.totp_secret, row.name)}")
