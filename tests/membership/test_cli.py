"""The operator/dev CLI against the same database and the real gateway."""

import os
import subprocess
import sys

from server.platform.settings import ROOT
from tests.conftest import TEST_SECRET


def cli(settings, gateway, *args):
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=TEST_SECRET, SANDBOX_SECRET=TEST_SECRET,
               PUBLIC_BASE_URL=gateway.url, LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_token_and_sandbox_pay_commands(settings, gateway):
    token = cli(settings, gateway, "token", "--user-id", "42")
    with gateway.client(token) as c:
        order = c.post("/api/v2/vip/orders", json={"timezone": "UTC", "duration": 3, "level": "low",
                                                   "pay_method": "WechatPay_App"}).json()
        assert order["user_id"] == 42
        out = cli(settings, gateway, "sandbox-pay", order["trade_no"])
        assert out.endswith("-> 200 success")
        assert c.get(f"/api/v2/vip/check-order/{order['id']}").json() == {"status": True}
        receipt_order = c.post("/api/v2/vip/orders", json={"timezone": "UTC", "duration": 3, "level": "low",
                                                           "pay_method": "Iap"}).json()
        receipt = cli(settings, gateway, "sandbox-receipt", str(receipt_order["id"]))
        assert c.post(f"/api/v2/vip/check-iap-result/{receipt_order['id']}",
                      json={"receipt": receipt}).json()["pay_status"] == 1


def test_catalog_set_price_reaches_the_running_server(settings, gateway):
    cli(settings, gateway, "catalog", "set-price", "--level", "high", "--duration", "12", "--price", "299.9")
    with gateway.client() as c:
        setting = c.get("/api/v2/vip/configs").json()["config"]["high"]["setting"][2]
    assert setting["price"] == 299.9 and setting["enable"] is True
