"""The minutes' PDF: the Appendix I form's text read back exactly, the font, images, pages."""

from __future__ import annotations

import dataclasses
import io
import unicodedata
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

from app.minutes import pdf as minutes_pdf
from app.minutes.document import Answer, Attendee, KeyImage, MinutesDocument, Signoff
from app.minutes.pdf import FontMissing, render_pdf
from tests.minutes.sample import ENDED, STARTED, attendee, document, png

VIETNAMESE_LETTERS = ("aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrst"
                      "uùủũúụưừửữứựvxyỳỷỹýỵ")


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def text(data: bytes) -> str:
    return "\n".join(pages_text(data))


def test_the_form_reads_back_in_vietnamese_exactly() -> None:
    read = text(render_pdf(document()))
    for expected in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                     "TRUNG TÂM Y TẾ HUYỆN SƠN TỊNH", "BỆNH VIỆN CHỢ RẪY", "Số: 42/BB-HCTX",
                     "Ngày 03 tháng 12 năm 2026", "BIÊN BẢN HỘI CHẨN TỪ XA",
                     "Nguyễn Văn Ánh", "chẩn đoán", "Giới tính: Nam", "Ngày sinh: 19/05/1968",
                     "Số định danh cá nhân: 051068000123",
                     "Câu hỏi 1: Có chỉ định mổ lấy máu tụ không?",
                     "Kết luận: Có chỉ định mổ cấp cứu lấy máu tụ ngoài màng cứng",
                     "Chẩn đoán sau hội chẩn: Máu tụ ngoài màng cứng thái dương phải",
                     "Phương pháp điều trị: Mở sọ lấy máu tụ, cầm máu",
                     "Chủ trì: PGS.TS. Lê Quang Dũng", "Thư ký: ThS.BS. Phạm Thị Yến",
                     "Hình 1: CT sọ não, lát cắt qua ổ máu tụ", "THƯ KÝ", "CHỦ TRÌ"):
        assert expected in read, expected
    assert "Lý do sửa đổi" not in read  # version 1 is the original


def test_times_are_shown_in_ho_chi_minh_city() -> None:
    read = text(render_pdf(document()))
    assert "Bắt đầu: 03/12/2026 08:00" in read  # 01:00 UTC
    assert "Kết thúc: 03/12/2026 09:15" in read
    assert "Đã ký lúc 03/12/2026 09:24" in read  # the chair's signoff


def test_a_naive_time_is_taken_as_utc() -> None:
    read = text(render_pdf(document(started_at=STARTED.replace(tzinfo=None))))
    assert "Bắt đầu: 03/12/2026 08:00" in read


def test_english_labels() -> None:
    read = text(render_pdf(document(language="en")))
    for expected in ("SOCIALIST REPUBLIC OF VIETNAM", "Independence - Freedom - Happiness",
                     "TELECONSULTATION MINUTES", "Patient's name: Nguyễn Văn Ánh", "Sex: Male",
                     "Question 2: Có thể chuyển viện an toàn không?", "SECRETARY", "CHAIR"):
        assert expected in read, expected
    assert "BIÊN BẢN" not in read


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        render_pdf(document(language="fr"))


def test_an_amended_version_says_why() -> None:
    read = text(render_pdf(document(version=3, amendment_reason="Bổ sung kết quả MRI")))
    assert "Phiên bản 3. Lý do sửa đổi: Bổ sung kết quả MRI" in read
    assert "phiên bản 3 - trang 1" in read


def test_the_font_is_embedded_and_has_every_vietnamese_letter() -> None:
    data = render_pdf(document())
    fonts = PdfReader(io.BytesIO(data)).pages[0]["/Resources"]["/Font"]
    embedded = set()
    for ref in fonts.values():
        font = ref.get_object()  # a TrueType subset of at most 256 glyphs
        assert "/FontFile2" in font["/FontDescriptor"]
        embedded.add(str(font["/BaseFont"]).split("+")[-1])
    assert embedded == {"BeVietnamPro-Regular", "BeVietnamPro-Bold"}  # no base-14 font
    for name in (minutes_pdf.FONT, minutes_pdf.FONT_BOLD):
        glyphs = pdfmetrics.getFont(name).face.charToGlyph
        missing = [c for c in VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper()
                   if ord(c) not in glyphs]
        assert missing == [], name


def test_a_missing_font_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minutes_pdf, "FONT_PACKAGE", "no_such_font_package")
    with pytest.raises(FontMissing, match="fontpkg-be-vietnam-pro"):
        minutes_pdf.register_fonts.__wrapped__()


def test_decomposed_tone_marks_come_out_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn Ánh")
    assert decomposed != "Nguyễn Văn Ánh"
    assert "Nguyễn Văn Ánh" in text(render_pdf(document(patient_name=decomposed)))


def image_count(data: bytes) -> int:
    reader = PdfReader(io.BytesIO(data))
    return sum(len(page.images) for page in reader.pages)


def test_no_key_images() -> None:
    data = render_pdf(document(key_images=()))
    assert image_count(data) == 0
    assert "9. Hình ảnh chính\n(không có)" in text(data)


def test_three_key_images_with_their_captions_any_shape() -> None:
    # Shades differ: ReportLab shares one XObject among images of the same pixel bytes.
    images = (KeyImage(png(4000, 300, 40), "Ảnh toàn cảnh"),
              KeyImage(png(300, 4000, 200), "Ảnh dọc"), KeyImage(png(16, 16), ""))
    data = render_pdf(document(key_images=images))
    assert image_count(data) == 3
    read = text(data)
    assert "Hình 1: Ảnh toàn cảnh" in read and "Hình 2: Ảnh dọc" in read and "Hình 3" in read


def test_an_unreadable_image_is_named() -> None:
    with pytest.raises(ValueError, match="key image 2"):
        render_pdf(document(key_images=(KeyImage(png(8, 8), "a"), KeyImage(b"not png", "b"))))


def test_thirty_attendees_paginate_with_the_header_repeated() -> None:
    pages = pages_text(render_pdf(document(attendees=tuple(attendee(n) for n in range(1, 31)))))
    assert len(pages) >= 3
    with_table = [page for page in pages if "Bác sĩ Trần Thị Hồng" in page]
    assert len(with_table) >= 2
    assert all("Họ và tên" in page for page in with_table)
    assert "Bác sĩ Trần Thị Hồng 30" in " ".join("\n".join(pages).split())  # a wrapped cell


def test_unsigned_places_say_so_and_other_signers_are_listed() -> None:
    read = text(render_pdf(document(signoffs=())))
    assert read.count("Chưa ký") == 2
    assert "PGS.TS. Lê Quang Dũng" in read  # the chair named even before signing
    other = Signoff("BS. Đỗ Minh Khôi", "Bác sĩ", "presenter", ENDED + timedelta(hours=1))
    read = text(render_pdf(document(signoffs=document().signoffs + (other,))))
    assert "Người ký khác" in read
    assert "BS. Đỗ Minh Khôi (Bác sĩ, Báo cáo): Đã ký lúc 03/12/2026 10:15" in read


def test_empty_fields_and_no_times_render() -> None:
    doc = document(started_at=None, ended_at=None, patient_birth_date=None, answers=(),
                   attendees=(), signoffs=(), history="", title="", patient_sex="")
    read = text(render_pdf(doc))
    assert "Ngày .... tháng .... năm ........" in read
    assert "Bắt đầu: —" in read


def test_a_page_long_word_in_any_text_field_renders() -> None:
    word = "ẫ" * 5000
    fields = [f.name for f in dataclasses.fields(MinutesDocument) if f.type == "str"]
    assert len(fields) > 15
    for name in fields:
        if name != "language":
            assert render_pdf(document(**{name: word})).startswith(b"%PDF-"), name
    signoff = Signoff(word, word, "host", ENDED)
    assert render_pdf(document(signoffs=(signoff,), attendees=(attendee(1),) * 2))


unicode_text = st.text(max_size=300)
vietnamese_text = st.text(alphabet=st.sampled_from(
    VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " \n\u0300\u0301\u0303\u0309\u0323<>&"),
    max_size=300)
any_text = st.one_of(unicode_text, vietnamese_text)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=any_text, free=any_text, question=any_text, caption=any_text,
       long_word=st.text(alphabet="ẫ", min_size=200, max_size=2000))
def test_any_unicode_text_renders(name: str, free: str, question: str, caption: str,
                                  long_word: str) -> None:
    doc = document(
        patient_name=name, reason=free, history=free + long_word, chair=name,
        answers=(Answer(question, free),), key_images=(KeyImage(png(8, 8), caption),),
        attendees=(Attendee(name, free, long_word, "central", "host", datetime(2026, 1, 1),
                            None),))
    data = render_pdf(doc)
    assert data.startswith(b"%PDF-")
