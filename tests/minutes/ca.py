"""A test CA and the hospital's signing certificate, made with `cryptography`, as PKCS#12."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID

HOSPITAL = "Bệnh viện Chợ Rẫy"


@dataclass(frozen=True)
class Issued:
    p12: Path
    password: str
    cert: x509.Certificate
    root: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool = False, signing: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing and not ca,
                         content_commitment=signing and not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=not signing, key_cert_sign=ca,
                         crl_sign=ca, encipher_only=False, decipher_only=False)


def issue(directory: Path, *, ca_name: str = "Hoichan Test Root CA",
          subject: str = HOSPITAL, password: str = "mật-khẩu-thử",
          valid_days: int = 365, expired: bool = False, signing: bool = True) -> Issued:
    """A root CA and, under it, the hospital's certificate with its key in `directory`."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder()
            .subject_name(_name(ca_name)).issuer_name(_name(ca_name))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    start = now - timedelta(days=valid_days + 2) if expired else now - timedelta(days=1)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(subject)).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=signing), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    p12 = directory / f"{ca_name.replace(' ', '-').lower()}-signer.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"hospital", key, cert, [root], BestAvailableEncryption(password.encode())))
    return Issued(p12=p12, password=password, cert=cert, root=root)
