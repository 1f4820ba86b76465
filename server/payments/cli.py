"""Refund commands for `python -m server` (docs/refunds.md).

  refund ORDER_NUMBER [--amount YUAN] --reason TEXT [--refund-no NO]
                         refund a paid VIP, recharge or merchant order: all that is left, or YUAN
  refunds ORDER_NUMBER   list an order's refunds
"""

from __future__ import annotations

import json
import sys


def refund_view(row) -> dict:
    return {"refund_no": row.refund_no, "order_number": row.order_number, "kind": row.book,
            "channel": row.channel, "amount": f"{row.amount_fen / 100:.2f}", "state": row.state,
            "origin": row.origin, "reason": row.reason, "provider_refund_id": row.provider_refund_id,
            "take_back": json.loads(row.take_back), "created_at": row.created_at.isoformat(sep=" ") + " UTC"}


def cmd_refund(args) -> None:
    from server.platform.errors import DomainError
    from server.platform.money import parse_yuan

    try:
        amount = parse_yuan(args.amount) if args.amount is not None else None
    except ValueError as exc:
        sys.exit(f"--amount: {exc}")
    app = args.app(talks_to_providers=True)
    try:
        row = app.refunds.refund(args.order_number, amount_fen=amount, reason=args.reason,
                                 refund_no=args.refund_no or "")
    except DomainError as err:
        details = "; ".join(f"{v.field}: {v.description}" for v in err.violations)
        sys.exit(f"refund refused: {err.reason}: {details or err.message}")
    note = " (outcome not known yet: the settlement loop asks the provider again)" if row.state == "pending" else ""
    print(f"refund {row.refund_no} of order {row.order_number}: {row.amount_fen / 100:.2f} yuan, {row.state}{note}")
    print(json.dumps(refund_view(row), ensure_ascii=False, indent=2))


def cmd_refunds(args) -> None:
    rows = args.app().refunds.by_order_number(args.order_number)
    print(json.dumps([refund_view(r) for r in rows], ensure_ascii=False, indent=2))
    print(f"{len(rows)} refund(s) of order {args.order_number}")


def add_commands(sub) -> None:
    p = sub.add_parser("refund", help="refund a paid order (all that is left, or --amount yuan)")
    p.add_argument("order_number")
    p.add_argument("--amount", help="yuan, e.g. 9.90; default: everything not yet refunded")
    p.add_argument("--reason", required=True)
    p.add_argument("--refund-no", help="our refund number (default R<order number>-<fen>|ALL, so re-running "
                                       "the same command is the same refund)")
    p.set_defaults(fn=cmd_refund)
    p = sub.add_parser("refunds", help="list an order's refunds")
    p.add_argument("order_number")
    p.set_defaults(fn=cmd_refunds)
