"""The refund and sandbox commands as real subprocesses on the test database (issue
12's operator experience): `refund` (idempotent re-runs), `refunds`, `sandbox-pay`
for any sandbox order, `ledger-check`, and no provider warnings from commands that
never talk to a payment provider."""

from __future__ import annotations

import os
import subprocess
import sys

from server.platform.settings import ROOT
from server.recharge.rules import demo_catalog
from tests.conftest import TEST_SECRET


def cli(settings, gateway, *args, check=True):
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=TEST_SECRET, SANDBOX_SECRET=TEST_SECRET,
               PUBLIC_BASE_URL=gateway.url, LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_sandbox_pay_then_refund_a_recharge_order(app, settings, gateway, token):
    app.recharges.catalog.save(demo_catalog())
    with gateway.client(token(8)) as c:
        number = c.post("/charge/pay", json={"id": 1, "payType": "ALIPAYCASH"}).json()["d"]["payOrderId"]
    paid = cli(settings, gateway, "sandbox-pay", number)  # a recharge order: no longer "no order"
    assert paid.stdout.strip().endswith("-> 200 success") and "not configured" not in paid.stderr
    assert app.recharges.wallet.balance(8) == 10000
    first = cli(settings, gateway, "refund", number, "--amount", "25.50", "--reason", "operator test")
    assert first.stdout.startswith(f"refund R{number}-2550 of order {number}: 25.50 yuan, succeeded")
    again = cli(settings, gateway, "refund", number, "--amount", "25.50", "--reason", "operator test")
    assert again.stdout.splitlines()[0] == first.stdout.splitlines()[0]  # the same refund, not a second one
    assert app.recharges.wallet.balance(8) == 10000 - 2550
    listed = cli(settings, gateway, "refunds", number).stdout
    assert listed.strip().endswith(f"1 refund(s) of order {number}")
    refused = cli(settings, gateway, "refund", number, "--amount", "1000", "--reason", "too much", check=False)
    assert refused.returncode != 0 and "REFUND_EXCEEDS_PAYMENT" in refused.stderr
    bad = cli(settings, gateway, "refund", number, "--amount", "1.234", "--reason", "x", check=False)
    assert bad.returncode != 0 and "--amount" in bad.stderr
    check = cli(settings, gateway, "ledger-check")
    assert check.stdout.startswith("ledger OK") and "refunds never exceed" in check.stdout


def test_commands_that_use_no_provider_print_no_provider_warnings(app, settings, gateway):
    app.recharges.catalog.save(demo_catalog())
    for args in (("catalog", "show"), ("merchant", "create", "900", "--business-id", "900"),
                 ("merchant", "set-product", "900", "87103", "--level", "middle", "--months", "3", "--price", "4.51"),
                 ("merchant", "add-business", "900", "901"), ("merchant", "link-account", "acc-900", "9"),
                 ("merchant", "set-callback-url", "900", "https://merchant.example.com/cb"),
                 ("merchant", "list"), ("ledger-check",), ("refunds", "NONE"), ("recharge-catalog", "show")):
        result = cli(settings, gateway, *args)
        assert "not configured" not in result.stderr, args
        assert result.stdout.strip(), args  # each says what it did
