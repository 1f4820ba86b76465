"""Onboarding output a script can use: `merchant create --key-out FILE --json` writes the
private key to a new mode-600 file and prints one JSON object; the key then signs a charge
that goes through Envoy. `sandbox-pay` exits non-zero when the notification is refused."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from clients.merchant_client import MerchantClient
from server.platform.settings import ROOT

from tests.conftest import TEST_SECRET

from .conftest import ACCOUNT, USER_ID
from .test_cli_and_grpc import cli


def test_create_writes_the_key_to_a_private_file_and_prints_json(settings, gateway, tmp_path):
    key_file = tmp_path / "m600.pem"
    out = json.loads(cli(settings, "create", "600", "--md5", "--key-out", str(key_file), "--json").stdout)
    assert out["merchantId"] == "600" and out["keyFile"] == str(key_file)
    assert len(out["md5Secret"]) == 48 and "rsaPrivateKey" not in out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    cli(settings, "set-product", "600", "87103", "--level", "middle", "--months", "1", "--price", "4.51")
    cli(settings, "top-up", "600", "10")
    cli(settings, "link-account", ACCOUNT, str(USER_ID))
    client = MerchantClient(gateway.url, "600", "600", private_key_pem=key_file.read_text())
    assert client.vip_charge(product_code="87103", account=ACCOUNT, biz_code="cli-1")["status"] == 200

    # An existing file is never overwritten, and then nothing is created (the key would be lost).
    again = cli(settings, "create", "601", "--key-out", str(key_file), check=False)
    assert again.returncode != 0 and "new file" in again.stderr
    assert "601" not in {m["merchantId"] for m in json.loads(cli(settings, "list").stdout)}
    # Without --key-out, --json carries the key itself (one object, nothing else printed).
    plain = json.loads(cli(settings, "create", "602", "--json").stdout)
    assert plain["rsaPrivateKey"].startswith("-----BEGIN PRIVATE KEY-----")


def test_sandbox_pay_exits_non_zero_when_refused(settings, gateway):
    """--gateway names where to send; a `400 fail` answer (here: a gateway that refuses) is a failure."""
    class Refusing(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"fail")

    refusing = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=TEST_SECRET, SANDBOX_SECRET=TEST_SECRET,
               LOG_LEVEL="WARNING")

    def server(*args):
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    try:
        token = server("token", "--user-id", "77").stdout.strip()
        with gateway.client(token) as c:
            order = c.post("/api/v2/vip/orders", json={"timezone": "UTC", "duration": 3, "level": "low",
                                                       "pay_method": "WechatPay_App"}).json()
        refused = server("sandbox-pay", order["trade_no"], "--gateway", f"http://127.0.0.1:{refusing.server_address[1]}")
        assert refused.returncode != 0 and "-> 400 fail" in refused.stdout
        paid = server("sandbox-pay", order["trade_no"], "--gateway", gateway.url)
        assert paid.returncode == 0 and paid.stdout.strip().endswith("-> 200 success")
    finally:
        refusing.shutdown()
        refusing.server_close()
