"""Keys and certificates generated for each test session (never committed)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

APPLE_LEAF_OID = "1.2.840.113635.100.6.11.1"
APPLE_INTERMEDIATE_OID = "1.2.840.113635.100.6.2.1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def bare_base64(pem: str) -> str:
    """The form Alipay's console shows keys in: base64 without PEM lines."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def rsa_sign(key, message: str | bytes) -> str:
    data = message.encode() if isinstance(message, str) else message
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key, message: str | bytes, signature_b64: str) -> bool:
    data = message.encode() if isinstance(message, str) else message
    try:
        public_key.verify(base64.b64decode(signature_b64), data, padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")])


def _cert(subject_key, subject: str, issuer_key, issuer: str, *, ca: bool, extra_oid: str | None,
          serial: int | None = None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                        critical=True)
    if extra_oid:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(extra_oid), b"\x05\x00"),
                                        critical=False)
    algorithm = hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass
class AppleChain:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @property
    def x5c(self) -> list[str]:
        return [der_b64(self.leaf), der_b64(self.intermediate), der_b64(self.root)]


def apple_chain(leaf_oid: str = APPLE_LEAF_OID, root: tuple | None = None) -> AppleChain:
    """A 3-certificate ES256 chain shaped like Apple's (the OIDs the library checks)."""
    if root is None:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_cert = _cert(root_key, "Test Apple Root CA", root_key, "Test Apple Root CA", ca=True, extra_oid=None)
    else:
        root_key, root_cert = root
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert(inter_key, "Test Apple WWDR CA", root_key, "Test Apple Root CA", ca=True,
                  extra_oid=APPLE_INTERMEDIATE_OID)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(leaf_key, "Test Prod ECC Mac App Store", inter_key, "Test Apple WWDR CA", ca=False,
                 extra_oid=leaf_oid)
    return AppleChain(root_key, root_cert, inter, leaf_key, leaf)


def self_signed_rsa_cert(key, cn: str) -> x509.Certificate:
    """A WeChat Pay platform certificate stand-in (serial chosen by the CA)."""
    return _cert(key, cn, key, cn, ca=False, extra_oid=None)
