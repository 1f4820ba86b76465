"""`python -m server merchant ...`: the operator's tools for the merchant OpenAPI
(docs/openapi.md). Private keys and secrets are printed once and never stored."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from server.merchant.config import OpenApiSettings
from server.merchant.signing import PlatformSigner, generate_rsa_keypair


def ensure_platform_key() -> None:
    """Part of `python -m server keys`: the dev key that signs status callbacks."""
    path = Path(OpenApiSettings().platform_key_file)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    private, _ = generate_rsa_keypair()
    path.write_text(private)
    path.chmod(0o600)
    print(f"OpenAPI callback signing key in {path}")


def _write_key(path: str, pem: str) -> None:
    """The private key to a new file only the operator can read (mode 600; never overwrites)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)


def _report_keys(args, keys, done: str) -> None:
    """--key-out FILE: the RSA private key goes to FILE (mode 600), not to the output.
    --json: one JSON object (merchantId, keyFile or rsaPrivateKey, md5Secret) instead of text."""
    key_out = getattr(args, "key_out", None)
    if key_out and keys.rsa_private_key:
        _write_key(key_out, keys.rsa_private_key)
    if getattr(args, "json", False):
        out = {"merchantId": args.merchant_id}
        if keys.rsa_private_key:
            out.update({"keyFile": key_out} if key_out else {"rsaPrivateKey": keys.rsa_private_key})
        if keys.md5_secret:
            out["md5Secret"] = keys.md5_secret
        print(json.dumps(out))
        return
    print(done)
    if key_out and keys.rsa_private_key:
        print(f"# RSA private key of merchant {args.merchant_id} written to {key_out} (mode 600); it is NOT stored.")
    _print_keys(args.merchant_id, keys, skip_rsa=bool(key_out))


def _print_keys(merchant_id: str, keys, skip_rsa: bool = False) -> None:
    if keys.rsa_private_key and not skip_rsa:
        print(f"# RSA private key of merchant {merchant_id}: give it to the merchant now; it is NOT stored.")
        print(keys.rsa_private_key, end="")
    if keys.md5_secret:
        print(f"# MD5 secret of merchant {merchant_id}: give it to the merchant now.")
        print(keys.md5_secret)


def _create(reg, args, public_key: str | None) -> None:
    keys = reg.create(args.merchant_id, args.name or args.merchant_id, args.business_id or [],
                      callback_url=args.callback_url, rsa=not args.no_rsa, md5=args.md5,
                      rsa_public_key=public_key)
    _report_keys(args, keys, f"merchant {args.merchant_id} created")


def _rotate_keys(reg, args, public_key: str | None) -> None:
    if not (args.rsa or args.md5 or public_key):
        sys.exit("say what to rotate: --rsa, --md5 and/or --public-key-file")
    _report_keys(args, reg.rotate_keys(args.merchant_id, args.rsa, args.md5, public_key),
                 f"keys of merchant {args.merchant_id} rotated (the old ones no longer verify)")


def _top_up(reg, args, public_key: str | None) -> None:
    from server.platform.money import parse_yuan

    balance = reg.top_up(args.merchant_id, parse_yuan(args.amount), args.note)
    print(f"balance of {args.merchant_id}: {balance / 100:.2f} yuan")


def _set_state(reg, args, public_key: str | None) -> None:
    reg.set_state(args.merchant_id, args.action == "enable")
    print(f"merchant {args.merchant_id} {args.action}d")


def _add_business(reg, args, public_key: str | None) -> None:
    reg.add_business(args.merchant_id, args.business_id_value)
    print(f"businessId {args.business_id_value} added to merchant {args.merchant_id}")


def _set_product(reg, args, public_key: str | None) -> None:
    from server.platform.money import parse_yuan

    reg.set_product(args.merchant_id, args.product_code, args.level, args.months, parse_yuan(args.price),
                    enabled=not args.disabled)
    print(f"product {args.product_code} of merchant {args.merchant_id}: {args.months} month(s) "
          f"{args.level} at {parse_yuan(args.price) / 100:.2f} yuan"
          + (" (disabled)" if args.disabled else ""))


def _set_callback_url(reg, args, public_key: str | None) -> None:
    reg.set_callback_url(args.merchant_id, args.url)
    print(f"default callback URL of merchant {args.merchant_id}: {args.url or '(none)'}")


def _link_account(reg, args, public_key: str | None) -> None:
    reg.link_account(args.account, args.user_id, args.mobile)
    print(f"account {args.account} -> user {args.user_id}")


def _list(reg, args, public_key: str | None) -> None:
    print(json.dumps(reg.list(), ensure_ascii=False, indent=2))


def _callbacks(reg, args, public_key: str | None) -> None:
    print(json.dumps(reg.callbacks(args.state, args.limit), ensure_ascii=False, indent=2))


def _resend(reg, args, public_key: str | None) -> None:
    reg.resend(args.callback_id)
    print(f"callback {args.callback_id} queued")


def _platform_key(reg, args, public_key: str | None) -> None:
    print(PlatformSigner.from_file(OpenApiSettings().platform_key_file).public_pem, end="")


ACTIONS = {
    "create": _create, "rotate-keys": _rotate_keys, "top-up": _top_up, "disable": _set_state, "enable": _set_state,
    "add-business": _add_business, "set-product": _set_product, "set-callback-url": _set_callback_url,
    "link-account": _link_account, "list": _list, "callbacks": _callbacks, "resend": _resend,
    "platform-key": _platform_key,
}


def cmd_merchant(args) -> None:
    from server.platform.errors import DomainError

    app = args.app()
    public_key = Path(args.public_key_file).read_text() if getattr(args, "public_key_file", None) else None
    key_out = getattr(args, "key_out", None)
    if key_out and (Path(key_out).exists() or not os.access(Path(key_out).resolve().parent, os.W_OK)):
        # Checked before the key is made: a key that cannot be written would be lost.
        sys.exit(f"--key-out {key_out}: must be a new file in a writable folder")
    try:
        ACTIONS[args.action](app.openapi.registry, args, public_key)
    except DomainError as err:
        sys.exit(err.message)


def _key_options(p) -> None:
    p.add_argument("--key-out", metavar="FILE", help="write the generated RSA private key to FILE (mode 600, new file)")
    p.add_argument("--json", action="store_true", help="print one JSON object (merchantId, keyFile|rsaPrivateKey, md5Secret)")


def add_commands(sub) -> None:
    merchant = sub.add_parser("merchant", help="merchant OpenAPI registry (docs/openapi.md)")
    actions = merchant.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create")
    p.add_argument("merchant_id")
    p.add_argument("--name")
    p.add_argument("--business-id", action="append", help="repeatable; default: the merchantId")
    p.add_argument("--callback-url")
    p.add_argument("--md5", action="store_true", help="also issue an MD5 secret")
    p.add_argument("--no-rsa", action="store_true", help="no RSA key (MD5 only)")
    p.add_argument("--public-key-file", help="the merchant's own RSA public key (PEM) instead of generating one")
    _key_options(p)
    p = actions.add_parser("rotate-keys")
    p.add_argument("merchant_id")
    p.add_argument("--rsa", action="store_true", help="generate a new RSA key pair")
    p.add_argument("--md5", action="store_true", help="generate a new MD5 secret")
    p.add_argument("--public-key-file")
    _key_options(p)
    p = actions.add_parser("top-up")
    p.add_argument("merchant_id")
    p.add_argument("amount", help="yuan, e.g. 1000 or 99.5")
    p.add_argument("--note")
    for name in ("disable", "enable"):
        actions.add_parser(name).add_argument("merchant_id")
    p = actions.add_parser("add-business")
    p.add_argument("merchant_id")
    p.add_argument("business_id_value", metavar="business_id")
    p = actions.add_parser("set-product")
    p.add_argument("merchant_id")
    p.add_argument("product_code")
    p.add_argument("--level", required=True, choices=["low", "middle", "high"])
    p.add_argument("--months", type=int, required=True)
    p.add_argument("--price", required=True, help="settlement price in yuan")
    p.add_argument("--disabled", action="store_true")
    p = actions.add_parser("set-callback-url")
    p.add_argument("merchant_id")
    p.add_argument("url", nargs="?")
    p = actions.add_parser("link-account")
    p.add_argument("account")
    p.add_argument("user_id", type=int)
    p.add_argument("--mobile")
    actions.add_parser("list")
    p = actions.add_parser("callbacks")
    p.add_argument("--state", choices=["pending", "delivered", "undelivered"])
    p.add_argument("--limit", type=int, default=50)
    p = actions.add_parser("resend")
    p.add_argument("callback_id", type=int)
    actions.add_parser("platform-key")
    merchant.set_defaults(fn=cmd_merchant)
