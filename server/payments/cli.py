"""Refund commands for `python -m server` (docs/refunds.md).

  refund ORDER_NUMBER [--amount YUAN] --reason TEXT [--refund-no NO]
                         refund a paid VIP, recharge or merchant order: all that is left, or YUAN
  refunds ORDER_NUMBER   list an order's refunds
  reconcile --date D [--channel alipay|wechatpay] [--dry-run]
                         reconcile a business date against the providers' statements
                         (docs/reconciliation.md)
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
    from server.payments.channels import RefundState
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
    note = " (outcome not known yet: the settlement loop asks the provider again)" if row.state == RefundState.PENDING else ""
    print(f"refund {row.refund_no} of order {row.order_number}: {row.amount_fen / 100:.2f} yuan, {row.state}{note}")
    print(json.dumps(refund_view(row), ensure_ascii=False, indent=2))


def cmd_refunds(args) -> None:
    rows = args.app().refunds.by_order_number(args.order_number)
    print(json.dumps([refund_view(r) for r in rows], ensure_ascii=False, indent=2))
    print(f"{len(rows)} refund(s) of order {args.order_number}")


def render_report(report) -> str:
    """The reconciliation report as the operator reads it."""
    from server.payments.reconciliation import CLASSES, MATCHED

    lines = [f"reconciliation {report.business_date} {report.channel}: {report.status}"
             + (f" ({report.error})" if report.error else "")]
    if report.status in ("failed", "busy"):
        return "\n".join(lines)
    counts = report.counts()
    lines.append("  " + "  ".join(f"{c}={counts[c]}" for c in CLASSES))
    s = report.summary
    if s:
        yuan = lambda fen: f"{fen / 100:.2f}"  # noqa: E731
        lines.append(f"  statement lines {s['lines']}: paid {yuan(s['paid_fen'])}, refunded {yuan(s['refunded_fen'])}, "
                     f"fees {yuan(s['fees_fen'])}, net {yuan(s['net_fen'])} yuan")
    header = f"  {'class':<21} {'kind':<8} {'order':<28} {'refund':<26} {'provider':>9} {'ours':>9} {'fee':>6}  action       detail"
    rows = [i for i in report.items if i.category != MATCHED] + [i for i in report.items if i.category == MATCHED]
    if rows:
        lines.append(header)
    for i in rows:
        amount = lambda fen: "-" if fen is None else f"{fen / 100:.2f}"  # noqa: E731
        lines.append(f"  {i.category:<21} {i.kind:<8} {i.order_number:<28} {i.refund_no or '-':<26} "
                     f"{amount(i.provider_amount_fen):>9} {amount(i.local_amount_fen):>9} {i.fee_fen / 100:>6.2f}  "
                     f"{i.action:<12} {i.detail}")
    return "\n".join(lines)


def cmd_reconcile(args) -> None:
    from server.payments.reconciliation import STATEMENT_CHANNELS, NoStatements, check_date

    try:
        check_date(args.date)
    except ValueError as exc:
        sys.exit(f"--date: {exc}")
    app = args.app(talks_to_providers=True)
    wanted = [args.channel] if args.channel else list(STATEMENT_CHANNELS)
    failed = ran = 0
    for cli_name in wanted:
        name = STATEMENT_CHANNELS[cli_name]
        try:
            report = app.reconciliation.run(args.date, name, dry_run=args.dry_run)
        except NoStatements:
            print(f"{cli_name}: served by the SANDBOX channel (not configured): sandbox channels have no "
                  f"statements, nothing to reconcile")
            continue
        ran += 1
        failed += report.status in ("failed", "busy")
        print(render_report(report) + ("\n  (dry run: nothing applied, nothing stored)" if args.dry_run else ""))
    if not ran:
        print("no channel with statements is configured (docs/channels.md): nothing reconciled")
    if failed:
        sys.exit(1)


def add_commands(sub) -> None:
    p = sub.add_parser("reconcile", help="reconcile a business date against the Alipay / WeChat Pay statements")
    p.add_argument("--date", required=True, help="business date YYYY-MM-DD (Asia/Shanghai)")
    p.add_argument("--channel", choices=["alipay", "wechatpay"], help="one channel (default: every configured one)")
    p.add_argument("--dry-run", action="store_true", help="report only: apply nothing, store nothing")
    p.set_defaults(fn=cmd_reconcile)
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
