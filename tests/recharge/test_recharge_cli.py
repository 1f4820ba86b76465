"""The recharge operator commands as real subprocesses on the test database, their
effect seen through the running server and Envoy."""

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import update
from vipay.recharge.v1 import wallet_pb2 as wpb
from vipay.recharge.v1 import wallet_pb2_grpc

from server.platform.settings import ROOT
from server.recharge.tables import WalletRow
from tests.conftest import TEST_SECRET, auth
from tests.recharge.test_recharge_http import center


def cli(settings, *args, check=True):
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=TEST_SECRET, SANDBOX_SECRET=TEST_SECRET,
               LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_user_profile_set_by_the_operator_fills_003_personal(settings, gateway, token, channel):
    out = cli(settings, "user-profile", "set", "10125", "--store-id", "10001", "--mobile", "13012340000",
              "--nick-name", "chenx", "--avatar-id", "10738", "--address-id", "10052", "--points", "64",
              "--grade-id", "10001", "--platform", "MP-WEIXIN", "--last-login-time", "1645635730").stdout
    assert json.loads(out)["nick_name"] == "chenx"
    cli(settings, "user-profile", "set", "10125", "--store-id", "10001", "--points", "65")  # changes one field
    svc = auth(token(1, "service"))
    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    wallet.CreditWallet(wpb.CreditWalletRequest(user_id=10125, store_id=10001, amount_fen=9309444,
                                                reference="import", request_id="r1"), metadata=svc)
    wallet.DebitWallet(wpb.DebitWalletRequest(user_id=10125, store_id=10001, amount_fen=143780,
                                              reference="mall_order:1", request_id="r2"), metadata=svc)
    personal = center(gateway, token(10125)).json()["data"]["personal"]
    assert personal == {
        "user_id": 10125, "mobile": "130****0000", "nick_name": "chenx", "avatar_id": 10738, "gender": "未知",
        "address_id": 10052, "balance": "91656.64", "points": 65, "pay_money": "0.00", "expend_money": "1437.80",
        "grade_id": 10001, "platform": "MP-WEIXIN", "last_login_time": 1645635730,
    }
    # Another store has no profile: defaults, and the platform header.
    other = center(gateway, token(10125), storeId="10002", platform="APP").json()["data"]["personal"]
    assert (other["nick_name"], other["points"], other["platform"], other["balance"]) == ("", 0, "APP", "0.00")


def test_user_profile_set_refuses_bad_values(settings):
    bad = cli(settings, "user-profile", "set", "7", "--store-id", "10001", "--points", "-1", "--gender", "x" * 9,
              check=False)
    assert bad.returncode != 0 and "points" in bad.stderr and "gender" in bad.stderr
    missing = cli(settings, "user-profile", "show", "7", "--store-id", "10001", check=False)
    assert missing.returncode != 0 and "no profile" in missing.stderr


def test_recharge_catalog_edited_by_the_operator_reaches_the_running_server(settings, gateway, tmp_path):
    document = json.loads(cli(settings, "recharge-catalog", "show").stdout)
    document["plans"].append({"id": 10003, "name": "套餐C", "money_fen": 200000, "gift_fen": 40000})
    document["setting"]["lowest_money_fen"] = 1000
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    assert cli(settings, "recharge-catalog", "load", str(path)).stdout.startswith("recharge catalog version ")
    with gateway.client() as c:
        prices = [a["price"] for a in c.get("/api/recharge").json()["data"]["rechargeAmount"]]
    assert prices == ["28", "500", "1000", "2000"]
    document["plans"].append({"id": 10003, "name": "dup", "money_fen": 0})
    path.write_text(json.dumps(document, ensure_ascii=False))
    refused = cli(settings, "recharge-catalog", "load", str(path), check=False)
    assert refused.returncode != 0 and "plans" in refused.stderr


def test_ledger_check_command_finds_a_broken_wallet(app, settings):
    app.recharges.wallet.move(5, 0, 700, "seed", "seed", debit=False)
    assert "ledger OK" in cli(settings, "ledger-check").stdout
    with app.uow_factory() as uow:
        uow.session.execute(update(WalletRow).where(WalletRow.user_id == 5).values(balance=701))
        uow.commit()
    try:
        broken = cli(settings, "ledger-check", check=False)
        assert broken.returncode == 1 and "user 5" in broken.stdout and "balance 701 != sum of entries 700" in broken.stdout
    finally:
        with app.uow_factory() as uow:
            uow.session.execute(update(WalletRow).where(WalletRow.user_id == 5).values(balance=700))
            uow.commit()


def test_user_profiles_answer_a_frozen_read_model_not_a_row(app):
    """UserProfiles.get/save answer a UserProfileView (issue 16 §5: servicers get no ORM rows)."""
    from server.recharge.views import UserProfileView

    saved = app.profiles.save(5, 2, nick_name="小明", points=7)
    got = app.profiles.get(5, 2)
    assert type(saved) is UserProfileView and type(got) is UserProfileView
    assert (got.user_id, got.store_id, got.nick_name, got.points, got.gender) == (5, 2, "小明", 7, "未知")
    assert saved == got
    with pytest.raises(AttributeError):
        got.points = 8
    assert app.profiles.get(5, 3) is None
