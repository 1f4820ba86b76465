"""api-docs/004 for merchants: signing, typed refusals (MerchantError), retries (the same
body and bizCode, a fresh nonce and timestamp per attempt). See docs/openapi.md."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from google.protobuf import json_format
from vipay.openapi.v1 import openapi_charge_pb2 as pb

from vipay_sdk.errors import MerchantError, OpenApiStatus
from vipay_sdk.retry import DEFAULT_TIMEOUT, RetryPolicy, with_retries
from vipay_sdk.transport import send

CHARGE_PATH = "/v1/openapi/order/VIPCharge"
QUERY_ORDER_PATH = "/v1/openapi/order/query"
BALANCE_PATH = "/v1/openapi/merchant/balance"


def signing_string(method: str, path: str, business_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """Six lines, each ending in \\n: METHOD, PATH, businessId, timestamp, nonce, body (verbatim)."""
    return "\n".join([method, path, business_id, timestamp, nonce]).encode() + b"\n" + body + b"\n"


@functools.lru_cache(maxsize=8)
def _private_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def sign_rsa(private_key_pem: str, message: bytes) -> str:
    return base64.b64encode(_private_key(private_key_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def sign_md5(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.md5).hexdigest()


def parse(message_type, data):
    """Into the generated type, ignoring fields this version does not know (forward compatible)."""
    return json_format.ParseDict(data, message_type(), ignore_unknown_fields=True)


class MerchantClient:
    def __init__(self, base_url: str, merchant_id: str, business_id: str, *, private_key_pem: str | None = None,
                 md5_secret: str | None = None, sign_type: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy = RetryPolicy(), http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.merchant_id, self.business_id = merchant_id, business_id
        self.private_key_pem, self.md5_secret = private_key_pem, md5_secret
        self.sign_type = sign_type or ("SHA256-RSA" if private_key_pem else "MD5")
        self.retry = retry
        self.http = http or httpx.Client(timeout=timeout)

    def signed_headers(self, path: str, body: bytes, *, nonce: str | None = None,
                       timestamp: str | None = None) -> dict[str, str]:
        nonce = nonce or secrets.token_hex(16)
        timestamp = timestamp or str(int(time.time() * 1000))
        message = signing_string("POST", path, self.business_id, timestamp, nonce, body)
        sign = (sign_rsa(self.private_key_pem or "", message) if self.sign_type == "SHA256-RSA"
                else sign_md5(self.md5_secret or "", message))
        return {"Content-Type": "application/json; charset=utf-8", "businessId": self.business_id,
                "nonce": nonce, "timestamp": timestamp, "sign": sign, "signType": self.sign_type}

    def post(self, path: str, payload: dict, response_type):
        """Every 004 call may be repeated (the charge is idempotent by bizCode): network errors,
        429/503 and 5000 are retried, each attempt freshly signed (a nonce is accepted once)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

        def attempt(_: int):
            a = send(self.http, "POST", self.base_url + path, self.signed_headers(path, body), body)
            data = a.json()
            status = data.get("status") if isinstance(data, dict) else None
            if status != OpenApiStatus.SUCCESS:
                if not isinstance(status, int):
                    status = OpenApiStatus.INTERNAL if a.status >= 500 and a.status not in (502, 503, 504) else a.status
                message = data.get("message", "") if isinstance(data, dict) else a.text[:200]
                raise MerchantError(status, str(message), data.get("data") if isinstance(data, dict) else None,
                                    a.request_id, a.retry_after)
            return parse(response_type, data)

        return with_retries(True, self.retry, attempt)

    def vip_charge(self, product_code: str, account: str, biz_code: str, mobile: str = "",
                   callback_url: str = "") -> pb.VipChargeResponse:
        """A failed order (unknown account, refunded) raises MerchantError 4012 with the order in `data`."""
        body = {"merchantId": self.merchant_id, "businessId": self.business_id, "productCode": product_code,
                "account": account, "bizCode": biz_code}
        if mobile:
            body["mobile"] = mobile
        if callback_url:
            body["callbackUrl"] = callback_url
        return self.post(CHARGE_PATH, body, pb.VipChargeResponse)

    def query_order(self, *, biz_code: str = "", order_code: str = "") -> pb.QueryOrderResponse:
        body = {"merchantId": self.merchant_id, "businessId": self.business_id}
        if biz_code:
            body["bizCode"] = biz_code
        if order_code:
            body["orderCode"] = order_code
        return self.post(QUERY_ORDER_PATH, body, pb.QueryOrderResponse)

    def balance(self) -> pb.QueryBalanceResponse:
        return self.post(BALANCE_PATH, {"merchantId": self.merchant_id, "businessId": self.business_id},
                         pb.QueryBalanceResponse)
