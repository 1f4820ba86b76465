"""A throw-away stack for the SDK suites: a migrated, seeded SQLite database in a
temp dir, the gRPC server (`python -m server serve`) and the real Envoy, all on
free ports. Runs COMMAND with the addresses in its environment, then stops all.

    python -m sdk.stack -- COMMAND [ARGS...]

COMMAND sees VIPAY_HTTP (http://127.0.0.1:PORT, through Envoy), VIPAY_GRPC
(127.0.0.1:PORT, h2c gRPC), VIPAY_PYTHON (this interpreter, for
`python -m server token ...`), VIPAY_MERCHANT_* (a registered test merchant)
and DATABASE_URL. Secrets come from var/dev.env like every other command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from server.platform.settings import ROOT
from server.platform.envoy import Envoy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cli(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def register_merchant(env: dict, work: Path) -> dict:
    """A merchant with RSA and MD5 keys, a balance, one product and one linked account."""
    # As an operator onboards a partner: the key straight to a file (mode 600), the rest as JSON.
    created = json.loads(server_cli(env, "merchant", "create", "sdk-m1", "--md5", "--json",
                                    "--key-out", str(work / "merchant.pem")))
    md5 = created["md5Secret"]
    (work / "platform.pem").write_text(server_cli(env, "merchant", "platform-key"))
    server_cli(env, "merchant", "top-up", "sdk-m1", "1000")
    server_cli(env, "merchant", "set-product", "sdk-m1", "87103", "--level", "middle", "--months", "1",
               "--price", "4.51")
    server_cli(env, "merchant", "link-account", "w-sdk", "42")
    return {"VIPAY_MERCHANT_ID": "sdk-m1", "VIPAY_MERCHANT_KEY_FILE": str(work / "merchant.pem"),
            "VIPAY_MERCHANT_MD5": md5, "VIPAY_PLATFORM_KEY_FILE": str(work / "platform.pem"),
            "VIPAY_MERCHANT_PRODUCT": "87103", "VIPAY_MERCHANT_ACCOUNT": "w-sdk", "VIPAY_MERCHANT_USER": "42"}


def wait_for_grpc(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gRPC server exited with {process.returncode}")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
        except grpc.FutureTimeoutError:
            time.sleep(0.1)
    raise RuntimeError("the gRPC server did not start")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vipay-stack-") as tmp:
        work = Path(tmp)
        # VIPAY_STACK_PORT_BASE=N: ports N, N+1, N+2 (a stack started by hand in a port range).
        base = int(os.environ.get("VIPAY_STACK_PORT_BASE", "0"))
        grpc_port, http_port, admin_port = (base, base + 1, base + 2) if base else (free_port(), free_port(), free_port())
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'vipay.db'}", "GRPC_PORT": str(grpc_port),
               "HTTP_PORT": str(http_port), "ENVOY_ADMIN_PORT": str(admin_port),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{http_port}",
               # The suites' merchant callback endpoint listens on loopback (docs/openapi.md:
               # Callback address policy), and fuzzers place many orders as one user.
               "OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",
               "ORDER_LIMIT_PER_USER": "100000000", "ORDER_LIMIT_PER_IP": "100000000",
               "CAPTCHA_LIMIT_PER_USER": "100000000", "CAPTCHA_LIMIT_PER_IP": "100000000"}
        server_cli(env, "migrate")
        server_cli(env, "seed")
        env.update(register_merchant(env, work))
        log = open(work / "server.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT)
        envoy = Envoy(http_port, admin_port, grpc_port, work, log_path=work / "envoy.log")
        try:
            wait_for_grpc(grpc_port, server)
            envoy.start()
            env.update(VIPAY_HTTP=f"http://127.0.0.1:{http_port}", VIPAY_GRPC=f"127.0.0.1:{grpc_port}",
                       VIPAY_PYTHON=sys.executable, VIPAY_ROOT=str(ROOT))
            print(f"stack: gateway {env['VIPAY_HTTP']}  gRPC {env['VIPAY_GRPC']}  ({work})", flush=True)
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
