"""schemathesis over every documented path of sdk/openapi.yaml against the live
gateway (run inside `python -m sdk.stack`): no 5xx, and no status, content type
or body outside the spec. A bounded number of examples per operation.

First makes the data the id-taking paths need (a paid in-app purchase and an unpaid
VIP order of the token's user), so they are checked on their success answers as well."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
USER_ID = 7


def token(user_id: int, role: str = "user") -> str:
    """The one place SDK suites get credentials from: the server's own CLI."""
    return subprocess.run([sys.executable, "-m", "server", "token", "--user-id", str(user_id), "--role", role],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def orders(http: str, bearer: str) -> tuple[int, int]:
    """An unpaid order, and an in-app purchase paid with the stack's sandbox App Store receipt
    (a paid Iap order answers check-iap-result with itself, whatever the receipt)."""
    with httpx.Client(base_url=http, headers={"Authorization": f"Bearer {bearer}"}) as c:
        def create(pay_method: str):
            r = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                                   "pay_method": pay_method})
            r.raise_for_status()
            return r.json()
        paid, unpaid = create("Iap"), create("Alipay_AopApp")
        receipt = subprocess.run([sys.executable, "-m", "server", "sandbox-receipt", str(paid["id"])], cwd=ROOT,
                                 check=True, capture_output=True, text=True).stdout.strip()
        c.post(f"/api/v2/vip/check-iap-result/{paid['id']}", json={"receipt": receipt}).raise_for_status()
    return paid["id"], unpaid["id"]


def main(argv: list[str]) -> int:
    http = os.environ["VIPAY_HTTP"]
    bearer = token(USER_ID)
    paid, unpaid = orders(http, bearer)
    env = {**os.environ, "VIPAY_ORDER": str(unpaid), "VIPAY_PAID_ORDER": str(paid)}
    examples = os.environ.get("SCHEMATHESIS_EXAMPLES", "25")
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(ROOT / "sdk/schemathesis.toml"),
               "run", str(ROOT / "sdk/openapi.yaml"), "--url", http, "-H", f"Authorization: Bearer {bearer}",
               # Both declared schemes carry the token: a generated Access-Token is refused (401),
               # and the data behind it never reaches the operation's logic.
               "-H", f"Access-Token: {bearer}",
               "--checks", CHECKS, "--mode", "positive", "--max-examples", examples, "--seed", "1",
               "--phases", "examples,coverage,fuzzing", "--workers", "2", "--continue-on-failure", *argv]
    return subprocess.run(command, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
