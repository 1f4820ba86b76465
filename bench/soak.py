"""`make soak` (issue 17 §4): a stack (`python -m server serve` + Envoy, on a fresh SQLite
database or SOAK_DATABASE_URL) under mixed load for SOAK_SECONDS (900; CI runs 60):
catalog and order-status reads, VIP orders paid through the sandbox, 002 recharges paid
the same way, 004 merchant charges with a local callback receiver. Reports the server's
memory and open-file slopes, every error, the callback lag (charge -> callback received)
and `ledger-check`. Exits 1 on any error, an undelivered callback or a broken ledger."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench import callbacks
from bench.__main__ import ROOT, Stack, token
from clients.merchant_client import MerchantClient

SECONDS = float(os.environ.get("SOAK_SECONDS", "900"))
RATE = float(os.environ.get("SOAK_RATE", "40"))  # requests/s of each kind of work, roughly
USERS = 50
FORM = {"content-type": "application/x-www-form-urlencoded"}


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, value), per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples) or 1e-9
    return sum((t - mt) * (v - mv) for t, v in samples) / den * 60


def process_sample(pid: int) -> tuple[float, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="vipay-soak-"))
    url = os.environ.get("SOAK_DATABASE_URL") or f"sqlite:///{workdir / 'soak.db'}"
    secret = os.urandom(32).hex()
    st = Stack(url, workdir, secret)
    st.env.update(RECHARGE_ORDER_LIMIT_PER_USER="100000000", RECHARGE_ORDER_LIMIT_PER_IP="100000000",
                  OPENAPI_DISPATCHER_ENABLED="true", LOG_LEVEL="WARNING")
    st.prepare()
    receiver = callbacks.Receiver()
    st.start()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if url.startswith("postgresql://") else url)
    from server.payments.sandbox import SandboxChannel

    sandbox = SandboxChannel(secret)
    base = f"http://127.0.0.1:{st.http_port}"
    errors: Counter[str] = Counter()
    done: Counter[str] = Counter()
    charged_at: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def check(kind: str, r: httpx.Response, ok=(200, 201)) -> bool:
        with lock:
            if r.status_code in ok:
                done[kind] += 1
                return True
            errors[f"{kind} HTTP {r.status_code}"] += 1
        return False

    def paced(fn):
        def run():
            with httpx.Client(base_url=base, timeout=30) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        fn(client)
                    except Exception as exc:  # counted: a soak reports, it does not stop
                        with lock:
                            errors[f"{fn.__name__} {type(exc).__name__}"] += 1
                    time.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))
        return threading.Thread(target=run, name=fn.__name__, daemon=True)

    def reads(client):
        user = random.randint(1, USERS)
        check("read configs", client.get("/api/v2/vip/configs"))
        check("read orders", client.get("/api/v2/vip/orders", headers={"Authorization": f"Bearer {token(secret, user)}"}))

    def vip_order(client):
        auth = {"Authorization": f"Bearer {token(secret, random.randint(1, USERS))}"}
        r = client.post("/api/v2/vip/orders", headers=auth, json={"timezone": "Asia/Shanghai", "duration": 3,
                                                                  "level": "middle", "pay_method": "Alipay_AopApp"})
        if check("vip order", r):
            o = r.json()
            check("vip status", client.get(f"/api/v2/vip/check-order/{o['id']}", headers=auth))
            note = sandbox.notification_for(o["trade_no"], o["pay_amount"], "PAID")
            check("vip pay", client.post(f"/api/v2/vip/orders/{o['id']}/sandbox-callback", content=note,
                                         headers=FORM))

    def recharge(client):
        auth = {"Authorization": f"Bearer {token(secret, random.randint(1, USERS))}"}
        r = client.post("/api/recharge/order", headers=auth, json={"id": 1, "price": "28", "payModeId": 2})
        if r.status_code == 200 and r.json().get("success"):
            done["recharge order"] += 1
            number = r.json()["data"]["orderNumber"]
            with engine.connect() as conn:
                order_id, amount = conn.execute(text("SELECT id, amount FROM recharge_orders WHERE order_number = :n"),
                                                {"n": number}).one()
            note = sandbox.notification_for(number, amount, "PAID")
            check("recharge pay", client.post(f"/api/recharge/orders/{order_id}/sandbox-callback", content=note,
                                              headers=FORM))
        else:
            with lock:
                errors[f"recharge order {r.status_code} {r.text[:80]}"] += 1

    merchant_client = {}

    def charge(client):
        c = merchant_client.setdefault(threading.get_ident(), MerchantClient(
            base, callbacks.MERCHANT, callbacks.BUSINESS, private_key_pem=keys.rsa_private_key))
        biz = f"soak-{time.monotonic_ns()}-{random.randint(0, 1 << 30)}"
        with lock:
            charged_at[biz] = time.monotonic()
        answer = c.vip_charge(callbacks.PRODUCT, callbacks.ACCOUNT, biz, callback_url=receiver.url)
        with lock:
            if answer.get("status") == 200:
                done["merchant charge"] += 1
            else:
                errors[f"merchant charge {answer.get('status')}"] += 1

    # A merchant with a receiver on loopback (bench/callbacks.py sets it up the same way).
    from functools import partial

    from server.merchant.merchants import MerchantRegistry
    from server.platform.database import make_engine, make_session_factory
    from server.platform.unit_of_work import UnitOfWork

    reg_engine = make_engine(engine.url.render_as_string(hide_password=False))
    registry = MerchantRegistry(partial(UnitOfWork, make_session_factory(reg_engine)))
    keys = registry.create(callbacks.MERCHANT, "soak merchant", [callbacks.BUSINESS], callback_url=receiver.url)
    registry.set_product(callbacks.MERCHANT, callbacks.PRODUCT, "middle", 3, callbacks.PRICE_FEN)
    registry.top_up(callbacks.MERCHANT, 10**12)
    registry.link_account(callbacks.ACCOUNT, 777, "15012616978")
    reg_engine.dispose()

    samples: list[tuple[float, float, int]] = []
    workers = [paced(fn) for fn in (reads, vip_order, recharge, charge)]
    started = time.monotonic()
    for w in workers:
        w.start()
    print(f"soak: {SECONDS:g} s of mixed load on {url.split(':')[0]} ...", file=sys.stderr, flush=True)
    while time.monotonic() - started < SECONDS:
        rss, fds = process_sample(st.server.pid)
        samples.append((time.monotonic() - started, rss, fds))
        time.sleep(min(5.0, max(SECONDS / 60, 0.5)))
    stop.set()
    for w in workers:
        w.join(60)
    # Callbacks: every charge's report arrives (drained within a grace period).
    deadline = time.monotonic() + 30
    while len(receiver.bodies) < done["merchant charge"] and time.monotonic() < deadline:
        time.sleep(0.2)
    lags = []
    with receiver.lock:
        for body, arrived in zip(receiver.bodies_in_order, receiver.arrivals):
            biz = json.loads(body).get("bizCode")
            if biz in charged_at:
                lags.append(arrived - charged_at[biz])
    st.stop()
    receiver.stop()
    ledger = subprocess.run([sys.executable, "-m", "server", "ledger-check"], env=st.env, cwd=ROOT,
                            capture_output=True, text=True)
    engine.dispose()
    half = [s for s in samples if s[0] >= samples[-1][0] / 2] if samples else []
    lags.sort()
    report = {
        "seconds": SECONDS, "done": dict(done), "errors": dict(errors),
        "rss_mb": {"first": round(samples[0][1], 1), "last": round(samples[-1][1], 1),
                   "slope_mb_per_min_second_half": round(slope_per_minute([(t, r) for t, r, _ in half]), 3)},
        "fds": {"first": samples[0][2], "last": samples[-1][2],
                "slope_per_min_second_half": round(slope_per_minute([(t, f) for t, _, f in half]), 3)},
        "callbacks": {"charged": done["merchant charge"], "received": len(receiver.bodies),
                      "lag_p50_s": round(lags[len(lags) // 2], 3) if lags else None,
                      "lag_max_s": round(lags[-1], 3) if lags else None},
        "ledger_check": (ledger.stdout + ledger.stderr).strip()[-300:], "ledger_ok": ledger.returncode == 0,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    shutil.rmtree(workdir, ignore_errors=True)
    failed = (errors or not report["ledger_ok"] or report["callbacks"]["received"] < report["callbacks"]["charged"])
    print("soak: " + ("FAILED" if failed else "ok"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
