"""App Store purchase verification behind one interface.

The sandbox verifier accepts receipts it signed itself: base64url(JSON).hex-HMAC,
the JSON holding transactionId, productId and appAccountToken (the user id)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VerifiedPurchase:
    transaction_id: str
    product_id: str
    app_account_token: str
    original_transaction_id: str = ""
    environment: str = ""
    quantity: int = 1  # StoreKit's quantity: how many of the product this one transaction bought


class ReceiptRejected(Exception):
    pass


class IapVerifier(Protocol):
    def verify(self, receipt: str) -> VerifiedPurchase: ...

    def account_token(self, user_id: int) -> str:
        """The appAccountToken a purchase by this user must carry."""
        ...


class SandboxIapVerifier:
    def __init__(self, secret: str):
        self._key = hashlib.sha256(b"iap:" + secret.encode()).digest()

    def account_token(self, user_id: int) -> str:
        return str(user_id)

    def issue(self, transaction_id: str, product_id: str, app_account_token: str) -> str:
        payload = json.dumps(
            {"transactionId": transaction_id, "productId": product_id, "appAccountToken": app_account_token},
            separators=(",", ":"),
        ).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return encoded + "." + hmac.new(self._key, encoded.encode(), hashlib.sha256).hexdigest()

    def verify(self, receipt: str) -> VerifiedPurchase:
        encoded, _, mac = receipt.partition(".")
        expected = hmac.new(self._key, encoded.encode(), hashlib.sha256).hexdigest()
        if not mac or not hmac.compare_digest(mac, expected):
            raise ReceiptRejected("bad receipt signature")
        try:
            data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            return VerifiedPurchase(str(data["transactionId"]), str(data["productId"]), str(data["appAccountToken"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ReceiptRejected("malformed receipt") from exc
