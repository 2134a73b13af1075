"""The minutes' PDF signed with the hospital's certificate (PAdES baseline B-B), and its check.

The key and its certificate chain come from a PKCS#12 file named by configuration:
``HOICHAN_SIGNING_P12`` (its path) and ``HOICHAN_SIGNING_P12_PASSWORD``.

sign_pdf and verify_pdf are CPU-bound, and pyHanko's synchronous API runs its own event loop
(asyncio.run), so neither can be called on a running loop's thread: callers run them in a
thread (``await asyncio.to_thread(sign_pdf, pdf, signer, reason=..., location=...)``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer, SimpleSigner
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

P12_SETTING = "HOICHAN_SIGNING_P12"
P12_PASSWORD_SETTING = "HOICHAN_SIGNING_P12_PASSWORD"
SIGNATURE_FIELD = "HospitalSignature"


class SigningError(Exception):
    """The hospital's certificate cannot be used, or a PDF cannot be signed or checked."""


@dataclass(frozen=True)
class Verification:
    valid: bool  # the signature matches the certificate's key
    intact: bool  # the signed bytes are unchanged
    trusted: bool  # the certificate chains to one of the trust roots
    whole_document: bool  # nothing was appended after the signature
    signer_subject: str  # RFC 4514, e.g. "CN=Bệnh viện Chợ Rẫy,O=...,C=VN"
    signed_at: datetime | None  # as the signer stated it: no timestamp authority at B-B
    reason: str

    @property
    def ok(self) -> bool:
        return self.valid and self.intact and self.trusted and self.whole_document


def load_signer(path: str | os.PathLike[str], password: str) -> Signer:
    """The hospital's signer from its PKCS#12 file; SigningError says what is wrong with it."""
    p12 = Path(path)
    try:
        data = p12.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"the signing certificate file {p12} ({P12_SETTING}) does not "
                           f"exist") from None
    except OSError as exc:
        raise SigningError(f"cannot read the signing certificate file {p12} ({P12_SETTING}): "
                           f"{exc.strerror}") from None
    passphrase = password.encode() or None
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(data, passphrase)
    except ValueError:
        # cryptography tells a wrong password and a damaged file apart by no error type.
        raise SigningError(f"cannot open {p12}: the password ({P12_PASSWORD_SETTING}) is wrong "
                           f"or the file is not PKCS#12") from None
    if key is None or cert is None:
        raise SigningError(f"{p12} holds no private key with its certificate")
    if key.public_key() != cert.public_key():
        raise SigningError(f"{p12}: the private key is not the certificate's")
    _check_usable(cert, p12)
    signer: SimpleSigner = SimpleSigner.load_pkcs12_data(data, other_certs=(),
                                                         passphrase=passphrase)
    return signer


def sign_pdf(pdf: bytes, signer: Signer, *, reason: str, location: str) -> bytes:
    """pdf with the hospital's signature appended (an incremental update, PAdES B-B)."""
    meta = PdfSignatureMetadata(field_name=SIGNATURE_FIELD, subfilter=SigSeedSubFilter.PADES,
                                md_algorithm="sha256", reason=reason, location=location)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        out: io.BytesIO = PdfSigner(meta, signer=signer).sign_pdf(writer)
    except PdfError as exc:
        raise SigningError(f"cannot sign the PDF: {exc}") from exc
    return out.getvalue()


def verify_pdf(pdf: bytes, trust_roots: Sequence[x509.Certificate]) -> Verification:
    """The PDF's first signature checked against trust_roots, without network access.

    SigningError when there is nothing to check: not a PDF, no signature, or a signature
    whose data cannot be parsed.
    """
    try:
        signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    except (PdfError, ValueError) as exc:
        raise SigningError(f"cannot read the PDF: {exc}") from exc
    if not signatures:
        raise SigningError("the PDF has no signature")
    signature = signatures[0]
    pem = b"".join(root.public_bytes(Encoding.PEM) for root in trust_roots)
    # No fetching: the hospital's network may not reach the CA's OCSP or CRL servers, and a
    # check must not hang on them; revocation is soft-fail, checked when the data is embedded.
    context = ValidationContext(trust_roots=list(load_certs_from_pemder_data(pem)),
                                allow_fetching=False)
    try:
        status = validate_pdf_signature(signature, signer_validation_context=context)
    except (SignatureValidationError, PdfError, ValueError) as exc:
        raise SigningError(f"cannot check the signature: {exc}") from exc
    subject = x509.load_der_x509_certificate(status.signing_cert.dump()).subject
    return Verification(
        valid=status.valid, intact=status.intact, trusted=status.trusted,
        whole_document=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_subject=subject.rfc4514_string(),
        signed_at=status.signer_reported_dt or signature.self_reported_timestamp,
        reason=str(signature.sig_object.get("/Reason", "")))


def _check_usable(cert: x509.Certificate, p12: Path) -> None:
    now = datetime.now(UTC)
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_after_utc < now:
        raise SigningError(f"the signing certificate {subject} in {p12} expired on "
                           f"{cert.not_valid_after_utc:%Y-%m-%d}: install the hospital's "
                           f"renewed certificate")
    if cert.not_valid_before_utc > now:
        raise SigningError(f"the signing certificate {subject} in {p12} is valid only from "
                           f"{cert.not_valid_before_utc:%Y-%m-%d}")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise SigningError(f"the certificate {subject} in {p12} is not for signing: its key "
                           f"usage has neither digitalSignature nor nonRepudiation")
