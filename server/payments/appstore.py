"""The App Store, through Apple's app-store-server-library.

- A StoreKit 2 signed transaction (JWS, ES256, x5c chain) is verified offline with
  SignedDataVerifier against the configured Apple root certificates (chain checked
  at the transaction's signedDate, OIDs of Apple's leaf and intermediate required);
  the library also checks bundleId and environment.
- A legacy base64 receipt is not trusted by itself: ReceiptUtility extracts a
  transaction id, and the App Store Server API (Get Transaction Info, ES256 key
  auth) returns the signed transaction, verified as above.
- App Store Server Notifications V2 are verified the same way (decode_notification).

appAccountToken: the app sets it at purchase to uuid5(ACCOUNT_NAMESPACE, "user:<id>")
for the signed-in user; we recompute it to bind a purchase to a user."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from appstoreserverlibrary.api_client import APIException, AppStoreServerAPIClient
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.receipt_utility import ReceiptUtility
from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier, VerificationException
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.payments.iap import ReceiptRejected, VerifiedPurchase

log = logging.getLogger(__name__)

# Fixed for ever: changing it unbinds every purchase made so far.
ACCOUNT_NAMESPACE = uuid.UUID("8c0a5b8e-2f4d-5a7e-9c61-6b1f3d2e4a90")


def account_token(user_id: int) -> str:
    return str(uuid.uuid5(ACCOUNT_NAMESPACE, f"user:{user_id}"))


def load_root_certificates(directory: str) -> list[bytes]:
    """DER bytes of every *.cer / *.der / *.pem in the directory."""
    roots = []
    for path in sorted(Path(directory).iterdir()):
        data = path.read_bytes()
        if path.suffix == ".pem":
            roots.append(x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER))
        elif path.suffix in (".cer", ".der"):
            roots.append(data)
    if not roots:
        raise ValueError(f"no Apple root certificates in {directory}")
    return roots


@dataclass(frozen=True)
class AppStoreNotification:
    notification_uuid: str
    notification_type: str
    subtype: str
    transaction: VerifiedPurchase | None


class _GatewayAppStoreClient(AppStoreServerAPIClient):
    """The library's client at a configured host: it only knows Apple's hosts (set from
    the environment in its constructor) and builds every URL in `_get_full_url`."""

    def __init__(self, base_url: str, signing_key: bytes, key_id: str, issuer_id: str, bundle_id: str,
                 environment: Environment):
        super().__init__(signing_key, key_id, issuer_id, bundle_id, environment)
        self._configured_base_url = base_url

    def _get_full_url(self, path: str) -> str:
        return self._configured_base_url + path


class AppStoreVerifier:
    def __init__(self, verifier: SignedDataVerifier, api: AppStoreServerAPIClient | None):
        self._verifier = verifier
        self._api = api

    @classmethod
    def from_settings(cls, s) -> "AppStoreVerifier":
        environment = Environment(s.appstore_environment)
        verifier = SignedDataVerifier(load_root_certificates(s.appstore_root_certs_dir), False, environment,
                                      s.appstore_bundle_id, s.appstore_app_apple_id)
        api = None
        key = s.secret("appstore_private_key")
        if key and s.appstore_key_id and s.appstore_issuer_id:
            credentials = (key.encode(), s.appstore_key_id, s.appstore_issuer_id, s.appstore_bundle_id, environment)
            base_url = s.appstore_api_base_url.rstrip("/")
            api = _GatewayAppStoreClient(base_url, *credentials) if base_url else AppStoreServerAPIClient(*credentials)
        return cls(verifier, api)

    def account_token(self, user_id: int) -> str:
        return account_token(user_id)

    def verify(self, receipt: str) -> VerifiedPurchase:
        receipt = receipt.strip()
        if receipt.count(".") == 2:  # a JWS: header.payload.signature
            return self._signed_transaction(receipt)
        return self._signed_transaction(self._fetch(self._legacy_transaction_id(receipt)))

    def _signed_transaction(self, jws: str) -> VerifiedPurchase:
        try:
            txn = self._verifier.verify_and_decode_signed_transaction(jws)
        except VerificationException as exc:
            raise ReceiptRejected(f"signed transaction not verified ({exc.status.name})") from exc
        if txn.revocationDate is not None:
            raise ReceiptRejected("the transaction was refunded or revoked")
        if not txn.transactionId or not txn.productId:
            raise ReceiptRejected("the transaction has no id or product")
        return VerifiedPurchase(
            transaction_id=txn.transactionId, product_id=txn.productId,
            app_account_token=txn.appAccountToken or "",
            original_transaction_id=txn.originalTransactionId or "",
            environment=txn.rawEnvironment or "",
            quantity=txn.quantity or 1,
        )

    def _legacy_transaction_id(self, receipt: str) -> str:
        utility = ReceiptUtility()
        transaction_id = None
        try:
            transaction_id = utility.extract_transaction_id_from_app_receipt(receipt)
        except ValueError:
            try:  # the older per-transaction receipt format
                transaction_id = utility.extract_transaction_id_from_transaction_receipt(receipt)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ReceiptRejected("not a signed transaction or an App Store receipt") from exc
        if not transaction_id:
            raise ReceiptRejected("the receipt holds no in-app purchase")
        return transaction_id

    def _fetch(self, transaction_id: str) -> str:
        if self._api is None:
            raise ReceiptRejected("legacy receipts need the App Store Server API key (APPSTORE_KEY_ID ...)")
        try:
            signed = self._api.get_transaction_info(transaction_id).signedTransactionInfo
        except APIException as exc:
            if exc.http_status_code == 404:
                raise ReceiptRejected("the App Store does not know this transaction") from exc
            raise ReceiptRejected(f"the App Store Server API answered {exc.http_status_code}") from exc
        except Exception as exc:  # network errors
            raise ReceiptRejected(f"the App Store Server API is unreachable: {exc}") from exc
        if not signed:
            raise ReceiptRejected("the App Store returned no transaction")
        return signed

    def decode_notification(self, signed_payload: str) -> AppStoreNotification:
        try:
            note = self._verifier.verify_and_decode_notification(signed_payload)
            txn = None
            if note.data is not None and note.data.signedTransactionInfo:
                decoded = self._verifier.verify_and_decode_signed_transaction(note.data.signedTransactionInfo)
                txn = VerifiedPurchase(decoded.transactionId or "", decoded.productId or "",
                                       decoded.appAccountToken or "", decoded.originalTransactionId or "",
                                       decoded.rawEnvironment or "")
        except VerificationException as exc:
            raise ReceiptRejected(f"notification not verified ({exc.status.name})") from exc
        if not note.notificationUUID:
            raise ReceiptRejected("notification without notificationUUID")
        return AppStoreNotification(note.notificationUUID, note.rawNotificationType or "", note.rawSubtype or "", txn)
