"""A throw-away stack for the console's browser tests (make console-test): the SDK
stack's database, gRPC server and Envoy (sdk/stack.py), plus the console's listener,
one operator per role and a merchant. Runs COMMAND with the addresses in its environment.

    python -m tests.browser.stack -- COMMAND [ARGS...]

COMMAND sees VIPAY_CONSOLE (the console's address), VIPAY_HTTP (the public door),
VIPAY_GRPC, VIPAY_OPERATOR_PASSWORD (every test operator's password; the operators are
admin-op, finance-op, support-op, locked-op) and VIPAY_PAID_VIP_ORDER (a sandbox-paid
001 order of user 4242: middle, 3 months; VIPAY_UNPAID_VIP_ORDER one unpaid,
VIPAY_LOST_NOTIFICATION_ORDER one paid at the sandbox whose notification was never sent) and VIPAY_CALLBACK_RECEIVER (the test
merchant sdk-m1's callback endpoint, one callback delivered; GET answers the count)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from clients.merchant_client import MerchantClient
from sdk.stack import free_port, register_merchant, server_cli, wait_for_grpc
from server.platform.envoy import Envoy
from server.platform.settings import ROOT

DIST = ROOT / "console" / "dist"
OPERATORS = {"admin-op": "admin", "finance-op": "finance", "support-op": "support", "locked-op": "support"}


PAID_ORDER_USER = 4242


def paid_vip_order(env: dict, user_id: int, *pay: str) -> str:
    """A 001 order (middle, 3 months) of `user_id`, paid through the sandbox: its trade_no.
    `pay`: sandbox-pay's flags (--no-notify: paid, the notification lost); ("unpaid",): not paid."""
    token = server_cli(env, "token", "--user-id", str(user_id)).strip()
    order = httpx.post(env["VIPAY_HTTP"] + "/api/v2/vip/orders", headers={"Authorization": f"Bearer {token}"},
                       json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                             "pay_method": "Alipay_AopApp"}, timeout=10).json()
    if pay != ("unpaid",):
        server_cli(env, "sandbox-pay", order["trade_no"], *pay)
    return order["trade_no"]


class Receiver(BaseHTTPRequestHandler):
    """The merchant's callback endpoint: counts status callbacks (POST), tells the count (GET)."""

    received = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Receiver.received += 1
        self._answer(b"SUCCESS", "text/plain")

    def do_GET(self):  # noqa: N802
        self._answer(str(Receiver.received).encode(), "application/json")

    def _answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("access-control-allow-origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def delivered_merchant_order(env: dict, work: Path, receiver_url: str) -> None:
    """A 004 charge of the SDK test merchant whose status callback reached the receiver."""
    merchant = register_merchant(env, work)
    client = MerchantClient(env["VIPAY_HTTP"], merchant["VIPAY_MERCHANT_ID"], merchant["VIPAY_MERCHANT_ID"],
                            private_key_pem=Path(merchant["VIPAY_MERCHANT_KEY_FILE"]).read_text())
    client.vip_charge(merchant["VIPAY_MERCHANT_PRODUCT"], merchant["VIPAY_MERCHANT_ACCOUNT"], "console-e2e-1",
                      callback_url=receiver_url)
    deadline = time.monotonic() + 30
    while Receiver.received < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the merchant callback never arrived")
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vipay-console-") as tmp:
        work = Path(tmp)
        grpc_port, http_port, admin_port, console_port = free_port(), free_port(), free_port(), free_port()
        password = secrets.token_urlsafe(12)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'vipay.db'}", "GRPC_PORT": str(grpc_port),
               "HTTP_PORT": str(http_port), "ENVOY_ADMIN_PORT": str(admin_port),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{http_port}", "CATALOG_REFRESH_SECONDS": "1",
               "OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS": "true"}
        server_cli(env, "migrate")
        server_cli(env, "seed")
        for name, role in OPERATORS.items():
            subprocess.run([sys.executable, "-m", "server", "operator", "create", name, "--role", role], env=env,
                           cwd=ROOT, check=True, input=password + "\n", text=True, capture_output=True)
        log = open(work / "server.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT)
        envoy = Envoy(http_port, admin_port, grpc_port, work, log_path=work / "envoy.log",
                      console=("127.0.0.1", console_port, DIST))
        try:
            wait_for_grpc(grpc_port, server)
            envoy.start()
            env.update(VIPAY_HTTP=f"http://127.0.0.1:{http_port}", VIPAY_GRPC=f"127.0.0.1:{grpc_port}",
                       VIPAY_CONSOLE=f"http://127.0.0.1:{console_port}", VIPAY_OPERATOR_PASSWORD=password,
                       VIPAY_PYTHON=sys.executable, VIPAY_ROOT=str(ROOT))
            env["VIPAY_PAID_VIP_ORDER"] = paid_vip_order(env, PAID_ORDER_USER)
            env["VIPAY_UNPAID_VIP_ORDER"] = paid_vip_order(env, PAID_ORDER_USER + 1, "unpaid")
            env["VIPAY_LOST_NOTIFICATION_ORDER"] = paid_vip_order(env, PAID_ORDER_USER + 2, "--no-notify")
            receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
            threading.Thread(target=receiver.serve_forever, daemon=True).start()
            env["VIPAY_CALLBACK_RECEIVER"] = f"http://127.0.0.1:{receiver.server_address[1]}"
            delivered_merchant_order(env, work, env["VIPAY_CALLBACK_RECEIVER"] + "/notify")
            print(f"stack: console {env['VIPAY_CONSOLE']}  gateway {env['VIPAY_HTTP']}  ({work})", flush=True)
            code = subprocess.run(argv, env=env).returncode
        finally:
            envoy.stop()
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        if code:
            tail = (work / "server.log").read_text(errors="replace").splitlines()[-30:]
            print("stack: server log (last lines):\n" + "\n".join(tail), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
