"""Status callbacks (docs/openapi.md): verify the platform's signature over a text that
includes YOUR merchantId, the timestamp window and the nonce (replays refused through a
pluggable store), and get the typed report (vipay.openapi.v1.StatusCallback)."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from vipay.openapi.v1 import openapi_charge_pb2 as pb

from vipay_sdk.merchant import parse


def callback_signing_string(merchant_id: str, business_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join(["CALLBACK", merchant_id, business_id, timestamp, nonce]).encode() + b"\n" + body + b"\n"


class NonceStore(Protocol):
    def claim(self, key: str, ttl_seconds: float) -> bool:
        """True the first time `key` is seen within ttl_seconds (and remember it), else False."""


class MemoryNonceStore:
    """One process's memory (the default). Share a store (e.g. Redis SET NX EX) between processes."""

    def __init__(self):
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            for k in [k for k, until in self._seen.items() if until <= now]:
                del self._seen[k]
            if key in self._seen:
                return False
            self._seen[key] = now + ttl_seconds
            return True


class CallbackError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # missing_header | stale | bad_signature | bad_body | wrong_merchant | replayed


class CallbackHandler:
    def __init__(self, platform_public_key_pem: str, merchant_id: str, *, nonce_store: NonceStore | None = None,
                 max_skew_seconds: float = 300):
        self._key = serialization.load_pem_public_key(platform_public_key_pem.encode())
        self.merchant_id = merchant_id
        self.store = nonce_store or MemoryNonceStore()
        self.max_skew = max_skew_seconds

    def verify(self, headers: dict[str, str], body: bytes) -> pb.StatusCallback:
        """The verified report, or CallbackError. Header names in any case. Answer the platform
        `SUCCESS` (HTTP 200) after processing it idempotently by orderCode."""
        h = {k.lower(): v for k, v in headers.items()}
        try:
            timestamp, nonce, business_id, sign = h["timestamp"], h["nonce"], h["businessid"], h["sign"]
        except KeyError:
            raise CallbackError("missing_header", "a signing header is missing") from None
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > self.max_skew * 1000:
            raise CallbackError("stale", "timestamp outside the accepted window")
        try:
            self._key.verify(base64.b64decode(sign, validate=True),
                             callback_signing_string(self.merchant_id, business_id, timestamp, nonce, body),
                             padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            raise CallbackError("bad_signature", "the platform's signature does not verify for this merchant") from None
        try:
            report = parse(pb.StatusCallback, json.loads(body))
        except Exception as err:
            raise CallbackError("bad_body", f"the report is not the documented JSON: {err}") from None
        if report.merchant_id != self.merchant_id:
            raise CallbackError("wrong_merchant", "a report for another merchant")
        if not self.store.claim(f"{business_id}\n{nonce}", 2 * self.max_skew):
            raise CallbackError("replayed", "this nonce was already accepted")
        return report
