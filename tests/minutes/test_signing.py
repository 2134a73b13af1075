"""The hospital's PAdES signature on the minutes: made from a PKCS#12 file, checked by pyHanko's
validator against a test CA, and failing once a signed byte changes."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.generic import pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from app.minutes.pdf import render_pdf
from app.minutes.signing import (
    SigningError,
    load_signer,
    sign_pdf,
    verify_pdf,
)
from tests.minutes.ca import HOSPITAL, Issued, issue
from tests.minutes.sample import document

REASON = "Biên bản hội chẩn số 42, phiên bản 1"
LOCATION = "Bệnh viện Chợ Rẫy, TP. Hồ Chí Minh"


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return render_pdf(document())


@pytest.fixture
def issued(tmp_path: Path) -> Issued:
    return issue(tmp_path)


@pytest.fixture
def signed(unsigned: bytes, issued: Issued) -> bytes:
    return sign_pdf(unsigned, load_signer(issued.p12, issued.password), reason=REASON,
                    location=LOCATION)


def signed_range(data: bytes) -> tuple[int, int, int, int]:
    match = re.search(rb"/ByteRange \[(\d+) (\d+) (\d+) (\d+)\]", data)
    assert match is not None
    start, length, start2, length2 = (int(n) for n in match.groups())
    return start, length, start2, length2


def test_the_signed_pdf_validates_against_the_hospitals_ca(signed: bytes,
                                                           issued: Issued) -> None:
    result = verify_pdf(signed, [issued.root])
    assert result.ok
    assert result.valid and result.intact and result.trusted and result.whole_document
    assert f"CN={HOSPITAL}" in result.signer_subject
    assert result.reason == REASON
    assert result.signed_at is not None
    assert abs(result.signed_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_signature_is_pades_and_covers_all_but_itself(signed: bytes,
                                                          unsigned: bytes) -> None:
    assert b"/SubFilter /ETSI.CAdES.detached" in signed
    assert signed.startswith(unsigned)  # an incremental update: the rendered bytes stay
    start, length, start2, length2 = signed_range(signed)
    assert start == 0 and start2 + length2 == len(signed)
    assert signed[length:length + 1] == b"<" and signed[start2 - 1:start2] == b">"


def test_a_changed_byte_in_the_signed_range_breaks_it(signed: bytes, issued: Issued) -> None:
    # Same length, so the file still parses and only the digest can tell.
    at = signed.index(b"(Hoichan)")
    tampered = signed[:at] + b"(Hoichen)" + signed[at + len(b"(Hoichan)"):]
    assert len(tampered) == len(signed)
    result = verify_pdf(tampered, [issued.root])
    assert not result.intact
    assert not result.ok


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_any_changed_byte_fails_or_cannot_be_checked(signed: bytes, issued: Issued,
                                                     fraction: float) -> None:
    _start, length, _start2, _length2 = signed_range(signed)
    at = int(length * fraction)
    tampered = bytearray(signed)
    tampered[at] ^= 0x01
    try:
        result = verify_pdf(bytes(tampered), [issued.root])
    except SigningError:
        return
    assert not result.ok and not result.intact


def test_an_update_after_signing_is_reported(signed: bytes, issued: Issued) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root["/Lang"] = pdf_string("en")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    result = verify_pdf(out.getvalue(), [issued.root])
    assert result.intact and result.valid  # the signed revision itself is untouched
    assert not result.whole_document
    assert not result.ok


def test_a_certificate_from_another_ca_is_untrusted(unsigned: bytes, issued: Issued,
                                                    tmp_path: Path) -> None:
    stranger = issue(tmp_path, ca_name="Some Other CA", subject="Bệnh viện Không Rõ")
    foreign = sign_pdf(unsigned, load_signer(stranger.p12, stranger.password), reason=REASON,
                       location=LOCATION)
    result = verify_pdf(foreign, [issued.root])
    assert result.intact and result.valid
    assert not result.trusted
    assert not result.ok
    assert verify_pdf(foreign, [stranger.root]).ok


def test_a_wrong_password_is_said(issued: Issued) -> None:
    with pytest.raises(SigningError, match="password.*HOICHAN_SIGNING_P12_PASSWORD"):
        load_signer(issued.p12, "sai mật khẩu")


def test_a_missing_file_is_said(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match=r"nowhere\.p12 \(HOICHAN_SIGNING_P12\) does not exist"):
        load_signer(tmp_path / "nowhere.p12", "x")


def test_a_file_that_is_no_pkcs12_is_said(tmp_path: Path) -> None:
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SigningError, match="not PKCS#12"):
        load_signer(junk, "x")


def test_an_expired_certificate_is_said(tmp_path: Path) -> None:
    expired = issue(tmp_path, expired=True)
    with pytest.raises(SigningError, match="expired on .*renewed certificate"):
        load_signer(expired.p12, expired.password)


def test_a_certificate_not_for_signing_is_said(tmp_path: Path) -> None:
    other = issue(tmp_path, signing=False)
    with pytest.raises(SigningError, match="not for signing"):
        load_signer(other.p12, other.password)


def test_what_cannot_be_signed_or_checked_is_said(unsigned: bytes, issued: Issued) -> None:
    signer = load_signer(issued.p12, issued.password)
    with pytest.raises(SigningError, match="cannot sign"):
        sign_pdf(b"not a pdf", signer, reason=REASON, location=LOCATION)
    with pytest.raises(SigningError, match="no signature"):
        verify_pdf(unsigned, [issued.root])
    with pytest.raises(SigningError, match="cannot read"):
        verify_pdf(b"not a pdf", [issued.root])


async def test_callers_on_the_event_loop_use_a_thread(unsigned: bytes, issued: Issued) -> None:
    signer = load_signer(issued.p12, issued.password)
    signed = await asyncio.to_thread(sign_pdf, unsigned, signer, reason=REASON,
                                     location=LOCATION)
    result = await asyncio.to_thread(verify_pdf, signed, [issued.root])
    assert result.ok
