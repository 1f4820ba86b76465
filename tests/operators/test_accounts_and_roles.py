"""Operator accounts, console sessions, roles enforced by the server on the admin RPCs
themselves, and the append-only audit log (docs/console.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import httpx
import pytest
from vipay.membership.v1 import membership_pb2 as mpb
from vipay.membership.v1 import membership_pb2_grpc
from vipay.operators.v1 import operators_pb2 as pb
from vipay.operators.v1 import operators_pb2_grpc
from vipay.payments.v1 import refunds_pb2 as rpb
from vipay.payments.v1 import refunds_pb2_grpc
from vipay.recharge.v1 import wallet_pb2 as wpb
from vipay.recharge.v1 import wallet_pb2_grpc

from server.operators.passwords import hash_password, totp_code, verify_password, verify_totp
from server.operators.service import MAX_FAILED_LOGINS
from server.operators.tables import AuditEntryRow, OperatorRow
from server.platform.auth import Principal
from server.platform.settings import ROOT
from server.recharge.rules import demo_catalog as demo_recharge_catalog
from tests.conftest import auth
from tests.membership.test_grpc import details
from tests.payments.test_refunds_sandbox import paid_vip_order

PASSWORD = "correct horse battery"


@pytest.fixture
def operators(channel):
    return operators_pb2_grpc.OperatorServiceStub(channel)


def login(operators, name: str, password: str = PASSWORD, code: str = "") -> pb.LoginResponse:
    return operators.Login(pb.LoginRequest(name=name, password=password, totp_code=code))


def refusal(fn, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        fn(*args, **kwargs)
    infos = details(exc.value)[0]
    return exc.value.code(), infos[0].reason if infos else ""


def test_password_hashes_are_salted_scrypt_and_totp_follows_rfc_6238():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$") and first != second and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "garbage")
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> 287082 with 6.
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert totp_code(secret, 59) == "287082"
    assert verify_totp(secret, "287082", 59 + 30) and not verify_totp(secret, "287082", 59 + 90)


def test_login_issues_a_short_service_credential_for_the_operators_role(app, operators):
    app.operators.create("alice", "finance", PASSWORD)
    answer = login(operators, "alice")
    assert answer.operator.name == "alice" and answer.operator.role == "finance"
    assert answer.session_token and answer.credential
    lifetime = answer.credential_expire_time.ToDatetime().timestamp() - __import__("time").time()
    assert 0 < lifetime <= 600
    me = operators.GetCurrentOperator(pb.GetCurrentOperatorRequest(), metadata=auth(answer.credential))
    assert me.operator.id == answer.operator.id and me.operator.role == "finance"
    # Nothing of the password is kept.
    with app.uow_factory() as uow:
        row = uow.session.get(OperatorRow, answer.operator.id)
    assert PASSWORD not in row.password_hash and row.password_hash.startswith("scrypt$")


def test_wrong_password_or_unknown_name_is_one_refusal(app, operators):
    app.operators.create("bob", "support", PASSWORD)
    assert refusal(login, operators, "bob", "wrong password") == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert refusal(login, operators, "nobody") == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(app, operators):
    app.operators.create("carol", "admin", PASSWORD)
    for _ in range(MAX_FAILED_LOGINS - 1):
        assert refusal(login, operators, "carol", "nope nope nope")[0] == grpc.StatusCode.UNAUTHENTICATED
    assert refusal(login, operators, "carol", "nope nope nope") == (grpc.StatusCode.PERMISSION_DENIED,
                                                                      "ACCOUNT_LOCKED")
    assert refusal(login, operators, "carol") == (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_LOCKED")


def test_a_success_resets_the_failure_count(app, operators):
    app.operators.create("dave", "admin", PASSWORD)
    for _ in range(MAX_FAILED_LOGINS - 1):
        refusal(login, operators, "dave", "nope nope nope")
    login(operators, "dave")
    for _ in range(MAX_FAILED_LOGINS - 1):
        assert refusal(login, operators, "dave", "nope nope nope")[0] == grpc.StatusCode.UNAUTHENTICATED
    login(operators, "dave")


def test_totp_accounts_need_the_current_code(app, operators):
    row = app.operators.create("erin", "admin", PASSWORD, totp=True)
    assert refusal(login, operators, "erin")[0] == grpc.StatusCode.UNAUTHENTICATED
    assert refusal(login, operators, "erin", PASSWORD, "000000")[0] == grpc.StatusCode.UNAUTHENTICATED \
        or totp_code(row.totp_secret) == "000000"
    assert login(operators, "erin", PASSWORD, totp_code(row.totp_secret)).operator.totp_enabled


def test_refresh_works_until_logout(app, operators):
    app.operators.create("frank", "support", PASSWORD)
    first = login(operators, "frank")
    other = login(operators, "frank")  # a second session (another browser) outlives this one's logout
    session = first.session_token
    fresh = operators.RefreshSession(pb.RefreshSessionRequest(session_token=session))
    for credential in (first.credential, fresh.credential, other.credential):
        operators.GetCurrentOperator(pb.GetCurrentOperatorRequest(), metadata=auth(credential))
    operators.Logout(pb.LogoutRequest(session_token=session))
    # Logout revokes the credentials already issued for the session (verified and cached
    # by now), not only the refresh.
    for credential in (first.credential, fresh.credential):
        assert refusal(operators.GetCurrentOperator, pb.GetCurrentOperatorRequest(),
                       metadata=auth(credential)) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    operators.GetCurrentOperator(pb.GetCurrentOperatorRequest(), metadata=auth(other.credential))
    code, _ = refusal(operators.RefreshSession, pb.RefreshSessionRequest(session_token=session))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert refusal(operators.RefreshSession, pb.RefreshSessionRequest(session_token="made-up"))[0] == \
        grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("role, catalog, refund, wallet_move", [
    ("support", False, False, False),
    ("finance", False, True, True),
    ("admin", True, True, True),
])
def test_each_role_against_the_admin_rpcs(app, channel, operators, role, catalog, refund, wallet_move):
    """support reads everything and changes nothing; finance adds refunds and wallet
    adjustments; admin adds the catalog. The servers refuse, not the console."""
    app.operators.create(f"op-{role}", role, PASSWORD)
    cred = auth(login(operators, f"op-{role}").credential)
    membership = membership_pb2_grpc.MembershipServiceStub(channel)
    refunds = refunds_pb2_grpc.RefundServiceStub(channel)
    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    denied = (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")

    # Reads: every role.
    wallet.GetWallet(wpb.GetWalletRequest(user_id=7), metadata=cred)
    refunds.ListOrderRefunds(rpb.ListOrderRefundsRequest(order_number="nope"), metadata=cred)
    membership.GetMembershipStatus(mpb.GetMembershipStatusRequest(user_id=7), metadata=cred)
    operators.ListAuditEntries(pb.ListAuditEntriesRequest(), metadata=cred)

    # Catalog: the served document sent back unchanged.
    served = membership.GetVipConfigs(mpb.GetVipConfigsRequest())
    request = mpb.UpdateVipCatalogRequest(switch=served.switch, exchange=served.exchange, config=served.config)
    if catalog:
        membership.UpdateVipCatalog(request, metadata=cred)
    else:
        assert refusal(membership.UpdateVipCatalog, request, metadata=cred) == denied

    # Refund of an order that does not exist: past the role check it is NOT_FOUND.
    answer = refusal(refunds.RefundOrder, rpb.RefundOrderRequest(order_number="VC404", reason="test"), metadata=cred)
    assert (answer != denied) == refund, answer

    credit = wpb.CreditWalletRequest(user_id=7, amount_fen=100, reference="adjust:1", request_id=f"r-{role}")
    if wallet_move:
        assert wallet.CreditWallet(credit, metadata=cred).balance_fen == 100
    else:
        assert refusal(wallet.CreditWallet, credit, metadata=cred) == denied
        assert wallet.GetWallet(wpb.GetWalletRequest(user_id=7), metadata=cred).balance_fen == 0


def test_user_tokens_and_no_token_get_nothing(operators, token):
    assert refusal(operators.ListAuditEntries, pb.ListAuditEntriesRequest())[0] == grpc.StatusCode.UNAUTHENTICATED
    assert refusal(operators.ListAuditEntries, pb.ListAuditEntriesRequest(),
                   metadata=auth(token(1)))[0] == grpc.StatusCode.PERMISSION_DENIED


def test_the_internal_service_credential_is_not_an_operator(channel, operators, token):
    """`service` keeps its wallet and status reads, but is no console operator."""
    assert refusal(operators.ListAuditEntries, pb.ListAuditEntriesRequest(),
                   metadata=auth(token(0, "service")))[0] == grpc.StatusCode.PERMISSION_DENIED
    refunds = refunds_pb2_grpc.RefundServiceStub(channel)
    assert refusal(refunds.RefundOrder, rpb.RefundOrderRequest(order_number="VC404", reason="x"),
                   metadata=auth(token(0, "service")))[0] == grpc.StatusCode.PERMISSION_DENIED


def test_audit_entries_commit_with_their_change_and_list_newest_first(app, operators, token):
    app.operators.create("gina", "admin", PASSWORD)
    gina = login(operators, "gina")
    actor = Principal(gina.operator.id, "admin")
    for i in range(3):
        with app.uow_factory() as uow:
            app.operators.record(uow, actor, "vip_catalog.update", "vip_catalog", {"price": i}, {"price": i + 1},
                                 f"step {i}")
            uow.commit()
    with app.uow_factory() as uow:  # rolled back: its entry never existed
        app.operators.record(uow, actor, "vip_catalog.update", "vip_catalog", {}, {}, "rolled back")
    app.operators.audited(actor, "order.refund", "VIP123", {"refunded_fen": 0}, {"refunded_fen": 500}, "customer")

    cred = auth(gina.credential)
    page = operators.ListAuditEntries(pb.ListAuditEntriesRequest(page_size=2), metadata=cred)
    assert page.total_size == 4 and [e.action for e in page.entries] == ["order.refund", "vip_catalog.update"]
    assert page.entries[0].operator_name == "gina" and page.entries[0].operator_role == "admin"
    assert page.entries[0].before_json == '{"refunded_fen": 0}' and page.entries[0].after_json == '{"refunded_fen": 500}'
    rest = operators.ListAuditEntries(pb.ListAuditEntriesRequest(page_size=2, page_token=page.next_page_token),
                                      metadata=cred)
    assert [e.reason for e in rest.entries] == ["step 1", "step 0"] and not rest.next_page_token
    only = operators.ListAuditEntries(pb.ListAuditEntriesRequest(target="VIP123"), metadata=cred)
    assert [e.reason for e in only.entries] == ["customer"]
    with app.uow_factory() as uow:
        assert uow.session.query(AuditEntryRow).filter_by(reason="rolled back").count() == 0
    assert refusal(operators.ListAuditEntries, pb.ListAuditEntriesRequest(page_size=-1),
                   metadata=cred)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_operator_create_cli(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    run = lambda *args, **kw: subprocess.run([sys.executable, "-m", "server", *args], env=env, cwd=ROOT,  # noqa: E731
                                             capture_output=True, text=True, **kw)
    assert run("migrate").returncode == 0
    made = run("operator", "create", "root", "--role", "admin", "--totp", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "role admin" in made.stdout and "otpauth://totp/vipay-console:root?secret=" in made.stdout
    short = run("operator", "create", "weak", "--role", "support", input="short\n")
    assert short.returncode != 0 and "password" in short.stderr
    again = run("operator", "create", "root", "--role", "support", input=PASSWORD + "\n")
    assert again.returncode != 0 and "exists" in again.stderr


def test_a_catalog_update_is_audited_with_the_document_before_and_after(app, channel, operators, gateway):
    app.operators.create("henry", "admin", PASSWORD)
    cred = auth(login(operators, "henry").credential)
    membership = membership_pb2_grpc.MembershipServiceStub(channel)
    served = membership.GetVipConfigs(mpb.GetVipConfigsRequest())
    request = mpb.UpdateVipCatalogRequest(switch=served.switch, exchange=served.exchange, config=served.config,
                                          reason="spring sale")
    old_price = request.config.middle.setting[0].price
    request.config.middle.setting[0].price = 12.34
    membership.UpdateVipCatalog(request, metadata=cred)

    with httpx.Client(base_url=gateway.url) as c:
        public = c.get("/api/v2/vip/configs").json()
    assert public["config"]["middle"]["setting"][0]["price"] == 12.34
    [entry] = operators.ListAuditEntries(pb.ListAuditEntriesRequest(action="vip_catalog.update"),
                                         metadata=cred).entries
    assert entry.operator_name == "henry" and entry.reason == "spring sale" and entry.target == "vip_catalog"
    before, after = json.loads(entry.before_json), json.loads(entry.after_json)
    assert before["config"]["middle"]["setting"][0]["price"] == old_price
    assert after["config"]["middle"]["setting"][0] == public["config"]["middle"]["setting"][0]
    assert after["switch"] == public["switch"] and after["exchange"] == public["exchange"]


def test_a_finance_refund_is_audited_and_a_support_refund_refused(app, channel, operators, gateway, token):
    app.recharges.catalog.save(demo_recharge_catalog())
    order = paid_vip_order(app, gateway, token, user=5)
    app.operators.create("ivy", "finance", PASSWORD)
    app.operators.create("jack", "support", PASSWORD)
    refunds = refunds_pb2_grpc.RefundServiceStub(channel)
    request = rpb.RefundOrderRequest(order_number=order["trade_no"], amount_fen=100, reason="partial goodwill")
    support = auth(login(operators, "jack").credential)
    assert refusal(refunds.RefundOrder, request, metadata=support)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert not refunds.ListOrderRefunds(rpb.ListOrderRefundsRequest(order_number=order["trade_no"]),
                                        metadata=support).refunds

    finance = auth(login(operators, "ivy").credential)
    refund = refunds.RefundOrder(request, metadata=finance).refund
    refunds.RefundOrder(request, metadata=finance)  # a retry: the same refund, no second entry
    [entry] = operators.ListAuditEntries(pb.ListAuditEntriesRequest(target=order["trade_no"]), metadata=finance).entries
    assert (entry.action, entry.operator_name, entry.reason) == ("order.refund", "ivy", "partial goodwill")
    assert json.loads(entry.before_json) == []
    assert json.loads(entry.after_json) == [{"refund_id": refund.refund_id, "amount_fen": 100, "state": refund.state,
                                             "reason": "partial goodwill"}]
