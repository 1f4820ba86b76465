"""Daily reconciliation (docs/reconciliation.md) against the local Alipay and WeChat Pay
stand-ins, which serve statements in the real formats (Alipay: a zip of GBK CSV files
with comment and summary lines; WeChat Pay: back-quoted CSV, gzip, SHA1 hash, a fund-flow
bill) built from the orders each test made plus planted discrepancies of every class.
The root conftest runs ledger-check's proofs after each test."""

from __future__ import annotations

import argparse
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from server.membership.tables import MembershipGrantRow, VipOrderRow
from server.payments import cli as payments_cli
from server.payments.notes import notes_of
from server.payments.reconcile_tables import ReconciliationItemRow, ReconciliationRunRow
from server.payments.reconciliation import RUNS, NoStatements, ReconciliationService
from server.payments.refund_tables import RefundRow
from server.payments.statements import StatementError, parse_alipay_zip, parse_wechat_fundflow, parse_wechat_tradebill
from server.payments.url_policy import allowed
from server.recharge.rules import demo_catalog
from server.recharge.tables import RechargeOrderRow, WalletEntryRow

from .providers import BillLine, alipay_bill_zip, wechat_fund_bill, wechat_trade_bill
from .test_alipay import create, notify
from .test_refunds_providers import alipay_paid_vip, post_refund_notification, wechat_recharge

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture(autouse=True)
def _recharge_catalog(request):
    if "real_app" in request.fixturenames:
        real_app = request.getfixturevalue("real_app")
        real_app.recharges.catalog.save(demo_catalog())
        real_app.recharges.catalog.invalidate()


def today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def snapshot(app) -> dict:
    """Everything reconciliation could change."""
    with app.uow_factory() as uow:
        s = uow.session
        return {
            "vip": sorted(s.execute(select(VipOrderRow.trade_no, VipOrderRow.pay_status)).all()),
            "recharge": sorted(s.execute(select(RechargeOrderRow.order_number, RechargeOrderRow.state)).all()),
            "grants": s.scalar(select(func.count()).select_from(MembershipGrantRow)),
            "wallet": s.scalar(select(func.count()).select_from(WalletEntryRow)),
            "refunds": sorted(s.execute(select(RefundRow.refund_no, RefundRow.state)).all()),
            "runs": s.scalar(select(func.count()).select_from(ReconciliationRunRow)),
            "items": s.scalar(select(func.count()).select_from(ReconciliationItemRow)),
        }


def classes(report) -> dict:
    return {(i.category, i.kind, i.order_number, i.refund_no): i.action for i in report.items}


def grants_for(app, source_ref: str) -> int:
    with app.uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(MembershipGrantRow).where(
            MembershipGrantRow.source == "vip_order", MembershipGrantRow.source_ref == source_ref))


def alipay_recharge(real_gateway, token, user=5) -> str:
    with real_gateway.client(token(user)) as c:
        return c.post("/charge/pay", json={"id": 2, "payType": "ALIPAYCASH"}).json()["d"]["payOrderId"]  # 30.00


# ------------------------------------------------------- parsing, exactly ----


def test_alipay_zip_gbk_with_comment_and_summary_lines_parses_to_fen():
    lines = [BillLine("payment", "2026120410000000000001", 5400, fee_fen=32),
             BillLine("refund", "2026120410000000000001", 1801, refund_no="R1-1801", fee_fen=11)]
    data = alipay_bill_zip("2088000000000001", "2026-12-04", lines)
    statement = parse_alipay_zip(data, "2026-12-04")
    got = [(x.kind, x.trade_no, x.amount_fen, x.refund_no, x.fee_fen, x.provider_txn_id) for x in statement.lines]
    assert got == [("payment", "2026120410000000000001", 5400, "", 32, lines[0].txn_id),
                   ("refund", "2026120410000000000001", 1801, "R1-1801", -11, lines[1].txn_id)]


def test_wechat_bills_with_back_quotes_quoted_commas_and_summary_parse_to_fen():
    class Fake:
        appids, mchid = {"wx1"}, "1900000001"

    lines = [BillLine("payment", "RC1", 10000, fee_fen=60), BillLine("refund", "RC1", 2000, refund_no="RF1", fee_fen=12),
             BillLine("refund", "RC1", 10, refund_no="RF2", refund_status="PROCESSING")]
    statement = parse_wechat_tradebill(wechat_trade_bill(Fake(), "2026-12-04", lines), "2026-12-04")
    got = [(x.kind, x.trade_no, x.amount_fen, x.refund_no, x.provider_refund_id, x.state, x.fee_fen)
           for x in statement.lines]
    assert got == [("payment", "RC1", 10000, "", "", "SUCCESS", 60),
                   ("refund", "RC1", 2000, "RF1", lines[1].refund_id, "SUCCESS", -12),
                   ("refund", "RC1", 10, "RF2", lines[2].refund_id, "PROCESSING", 0)]
    assert statement.totals == {"lines": 3, "fees_fen": 48, "settled_fen": 10000, "refunded_fen": 2010}
    assert parse_wechat_fundflow(wechat_fund_bill("2026-12-04", lines)) == {
        "fund_lines": 4, "fund_income_fen": 10000, "fund_expense_fen": 60 + 2000 + 10}


@pytest.mark.parametrize("damage", [
    lambda t: t.replace("`54.00,`0.00,`", "`54.001,`0.00,`", 1),  # three decimals
    lambda t: t.replace("`o_test,", "`o_test,`extra,", 1),  # a column too many
    lambda t: t.replace("交易时间,", "交易日期,", 1),  # unknown header
    lambda t: t.replace("\r\n`2,", "\r\n`3,", 1),  # summary count differs
    lambda t: t.replace("`SUCCESS,`OTHERS", "`WHATEVER,`OTHERS", 1),  # unknown state
])
def test_a_damaged_wechat_trade_bill_is_refused_whole(damage):
    class Fake:
        appids, mchid = {"wx1"}, "1900000001"

    text = wechat_trade_bill(Fake(), "2026-12-04", [BillLine("payment", "A", 5400), BillLine("payment", "B", 100)])
    parse_wechat_tradebill(text, "2026-12-04")  # the undamaged bill parses
    with pytest.raises(StatementError):
        parse_wechat_tradebill(damage(text.decode()).encode(), "2026-12-04")


def test_a_damaged_alipay_bill_is_refused():
    good = alipay_bill_zip("2088000000000001", "2026-12-04", [BillLine("payment", "A", 5400)])
    parse_alipay_zip(good, "2026-12-04")
    with pytest.raises(StatementError):
        parse_alipay_zip(good[:-30], "2026-12-04")  # truncated zip
    with pytest.raises(StatementError):
        parse_alipay_zip(b"PK\x03\x04 not a zip", "2026-12-04")


def test_download_address_policy():
    hosts = ("dwbillcenter.alipay.com", "127.0.0.1:18800")
    assert allowed("https://dwbillcenter.alipay.com/downloadBillFile.resource?x=1", hosts)
    assert allowed("http://127.0.0.1:18800/downloadBillFile.resource", hosts)
    for url in ("http://127.0.0.1:18801/x", "http://169.254.169.254/latest", "file:///etc/passwd",
                "https://dwbillcenter.alipay.com@evil.example/x", "https://evil.example/dwbillcenter.alipay.com",
                "https://dwbillcenter.alipay.com.evil.example/x", "http://[::1]:18800/x", "gopher://x"):
        assert not allowed(url, hosts), url


# ------------------------------------------------- a planted-discrepancy day ----


def plant_alipay_day(real_gateway, token, providers, real_app) -> dict:
    """Orders of every family and a statement with every class in it."""
    o = {
        "matched": alipay_paid_vip(real_gateway, token, providers, user=1)["trade_no"],
        "console": alipay_paid_vip(real_gateway, token, providers, user=3)["trade_no"],
        "local": alipay_paid_vip(real_gateway, token, providers, user=4)["trade_no"],
        "wrong": alipay_paid_vip(real_gateway, token, providers, user=6)["trade_no"],
        "recharge": alipay_recharge(real_gateway, token, user=5),  # notification lost
    }
    with real_gateway.client(token(2)) as c:
        lost = create(c)  # a VIP order whose notification was lost
    o["lost"], o["lost_id"] = lost["trade_no"], lost["id"]
    providers.alipay.publish_bill(today(), [
        BillLine("payment", o["matched"], 5400, fee_fen=32),
        BillLine("payment", o["lost"], 5400, fee_fen=32),
        BillLine("payment", o["recharge"], 3000, fee_fen=18),
        BillLine("payment", o["console"], 5400, fee_fen=32),
        BillLine("refund", o["console"], 1800, refund_no="2026120499990001", fee_fen=11),  # console refund, lost
        BillLine("payment", o["wrong"], 5000, fee_fen=30),  # we recorded 54.00
        BillLine("payment", "SOMEONE-ELSES-0001", 990),  # not an order of ours
    ])
    return o


def expected_alipay(o: dict, applied: str) -> dict:
    return {
        ("matched", "payment", o["matched"], ""): "none",
        ("provider_only_paid", "payment", o["lost"], ""): applied,
        ("provider_only_paid", "payment", o["recharge"], ""): applied,
        ("matched", "payment", o["console"], ""): "none",
        ("provider_only_refund", "refund", o["console"], "2026120499990001"): applied,
        ("mismatch", "payment", o["wrong"], ""): "flagged",
        ("provider_only_paid", "payment", "SOMEONE-ELSES-0001", ""): "flagged",
        ("local_only", "payment", o["local"], ""): "flagged",
    }


def test_alipay_day_every_class_detected_healed_once_and_rerun_is_idempotent(real_gateway, token, providers,
                                                                            real_app):
    o = plant_alipay_day(real_gateway, token, providers, real_app)
    before = snapshot(real_app)

    dry = real_app.reconciliation.run(today(), "alipay", dry_run=True)
    assert dry.status == "dry_run" and classes(dry) == expected_alipay(o, "would_apply")
    assert snapshot(real_app) == before  # --dry-run changes nothing, stores nothing

    report = real_app.reconciliation.run(today(), "alipay")
    assert report.status == "succeeded" and classes(report) == expected_alipay(o, "applied")
    # Healed through the notification / refund paths, exactly once.
    assert real_app.memberships.ledger.status(2).current_level == "middle" and grants_for(real_app, str(o["lost_id"])) == 1
    assert real_app.recharges.wallet.balance(5) == 3000
    refund = real_app.refunds.get("2026120499990001")
    assert (refund.state, refund.origin, refund.amount_fen) == ("succeeded", "provider", 1800)
    assert report.summary["fees_fen"] == 32 * 3 + 18 + 30 - 11 and report.summary["paid_fen"] == 5400 * 3 + 3000 + 5000 + 990
    fees = {i.order_number: i.fee_fen for i in report.items if i.kind == "payment" and i.category == "matched"}
    assert fees == {o["matched"]: 32, o["console"]: 32}
    after = snapshot(real_app)

    # Re-running the date applies nothing again; the stored report is replaced (same items).
    again = real_app.reconciliation.run(today(), "alipay")
    assert classes(again) == expected_alipay(o, "applied")  # what the first run healed stays reported as healed
    assert snapshot(real_app) == after
    runs = real_app.reconciliation.runs(today(), "alipay")
    assert len(runs) == 1 and runs[0].state == "succeeded" and runs[0].attempts == 2
    assert len(real_app.reconciliation.items(runs[0].id)) == len(again.items)

    # Late notifications after the healing change nothing.
    late = providers.alipay.notification(o["lost"], "54.00")
    assert notify(real_gateway, o["lost_id"], late).text == "success"
    with real_app.uow_factory() as uow:
        console_id = uow.session.scalar(select(VipOrderRow.id).where(VipOrderRow.trade_no == o["console"]))
    refund_note = providers.alipay.notification(o["console"], "54.00", refund_fee="18.00",
                                                out_biz_no="2026120499990001", gmt_refund="2026-12-04 10:00:00")
    assert notify(real_gateway, console_id, refund_note).text == "success"
    assert snapshot(real_app) == after


def test_cli_prints_the_report_of_a_planted_day_and_dry_run(real_gateway, token, providers, real_app, capsys):
    o = plant_alipay_day(real_gateway, token, providers, real_app)
    args = argparse.Namespace(date=today(), channel="alipay", dry_run=True, app=lambda talks_to_providers=False: real_app)
    payments_cli.cmd_reconcile(args)
    dry = capsys.readouterr().out
    assert "dry run: nothing applied" in dry and real_app.recharges.wallet.balance(5) == 0
    args.dry_run = False
    payments_cli.cmd_reconcile(args)
    out = capsys.readouterr().out
    print(out)  # the closing note's sample report (pytest -s)
    assert f"reconciliation {today()} alipay: succeeded" in out
    assert "provider_only_paid=3" in out and "provider_only_refund=1" in out and "local_only=1" in out
    assert "mismatch=1" in out and "matched=2" in out
    line = next(x for x in out.splitlines() if o["recharge"] in x)
    assert "provider_only_paid" in line and "30.00" in line and "applied" in line


def test_cli_against_the_sandbox_stack_says_there_are_no_statements(app, capsys):
    args = argparse.Namespace(date="2026-12-04", channel=None, dry_run=False, app=lambda talks_to_providers=False: app)
    payments_cli.cmd_reconcile(args)
    out = capsys.readouterr().out
    assert "alipay: served by the SANDBOX channel" in out and "wechatpay: served by the SANDBOX channel" in out
    assert "sandbox channels have no statements" in out
    with pytest.raises(NoStatements):
        app.reconciliation.run("2026-12-04", "wechat")


# ---------------------------------------------------------------- WeChat Pay ----


def test_wechat_day_heals_lost_payment_console_refund_and_processing_refund(real_gateway, token, providers, real_app):
    paid = wechat_recharge(real_gateway, token, providers, real_app, user=5)  # 100.00, notified
    lost = wechat_recharge(real_gateway, token, providers, real_app, user=7, pay=False)  # notification lost
    providers.wechat.paid[lost.order_number] = "4200000000202612040000000007"
    providers.wechat.refund_status = "PROCESSING"
    ours = real_app.refunds.refund(paid.order_number, amount_fen=1000, reason="customer")  # result never notified
    assert ours.state == "processing"
    balance = real_app.recharges.wallet.balance(5)
    providers.wechat.publish_bills(today(), [
        BillLine("payment", paid.order_number, 10000, fee_fen=60),
        BillLine("payment", lost.order_number, 10000, fee_fen=60),
        BillLine("refund", paid.order_number, 1000, refund_no=ours.refund_no, fee_fen=6),
        BillLine("refund", paid.order_number, 2000, refund_no="CONSOLE-20261204-1", fee_fen=12),  # made in the console
    ])
    before = snapshot(real_app)
    assert real_app.reconciliation.run(today(), "wechat", dry_run=True).status == "dry_run"
    assert snapshot(real_app) == before

    report = real_app.reconciliation.run(today(), "wechat")
    assert report.status == "succeeded", report.error
    assert classes(report) == {
        ("matched", "payment", paid.order_number, ""): "none",
        ("provider_only_paid", "payment", lost.order_number, ""): "applied",
        ("provider_only_refund", "refund", paid.order_number, ours.refund_no): "applied",
        ("provider_only_refund", "refund", paid.order_number, "CONSOLE-20261204-1"): "applied",
    }
    assert real_app.recharges.wallet.balance(7) > 0 and real_app.refunds.get(ours.refund_no).state == "succeeded"
    with real_app.uow_factory() as uow:  # kept on the order as what it was: a statement line (payments/notes.py)
        assert [(n.source, n.outcome) for n in notes_of(uow, "recharge_orders", lost.id)] == [("statement", "settled")]
    console = real_app.refunds.get("CONSOLE-20261204-1")
    assert (console.state, console.origin, console.amount_fen) == ("succeeded", "provider", 2000)
    assert real_app.recharges.wallet.balance(5) < balance  # the console refund's share taken back
    assert report.summary["provider_totals"]["fund_income_fen"] == 20000
    after = snapshot(real_app)
    # The late refund notification (WeChat Pay's REFUND.SUCCESS for the console refund) changes nothing.
    refund = providers.wechat.refund_record(paid.order_number, "CONSOLE-20261204-1", 2000, "SUCCESS")
    assert post_refund_notification(real_gateway, *providers.wechat.refund_notification(refund)).status_code == 204
    assert real_app.reconciliation.run(today(), "wechat").status == "succeeded"
    assert snapshot(real_app) == after


def test_a_bad_hash_fails_the_run_before_anything_is_applied_then_the_schedule_retries(
        real_gateway, token, providers, real_app):
    lost = wechat_recharge(real_gateway, token, providers, real_app, user=7, pay=False)
    providers.wechat.publish_bills(today(), [BillLine("payment", lost.order_number, 10000)])
    providers.wechat.bill_hash = "0" * 40
    failures = RUNS.labels("wechat", "failed")._value.get()
    before = snapshot(real_app)
    dry = real_app.reconciliation.run(today(), "wechat", dry_run=True)
    assert (dry.status, dry.error) == ("failed", "bill hash does not match") and snapshot(real_app) == before
    report = real_app.reconciliation.run(today(), "wechat")
    assert report.status == "failed" and "hash" in report.error
    assert RUNS.labels("wechat", "failed")._value.get() == failures + 1  # alerts (metric + error log)
    (run,) = real_app.reconciliation.runs(today(), "wechat")
    assert run.state == "failed" and run.next_attempt_at is not None and run.lease_until is None
    assert before_without(snapshot(real_app), "runs") == before_without(before, "runs")
    assert real_app.recharges.wallet.balance(7) == 0  # never half-applied

    # The daily schedule (as the settlement loop calls it, tomorrow after the hour) retries it.
    providers.wechat.bill_hash = ""
    tomorrow = datetime.combine(datetime.now(SHANGHAI).date() + timedelta(days=1),
                                datetime.min.time(), SHANGHAI) + timedelta(hours=10, minutes=5)
    scheduled = service_like(real_app, clock=lambda: tomorrow.astimezone(timezone.utc))
    # Alipay published nothing for the date: that run fails too (and is retried later).
    assert [(r.business_date, r.channel, r.status) for r in scheduled.run_due()] == [
        (today(), "alipay", "failed"), (today(), "wechat", "succeeded")]
    assert real_app.recharges.wallet.balance(7) > 0
    (run,) = real_app.reconciliation.runs(today(), "wechat")
    assert run.state == "succeeded" and run.attempts == 2
    assert scheduled.run_due() == []  # done for the day; the failed one waits for its retry time


def before_without(before: dict, key: str) -> dict:
    return {k: v for k, v in before.items() if k != key}


def service_like(real_app, **kwargs) -> ReconciliationService:
    """Another replica: the same database and channels, its own lease owner."""
    return ReconciliationService(real_app.uow_factory, real_app.channels, real_app.settlement, real_app.refunds,
                                 **kwargs)


def test_statement_links_outside_the_provider_hosts_are_never_fetched(real_gateway, token, providers, real_app):
    lost = alipay_recharge(real_gateway, token)
    providers.alipay.publish_bill(today(), [BillLine("payment", lost, 3000)])
    providers.alipay.bill_url_host = "127.0.0.2:9"  # the answer names another host
    report = real_app.reconciliation.run(today(), "alipay")
    assert report.status == "failed" and "not an allowed provider host" in report.error
    assert real_app.recharges.wallet.balance(5) == 0
    providers.wechat.publish_bills(today(), [])
    providers.wechat.bill_url = "http://127.0.0.2:9/v3/billdownload/file?token=x"
    report = real_app.reconciliation.run(today(), "wechat")
    assert report.status == "failed" and "not on the configured WeChat Pay API host" in report.error


def test_two_replicas_reconciling_the_same_date_at_once_heal_once(real_gateway, token, providers, real_app):
    o = plant_alipay_day(real_gateway, token, providers, real_app)
    # Replica B's clock is past A's lease, so both really run (the lease would otherwise let one through):
    # the healing itself must be exactly-once.
    a = service_like(real_app)
    b = service_like(real_app, clock=lambda: datetime.now(timezone.utc) + timedelta(hours=1))
    c = service_like(real_app)  # a third one, in A's time: the lease keeps it out or it runs after
    barrier = threading.Barrier(3)
    results = {}

    def run(name, service):
        barrier.wait()
        results[name] = service.run(today(), "alipay")

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", a), ("b", b), ("c", c))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in results.values()} <= {"succeeded", "busy"}
    assert results["b"].status == "succeeded"  # past every lease: it always runs (A may run alongside)
    assert grants_for(real_app, str(o["lost_id"])) == 1
    assert real_app.recharges.wallet.balance(5) == 3000
    with real_app.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(RefundRow).where(
            RefundRow.refund_no == "2026120499990001")) == 1
        assert uow.session.scalar(select(func.count()).select_from(WalletEntryRow)) == 1


# ------------------------------------------------------------- the admin RPC ----


def test_admin_rpc_reads_runs_and_reports_internal_door_only(real_gateway, token, providers, real_app, channel,
                                                             gateway):
    import grpc

    from tests.conftest import auth
    from vipay.payments.v1 import reconciliation_pb2 as pb
    from vipay.payments.v1 import reconciliation_pb2_grpc as pb_grpc

    o = plant_alipay_day(real_gateway, token, providers, real_app)
    assert real_app.reconciliation.run(today(), "alipay").status == "succeeded"
    stub = pb_grpc.ReconciliationServiceStub(channel)  # the internal door (same database)
    admin = auth(token(0, "admin"))
    (run,) = stub.ListReconciliationRuns(pb.ListReconciliationRunsRequest(channel="alipay"), metadata=admin).runs
    assert (run.business_date, run.state, run.attempts, run.fees_fen) == (today(), "succeeded", 1, 133)
    assert dict(run.counts) == {"matched": 2, "provider_only_paid": 3, "provider_only_refund": 1, "local_only": 1,
                                "mismatch": 1}
    got = stub.GetReconciliationRun(pb.GetReconciliationRunRequest(business_date=today(), channel="alipay"),
                                    metadata=admin)
    assert got.items[0].category != "matched" and len(got.items) == 8
    local = next(i for i in got.items if i.category == "local_only")
    assert (local.order_number, local.HasField("provider_amount_fen"), local.local_amount_fen) == (o["local"], False,
                                                                                                 5400)
    for metadata, code in ((auth(token(1)), grpc.StatusCode.PERMISSION_DENIED), ((), grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListReconciliationRuns(pb.ListReconciliationRunsRequest(), metadata=metadata)
        assert refused.value.code() == code
    for request in (pb.GetReconciliationRunRequest(business_date="2026-02-30", channel="alipay"),
                    pb.GetReconciliationRunRequest(business_date=today(), channel="sandbox")):
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetReconciliationRun(request, metadata=admin)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetReconciliationRun(pb.GetReconciliationRunRequest(business_date="2020-01-01", channel="wechat"),
                                  metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # Not on the public door, with or without the admin credential.
    with gateway.client(token(0, "admin")) as c:
        r = c.post("/vipay.payments.v1.ReconciliationService/ListReconciliationRuns", json={})
    assert r.status_code >= 400 and "runs" not in r.text


def test_metrics_show_discrepancies_by_class_and_the_last_success(real_gateway, token, providers, real_app):
    from server.app import database_gauges

    plant_alipay_day(real_gateway, token, providers, real_app)
    assert real_app.reconciliation.run(today(), "alipay").status == "succeeded"
    families = {f.name: f for f in database_gauges(real_app).collect()}
    discrepancies = {tuple(s.labels.values()): s.value
                     for s in families["vipay_reconciliation_discrepancies"].samples}
    assert discrepancies == {("alipay", "provider_only_paid"): 3, ("alipay", "provider_only_refund"): 1,
                             ("alipay", "local_only"): 1, ("alipay", "mismatch"): 1}
    (last,) = families["vipay_reconciliation_last_success_timestamp_seconds"].samples
    assert last.labels == {"channel": "alipay"} and abs(last.value - datetime.now(timezone.utc).timestamp()) < 60


# ---------------------------------------------------- the command, as a process ----


def reconcile_cli(settings, *args):
    import os
    import subprocess
    import sys

    from server.platform.settings import ROOT
    from tests.conftest import TEST_SECRET

    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=TEST_SECRET, SANDBOX_SECRET=TEST_SECRET,
               LOG_LEVEL="WARNING")
    for name, value in settings.model_dump().items():  # the real channels' settings, as an operator sets them
        if name.startswith(("alipay_", "wechatpay_", "appstore_")) and value:
            env[name.upper()] = str(value)
    return subprocess.run([sys.executable, "-m", "server", "reconcile", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_command_against_the_sandbox_stack(app, settings):
    result = reconcile_cli(settings, "--date", "2026-12-04")
    assert result.returncode == 0, result.stderr
    assert "sandbox channels have no statements" in result.stdout and "nothing reconciled" in result.stdout
    bad = reconcile_cli(settings, "--date", "2026-02-30")
    assert bad.returncode != 0 and "--date" in bad.stderr


def test_the_command_against_the_real_channels_on_a_planted_day(real_gateway, token, providers, real_app,
                                                                real_settings):
    o = plant_alipay_day(real_gateway, token, providers, real_app)
    providers.wechat.publish_bills(today(), [])  # a quiet day at WeChat Pay
    dry = reconcile_cli(real_settings, "--date", today(), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would_apply" in dry.stdout and real_app.recharges.wallet.balance(5) == 0
    result = reconcile_cli(real_settings, "--date", today())
    print(result.stdout)  # the closing note's report (pytest -s)
    assert result.returncode == 0, result.stderr
    assert f"reconciliation {today()} alipay: succeeded" in result.stdout
    assert f"reconciliation {today()} wechat: succeeded" in result.stdout
    assert real_app.recharges.wallet.balance(5) == 3000 and grants_for(real_app, str(o["lost_id"])) == 1
    providers.wechat.bill_hash = "f" * 40
    failed = reconcile_cli(real_settings, "--date", today(), "--channel", "wechatpay")
    assert failed.returncode == 1 and "wechat: failed (bill hash does not match)" in failed.stdout


def test_two_processes_reconciling_the_same_date_at_once_heal_once(real_gateway, token, providers, real_app,
                                                                  real_settings):
    from concurrent.futures import ThreadPoolExecutor

    o = plant_alipay_day(real_gateway, token, providers, real_app)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: reconcile_cli(real_settings, "--date", today(), "--channel", "alipay"),
                                range(2)))
    outcomes = sorted(r.stdout.splitlines()[0].split(": ", 1)[1].split(" ")[0] for r in results)
    assert outcomes in (["busy", "succeeded"], ["succeeded", "succeeded"]), [r.stdout + r.stderr for r in results]
    assert grants_for(real_app, str(o["lost_id"])) == 1 and real_app.recharges.wallet.balance(5) == 3000
    assert [r.refund_no for r in real_app.refunds.by_order_number(o["console"])] == ["2026120499990001"]


def test_an_order_healed_from_yesterdays_statement_is_not_local_only_today(real_gateway, token, providers,
                                                                            real_app):
    # Paid at the provider yesterday, notification lost: healed today from yesterday's
    # statement, so it is paid *here* today; today's statement does not list it.
    yesterday = (datetime.now(SHANGHAI).date() - timedelta(days=1)).isoformat()
    with real_gateway.client(token(2)) as c:
        lost = create(c)
    late = alipay_paid_vip(real_gateway, token, providers, user=1)  # paid yesterday 23:59, notified today
    providers.alipay.publish_bill(yesterday, [BillLine("payment", lost["trade_no"], 5400),
                                              BillLine("payment", late["trade_no"], 5400)])
    healed = real_app.reconciliation.run(yesterday, "alipay")
    assert classes(healed) == {("provider_only_paid", "payment", lost["trade_no"], ""): "applied",
                               ("matched", "payment", late["trade_no"], ""): "none"}
    providers.alipay.publish_bill(today(), [])
    assert real_app.reconciliation.run(today(), "alipay").items == []


def test_the_settlement_loop_runs_the_daily_schedule(real_gateway, token, providers, real_app):
    import asyncio

    from server.payments.settlement_worker import settle_forever

    lost = alipay_recharge(real_gateway, token)
    providers.alipay.publish_bill(today(), [BillLine("payment", lost, 3000)])
    providers.wechat.publish_bills(today(), [])
    before_hour = datetime.combine(datetime.now(SHANGHAI).date() + timedelta(days=1), datetime.min.time(),
                                   SHANGHAI) + timedelta(hours=9, minutes=59)
    clock = [before_hour]
    scheduled = service_like(real_app, clock=lambda: clock[0].astimezone(timezone.utc))

    async def loop_until(done, seconds):
        task = asyncio.create_task(settle_forever(real_app.settlement, 0.05, scheduled.run_due))
        for _ in range(int(seconds / 0.05)):
            await asyncio.sleep(0.05)
            if done():
                break
        await asyncio.sleep(0.3)  # a few more passes
        task.cancel()

    asyncio.run(loop_until(lambda: False, 0.5))
    assert real_app.reconciliation.runs(today()) == [] and real_app.recharges.wallet.balance(5) == 0  # before the hour
    clock[0] = before_hour + timedelta(minutes=2)
    asyncio.run(loop_until(lambda: len([r for r in real_app.reconciliation.runs(today()) if r.state == "succeeded"])
                           == 2, 60))
    assert sorted((r.channel, r.state, r.attempts) for r in real_app.reconciliation.runs(today())) == [
        ("alipay", "succeeded", 1), ("wechat", "succeeded", 1)]  # once, though the loop passed many times
    assert real_app.recharges.wallet.balance(5) == 3000
