"""The spec's examples, recorded from the live stack (run inside `python -m sdk.stack`).

    python -m sdk.stack -- python -m sdk.examples record   # make examples: writes sdk/openapi_gen/examples.json
    python -m sdk.stack -- python -m sdk.examples check    # make sdk-test: the spec's examples are what the stack answers

Each documented operation is called once as a client would (the 004 calls signed with the
stack's merchant key); what came back (status, content type, body) and what was sent become
the operation's example in sdk/openapi.yaml (sdk/openapi_gen/spec.py reads examples.json).
`check` records again and compares with the examples in the committed spec: the same status,
content type and shape everywhere, and the same values except where they change per run
(VOLATILE: ids made per run, times, signatures, payment links)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk/python/src"))
EXAMPLES = ROOT / "sdk/openapi_gen/examples.json"
SPEC = ROOT / "sdk/openapi.yaml"
USER_ID = 11

# Values that differ from run to run (keys anywhere in a body); their shape is still compared.
# Ids and balances depend on what ran on the stack before the check (make sdk-test runs the
# SDK suites first), so they are volatile too.
VOLATILE = {
    "id", "balance",
    "trade_no", "tradeNo", "orderCode", "order_code", "created_at", "updated_at", "paid_at", "expired_at", "expires_at",
    "createdAt", "updatedAt", "paidAt", "time", "timestamp", "createTime", "create_time", "pay_time", "payTime",
    "requestId", "request_id", "pay_params", "payParams", "payUrl", "pay_url", "qrcode", "qr_code", "url", "orderStr",
    "order_str", "sign", "nonce", "serverTime", "server_time", "end_at", "endAt", "start_at", "startAt", "expireAt",
    "expire_at", "date", "callPayInfo", "body", "pay_data", "orderNumber", "createdDate", "finishedAt",
    "converted_days", "pay_data_alipay", "pay_data_wechat", "payOrderId", "out_trade_no", "outTradeNo", "chargeTime", "finishTime", "orderTime", "key", "img",
}
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


def token() -> str:
    return subprocess.run([os.environ["VIPAY_PYTHON"], "-m", "server", "token", "--user-id", str(USER_ID)],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def answer(r: httpx.Response, sent=None) -> dict:
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    if ctype == "application/json":
        body = r.json()
    elif ctype.startswith("text/"):
        body = r.text
    else:
        body = None  # images: no example
    out = {"status": r.status_code, "contentType": ctype, "response": body}
    if sent is not None:
        out["request"] = sent
    return out


def record(http: str) -> dict[str, dict]:
    from vipay_sdk.merchant import MerchantClient

    out: dict[str, dict] = {}
    user = httpx.Client(base_url=http, headers={"Authorization": f"Bearer {token()}"}, timeout=30)
    anon = httpx.Client(base_url=http, timeout=30)

    def call(op: str, client: httpx.Client, method: str, path: str, *, json_body=None, **kw) -> httpx.Response:
        r = client.request(method, path, json=json_body, **kw)
        out[op] = answer(r, json_body)
        return r

    call("Ping", anon, "GET", "/ping")
    call("GetBootstrappers", anon, "GET", "/api/v2/bootstrappers")
    call("GetVipConfigs", anon, "GET", "/api/v2/vip/configs")
    call("GetVipProtocol", anon, "GET", "/api/v2/vip/protocol")
    order = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}
    created = call("CreateVipOrder", user, "POST", "/api/v2/vip/orders", json_body=order).json()
    # Paid through the sandbox channel (signed notification), so the reads show a paid order.
    subprocess.run([os.environ["VIPAY_PYTHON"], "-m", "server", "sandbox-pay", created["trade_no"]], cwd=ROOT,
                   check=True, capture_output=True)
    call("ListVipOrders", user, "GET", "/api/v2/vip/orders", params={"offset": 0, "limit": 15})
    call("GetVipOrder", user, "GET", f"/api/v2/vip/orders/{created['id']}")
    call("CheckVipOrder", user, "GET", f"/api/v2/vip/check-order/{created['id']}")
    call("GetMyMembership", user, "GET", "/api/v2/vip/membership")
    call("ExchangeVip", user, "PATCH", "/api/v2/vip/exchange-vip", json_body={"level": "high"})
    # An App Store purchase: the stack's sandbox App Store signs the transaction (JWS).
    iap = user.post("/api/v2/vip/orders", json={**order, "pay_method": "Iap"}).json()
    receipt = subprocess.run([os.environ["VIPAY_PYTHON"], "-m", "server", "sandbox-receipt", str(iap["id"]),
                              "--transaction-id", "2000000000000001"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.strip()
    call("CheckIapResult", user, "POST", f"/api/v2/vip/check-iap-result/{iap['id']}", json_body={"receipt": receipt})
    out["CheckIapResult"]["request"] = {"receipt": "<the StoreKit 2 signed transaction (JWS)>"}
    unpaid = user.post("/api/v2/vip/orders", json=order).json()
    call("DeleteVipOrder", user, "DELETE", f"/api/v2/vip/orders/{unpaid['id']}")

    # Provider notifications: what a forged (unsigned) one is answered.
    forged = b"out_trade_no=" + created["trade_no"].encode() + b"&trade_status=TRADE_SUCCESS&sign=forged"
    call("HandlePaymentNotification", anon, "POST", f"/api/v2/vip/orders/{created['id']}/sandbox-callback",
         content=forged, headers={"content-type": "application/x-www-form-urlencoded"})
    call("HandleAppStoreNotification", anon, "POST", "/api/v2/vip/app-store-notifications",
         json_body={"signedPayload": "not.a.jws"})
    call("HandleRefundNotification", anon, "POST", "/api/refunds/sandbox-callback",
         content=b"refund_status=REFUND_SUCCESS", headers={"content-type": "application/x-www-form-urlencoded"})
    call("HandleRechargeNotification", anon, "POST", "/api/recharge/orders/1/sandbox-callback",
         content=b"trade_status=TRADE_SUCCESS", headers={"content-type": "application/x-www-form-urlencoded"})

    m = MerchantClient(http, os.environ["VIPAY_MERCHANT_ID"], os.environ["VIPAY_MERCHANT_ID"],
                       private_key_pem=Path(os.environ["VIPAY_MERCHANT_KEY_FILE"]).read_text())

    def merchant(op: str, path: str, body: dict) -> dict:
        raw = json.dumps(body, separators=(",", ":")).encode()
        r = anon.post(path, content=raw, headers=m.signed_headers(path, raw))
        out[op] = answer(r, body)
        return r.json()

    ids = {"merchantId": m.merchant_id, "businessId": m.business_id}
    merchant("VipCharge", "/v1/openapi/order/VIPCharge",
             {**ids, "productCode": os.environ["VIPAY_MERCHANT_PRODUCT"], "account": os.environ["VIPAY_MERCHANT_ACCOUNT"],
              "bizCode": "example-0001"})
    merchant("QueryOrder", "/v1/openapi/order/query", {**ids, "bizCode": "example-0001"})
    merchant("QueryBalance", "/v1/openapi/merchant/balance", ids)

    index = call("GetChargeIndex", user, "GET", "/charge/index").json()
    package = index["d"]["chargeList"][0]
    call("CreateChargePayment", user, "POST", "/charge/pay",
         json_body={"id": package["id"], "payType": index["d"]["payTypes"][0]["typeName"]})
    plan = call("GetRecharge", user, "GET", "/api/recharge").json()["data"]["rechargeAmount"][0]
    call("CreateRechargeOrder", user, "POST", "/api/recharge/order",
         json_body={"id": plan["id"], "price": plan["price"], "payModeId": plan["payModes"][0]["id"]})
    call("GetRechargeHistory", user, "GET", "/api/recharge/history", params={"page": 1, "rows": 20})
    call("GetRechargeCaptcha", user, "GET", "/api/recharge/captcha")
    call("GetRechargeCenter", user, "GET", "/index.php", params={"s": "/api/recharge/center", "client": "APP"},
         headers={"storeId": "1"})
    return out


def spec_examples() -> dict[str, dict]:
    """The examples the committed spec carries, by operationId."""
    spec = yaml.safe_load(SPEC.read_text())
    found = {}
    for item in spec["paths"].values():
        for op in item.values():
            for status, resp in op["responses"].items():
                for ctype, media in (resp.get("content") or {}).items():
                    if "example" in media:
                        found[op["operationId"]] = {"status": int(status), "contentType": ctype,
                                                    "response": media["example"]}
            if "response" not in found.get(op["operationId"], {}) and op["responses"].get("204"):
                found[op["operationId"]] = {"status": 204, "contentType": "", "response": None}
    return found


def differences(where: str, want, got) -> list[str]:
    if type(want) is not type(got) and not (isinstance(want, (int, float)) and isinstance(got, (int, float))
                                             and not isinstance(want, bool) and not isinstance(got, bool)):
        return [f"{where}: {type(want).__name__} in the spec, {type(got).__name__} from the stack"]
    if isinstance(want, dict):
        out = [f"{where}: keys {sorted(set(want) ^ set(got))} differ"] if set(want) != set(got) else []
        for k in set(want) & set(got):
            if k in VOLATILE:
                out += [] if type(want[k]) is type(got[k]) else [f"{where}.{k}: type changed"]
            else:
                out += differences(f"{where}.{k}", want[k], got[k])
        return out
    if isinstance(want, list):
        if len(want) != len(got):
            return [f"{where}: {len(want)} items in the spec, {len(got)} from the stack"]
        return [d for i, (a, b) in enumerate(zip(want, got)) for d in differences(f"{where}[{i}]", a, b)]
    if isinstance(want, str) and ISO_TIME.match(want) and isinstance(got, str) and ISO_TIME.match(got):
        return []
    return [] if want == got else [f"{where}: {want!r} in the spec, {got!r} from the stack"]


def main(argv: list[str]) -> int:
    recorded = record(os.environ["VIPAY_HTTP"])
    if argv[:1] == ["record"]:
        # The stack's free port shown as the documented one (the spec's server, `make run`).
        port = os.environ["VIPAY_HTTP"].rsplit(":", 1)[1]
        text = json.dumps(recorded, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        text = text.replace(f"127.0.0.1:{port}", "127.0.0.1:8080").replace(f"127.0.0.1%3A{port}", "127.0.0.1%3A8080")
        EXAMPLES.write_text(text)
        print(f"{len(recorded)} operations recorded into {EXAMPLES.relative_to(ROOT)}")
        return 0
    spec = yaml.safe_load(SPEC.read_text())
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    documented = spec_examples()
    problems = [f"{op}: no example in sdk/openapi.yaml" for op in sorted(operations - set(documented))
                if recorded.get(op, {}).get("response") is not None or recorded.get(op, {}).get("status") == 204]
    problems += [f"{op}: never called by the recorder" for op in sorted(operations - set(recorded))]
    for op, got in sorted(recorded.items()):
        want = documented.get(op)
        if want is None:
            continue
        if (want["status"], want["contentType"]) != (got["status"], got["contentType"]):
            problems.append(f"{op}: {want['status']} {want['contentType']} in the spec, "
                            f"{got['status']} {got['contentType']} from the stack")
            continue
        problems += differences(op, want["response"], got["response"])
    for p in problems:
        print("examples:", p, file=sys.stderr)
    print(f"examples: {len(documented)} operations' examples checked against the live stack, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
