"""Reference merchant client for the VIP direct-charge OpenAPI (docs/openapi.md).

Self-contained on purpose (only httpx and cryptography): merchants can copy it.
It builds the signing string, signs with SHA256-RSA (PKCS#1 v1.5, your private
key) or MD5 (HMAC-MD5 with your secret), sends the request, and verifies the
platform's signed status callbacks.

    client = MerchantClient("https://api.example.com", merchant_id="166", business_id="166",
                            private_key_pem=open("merchant_166.pem").read())
    reply = client.vip_charge(product_code="87103", account="w23b52", biz_code="87103")
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

CHARGE_PATH = "/v1/openapi/order/VIPCharge"
QUERY_ORDER_PATH = "/v1/openapi/order/query"
BALANCE_PATH = "/v1/openapi/merchant/balance"


def signing_string(method: str, path: str, business_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """Six lines, each ending in \\n: METHOD, PATH, businessId, timestamp, nonce, body (verbatim)."""
    return "\n".join([method, path, business_id, timestamp, nonce]).encode() + b"\n" + body + b"\n"


def callback_signing_string(merchant_id: str, business_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """Seven lines: CALLBACK, merchantId, businessId, timestamp, nonce, body (verbatim)."""
    return "\n".join(["CALLBACK", merchant_id, business_id, timestamp, nonce]).encode() + b"\n" + body + b"\n"


@functools.lru_cache(maxsize=8)
def _private_key(private_key_pem: str):
    # Parsing checks the key and costs ~50 ms; signing itself ~1 ms. Parse once.
    return serialization.load_pem_private_key(private_key_pem.encode(), password=None)


def sign_rsa(private_key_pem: str, message: bytes) -> str:
    key = _private_key(private_key_pem)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def sign_md5(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.md5).hexdigest()


def verify_callback(platform_public_key_pem: str, headers: dict[str, str], body: bytes, *, merchant_id: str,
                    max_skew_ms: int = 5 * 60 * 1000) -> bool:
    """True when a status callback really comes from the platform, is fresh and is
    for YOUR merchant_id. Pass your own merchantId, never one read from the request:
    all merchants' callbacks are signed with one platform key, so this is what
    refuses another merchant's report replayed to you.
    `headers` may use any case. Remember the nonces you accepted to refuse replays."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp, nonce, business_id = h["timestamp"], h["nonce"], h["businessid"]
        signature = base64.b64decode(h["sign"], validate=True)
        if abs(int(time.time() * 1000) - int(timestamp)) > max_skew_ms:
            return False
        key = serialization.load_pem_public_key(platform_public_key_pem.encode())
        key.verify(signature, callback_signing_string(merchant_id, business_id, timestamp, nonce, body),
                   padding.PKCS1v15(), hashes.SHA256())
        return json.loads(body).get("merchantId") == merchant_id
    except (KeyError, ValueError, AttributeError, InvalidSignature):
        return False


class MerchantClient:
    def __init__(self, base_url: str, merchant_id: str, business_id: str, *, private_key_pem: str | None = None,
                 md5_secret: str | None = None, sign_type: str | None = None, http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.merchant_id, self.business_id = merchant_id, business_id
        self.private_key_pem, self.md5_secret = private_key_pem, md5_secret
        self.sign_type = sign_type or ("SHA256-RSA" if private_key_pem else "MD5")
        self.http = http or httpx.Client(timeout=10)

    def signed_headers(self, path: str, body: bytes, *, nonce: str | None = None,
                       timestamp: str | None = None) -> dict[str, str]:
        nonce = nonce or secrets.token_hex(16)
        timestamp = timestamp or str(int(time.time() * 1000))
        message = signing_string("POST", path, self.business_id, timestamp, nonce, body)
        if self.sign_type == "SHA256-RSA":
            sign = sign_rsa(self.private_key_pem or "", message)
        else:
            sign = sign_md5(self.md5_secret or "", message)
        return {"Content-Type": "application/json; charset=utf-8", "businessId": self.business_id,
                "nonce": nonce, "timestamp": timestamp, "sign": sign, "signType": self.sign_type}

    def post(self, path: str, payload: dict, **sign_options) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return self.http.post(self.base_url + path, content=body, headers=self.signed_headers(path, body, **sign_options))

    def charge_body(self, product_code: str, account: str, biz_code: str, mobile: str = "",
                    callback_url: str = "") -> dict:
        body = {"merchantId": self.merchant_id, "businessId": self.business_id, "productCode": product_code,
                "account": account, "bizCode": biz_code}
        if mobile:
            body["mobile"] = mobile
        if callback_url:
            body["callbackUrl"] = callback_url
        return body

    def vip_charge(self, product_code: str, account: str, biz_code: str, mobile: str = "",
                   callback_url: str = "", **sign_options) -> dict:
        return self.post(CHARGE_PATH, self.charge_body(product_code, account, biz_code, mobile, callback_url),
                         **sign_options).json()

    def query_order(self, *, biz_code: str = "", order_code: str = "") -> dict:
        body = {"merchantId": self.merchant_id, "businessId": self.business_id}
        if biz_code:
            body["bizCode"] = biz_code
        if order_code:
            body["orderCode"] = order_code
        return self.post(QUERY_ORDER_PATH, body).json()

    def balance(self) -> dict:
        return self.post(BALANCE_PATH, {"merchantId": self.merchant_id, "businessId": self.business_id}).json()

    def verify_callback(self, platform_public_key_pem: str, headers: dict[str, str], body: bytes) -> bool:
        """verify_callback() for this client's own merchantId."""
        return verify_callback(platform_public_key_pem, headers, body, merchant_id=self.merchant_id)
