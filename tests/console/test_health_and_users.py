"""The console's health reads (today per family, callback backlog, database, ledger-check)
and wallet adjustments by operators: finance may, support may not, each audited."""

from __future__ import annotations

import json

import grpc
import pytest
from sqlalchemy import update
from vipay.console.v1 import console_pb2 as pb
from vipay.console.v1 import console_pb2_grpc
from vipay.operators.v1 import operators_pb2 as opb
from vipay.operators.v1 import operators_pb2_grpc
from vipay.recharge.v1 import wallet_pb2 as wpb
from vipay.recharge.v1 import wallet_pb2_grpc

from server.recharge.rules import demo_catalog as demo_recharge_catalog
from server.recharge.tables import WalletRow
from tests.conftest import auth
from tests.payments.test_refunds_sandbox import paid_recharge, paid_vip_order


@pytest.fixture
def console(channel):
    return console_pb2_grpc.ConsoleServiceStub(channel)


def test_health_counts_today_per_family(app, gateway, token, console):
    app.recharges.catalog.save(demo_recharge_catalog())
    vip = paid_vip_order(app, gateway, token, user=21)
    recharge = paid_recharge(app, gateway, user=22)
    app.refunds.refund(vip["trade_no"], amount_fen=1800, reason="health test")
    answer = console.GetHealth(pb.GetHealthRequest(), metadata=auth(token(1, "support")))
    days = {d.family: d for d in answer.families}
    assert answer.database_ready and not answer.database_error
    assert (days["001"].orders, days["001"].paid_orders, days["001"].revenue_fen) == (1, 1, vip["pay_amount"])
    assert days["001"].refunded_fen == 1800 and days["001"].revenue_display == str(vip["pay_amount"])
    family = {"charge": "000", "recharge": "002", "center": "003"}[recharge.family]
    assert (days[family].orders, days[family].revenue_fen) == (1, recharge.amount)
    assert days["004"].orders == 0 and answer.callback_backlog == 0
    with pytest.raises(grpc.RpcError) as exc:
        console.GetHealth(pb.GetHealthRequest(time_zone="Mars/Olympus"), metadata=auth(token(1, "support")))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_ledger_check_on_demand_reports_a_broken_wallet(app, console, token, channel):
    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    wallet.CreditWallet(wpb.CreditWalletRequest(user_id=31, amount_fen=500, reference="adjust:t", request_id="lc-1"),
                        metadata=auth(token(0, "service")))
    cred = auth(token(1, "support"))
    assert console.RunLedgerCheck(pb.RunLedgerCheckRequest(), metadata=cred).ok
    with app.engine.begin() as conn:  # break the invariant behind the ledger's back
        conn.execute(update(WalletRow).where(WalletRow.user_id == 31).values(balance=999))
    broken = console.RunLedgerCheck(pb.RunLedgerCheckRequest(), metadata=cred)
    assert not broken.ok and broken.problems
    with app.engine.begin() as conn:  # mend it, so the suite's own ledger check passes
        conn.execute(update(WalletRow).where(WalletRow.user_id == 31).values(balance=500))


def test_wallet_adjustments_by_operators_are_audited(app, channel, token):
    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    operators = operators_pb2_grpc.OperatorServiceStub(channel)
    request = wpb.CreditWalletRequest(user_id=41, amount_fen=250, reference="goodwill: late delivery",
                                      request_id="adj-1")
    with pytest.raises(grpc.RpcError) as exc:
        wallet.CreditWallet(request, metadata=auth(token(3, "support")))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert wallet.CreditWallet(request, metadata=auth(token(4, "finance"))).balance_fen == 250
    wallet.CreditWallet(request, metadata=auth(token(4, "finance")))  # a retry: no second entry
    wallet.DebitWallet(wpb.DebitWalletRequest(user_id=41, amount_fen=50, reference="internal", request_id="svc-1"),
                       metadata=auth(token(0, "service")))  # an internal service's move: not an adjustment
    entries = operators.ListAuditEntries(opb.ListAuditEntriesRequest(target="user:41"),
                                         metadata=auth(token(3, "support"))).entries
    assert [(e.action, e.operator_role, e.reason) for e in entries] == [
        ("wallet.credit", "finance", "goodwill: late delivery")]
    assert (json.loads(entries[0].before_json)["balance_fen"], json.loads(entries[0].after_json)["balance_fen"]) == \
        (0, 250)


def test_recharge_catalog_edit_is_validated_audited_and_served(app, console, token, gateway, channel):
    app.recharges.catalog.save(demo_recharge_catalog())
    current = console.GetRechargeCatalog(pb.GetRechargeCatalogRequest(), metadata=auth(token(1, "support")))
    document = json.loads(current.document_json)
    plan = next(p for p in document["plans"] if p["id"] == 10001)
    plan["money_fen"] = 51234
    request = pb.UpdateRechargeCatalogRequest(document_json=json.dumps(document), reason="new price")
    for role in ("support", "finance"):
        with pytest.raises(grpc.RpcError) as exc:
            console.UpdateRechargeCatalog(request, metadata=auth(token(1, role)))
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = json.loads(current.document_json)
    bad["plans"][0]["money_fen"] = -5
    for broken in (pb.UpdateRechargeCatalogRequest(document_json=json.dumps(bad), reason="x"),
                   pb.UpdateRechargeCatalogRequest(document_json="[1]", reason="x"),
                   pb.UpdateRechargeCatalogRequest(document_json=json.dumps(document), reason=" ")):
        with pytest.raises(grpc.RpcError) as exc:
            console.UpdateRechargeCatalog(broken, metadata=auth(token(1, "admin")))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    version = console.UpdateRechargeCatalog(request, metadata=auth(token(1, "admin"))).version
    assert version == current.version + 1
    with gateway.client(token(5)) as c:
        served = c.get("/api/recharge").text
    [shown] = [p for p in json.loads(served)["data"]["rechargeAmount"] if p["id"] == 10001]
    assert shown["price"] == "512.34"  # 002's trimmed yuan
    [entry] = operators_pb2_grpc.OperatorServiceStub(channel).ListAuditEntries(
        opb.ListAuditEntriesRequest(action="recharge_catalog.update"), metadata=auth(token(1, "support"))).entries
    before, after = json.loads(entry.before_json), json.loads(entry.after_json)
    assert [p["money_fen"] for p in before["plans"] if p["id"] == 10001] == [50000]
    assert [p["money_fen"] for p in after["plans"] if p["id"] == 10001] == [51234]
