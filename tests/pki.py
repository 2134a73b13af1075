"""Test certificates: a CA and the leaves it signs, as PEM files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def issue_pem(folder: Path, name: str, subject: str, issuer: tuple[x509.Name, rsa.RSAPrivateKey]
           | None, server: bool = False) -> tuple[x509.Name, rsa.RSAPrivateKey]:
    """A key and certificate (PEM, ``name.key``/``name.crt``): a CA when ``issuer`` is
    None, else a leaf for a server (localhost, 127.0.0.1) or a client."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name_ = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name_, key)
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name_).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                              critical=True))
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    return name_, key
