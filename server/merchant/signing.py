"""Crypto of the merchant OpenAPI: SHA256-RSA (PKCS#1 v1.5) with the merchant's
public key, HMAC-MD5 with its secret (constant-time compare), key generation for
the operator CLI, and the platform key that signs status callbacks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def verify_rsa(public_pem: str, message: bytes, sign_b64: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        signature = base64.b64decode(sign_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def md5_sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.md5).hexdigest()


def verify_md5(secret: str, message: bytes, sign_hex: str) -> bool:
    return hmac.compare_digest(md5_sign(secret, message).encode(), sign_hex.strip().lower().encode())


def generate_rsa_keypair(bits: int = 2048) -> tuple[str, str]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return private, public_pem_of(key)


def public_pem_of(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def normalise_public_key(pem: str) -> str:
    """Checks that `pem` is an RSA public key of at least 2048 bits; returns it re-encoded."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("an RSA public key of at least 2048 bits is required")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def generate_md5_secret() -> str:
    return secrets.token_hex(24)


class PlatformSigner:
    """Signs status callbacks with the platform's RSA key (merchants verify with the
    public key the operator hands them: `python -m server merchant platform-key`)."""

    def __init__(self, private_pem: str):
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the platform callback key must be an RSA private key")
        self._key = key
        self.public_pem = public_pem_of(key)

    @classmethod
    def from_file(cls, path: str | Path) -> "PlatformSigner":
        return cls(Path(path).read_text())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
