"""The minutes as an A4 PDF laid out like Appendix I of Circular 49/2017/TT-BYT.

The form's order: national header and facilities, title, (1) time and form, (2) chair,
secretary and participants, (3) patient, (4) reason and questions, (5) summary of the illness
and care, (6) diagnosis before, (7) conclusions per question and diagnosis after, (8) treatment
and follow-up, (9) key images, then the secretary's and the chair's signatures.

render_pdf is CPU-bound (a second or more with large images): callers on the event loop run
it in a thread (``await asyncio.to_thread(render_pdf, doc)``).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.minutes.document import Attendee, KeyImage, MinutesDocument, Signoff

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# Be Vietnam Pro was drawn for Vietnamese (every precomposed letter and the five tone marks)
# and comes from PyPI as static TTFs, so `make run` needs no system font.
FONT_PACKAGE = "fontpkg_be_vietnam_pro"
FONT_DISTRIBUTION = "fontpkg-be-vietnam-pro"
FONT = "BeVietnamPro"
FONT_BOLD = "BeVietnamPro-Bold"

# Vietnamese administrative documents' margins (Decree 30/2020/ND-CP): wide binding side.
LEFT_MARGIN, RIGHT_MARGIN, TOP_MARGIN, BOTTOM_MARGIN = 30 * mm, 15 * mm, 20 * mm, 20 * mm
FRAME_WIDTH = A4[0] - LEFT_MARGIN - RIGHT_MARGIN
# Two images fit a page with their captions.
IMAGE_MAX_HEIGHT = 105 * mm

EMPTY = "—"
# Cells hold Paragraphs, but a table still selects its own font (Helvetica unless told), which
# would put an unembedded base-14 font in the file.
TABLE_FONT = [("FONTNAME", (0, 0), (-1, -1), FONT)]
# Every table is made with splitInRow=1: a cell with a very long text then splits across pages
# instead of failing the whole document for not fitting one.

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "nation": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "motto": "Độc lập - Tự do - Hạnh phúc",
        "number": "Số: {id}/BB-HCTX",
        "dated": "Ngày {d} tháng {m} năm {y}",
        "heading": "BIÊN BẢN HỘI CHẨN TỪ XA",
        "subject": "Về việc: {title}",
        "amended": "Phiên bản {version}. Lý do sửa đổi: {reason}",
        "requesting": "Cơ sở đề nghị hội chẩn",
        "consulting": "Cơ sở chủ trì hội chẩn",
        "s_time": "1. Thời gian và hình thức hội chẩn",
        "started": "Bắt đầu",
        "ended": "Kết thúc",
        "form": "Hình thức",
        "form_value": "Hội chẩn từ xa trực tuyến (âm thanh, hình ảnh và dữ liệu hình ảnh y tế)",
        "s_people": "2. Thành phần tham dự",
        "chair": "Chủ trì",
        "secretary": "Thư ký",
        "participants": "Thành viên tham dự",
        "col_no": "STT",
        "col_name": "Họ và tên",
        "col_title": "Chức danh",
        "col_hospital": "Cơ sở",
        "col_tier": "Tuyến",
        "col_role": "Vai trò",
        "col_time": "Thời gian tham dự",
        "none": "(không có)",
        "s_patient": "3. Thông tin người bệnh",
        "patient_name": "Họ và tên người bệnh",
        "sex": "Giới tính",
        "birth_date": "Ngày sinh",
        "patient_id": "Mã người bệnh",
        "national_id": "Số định danh cá nhân",
        "s_reason": "4. Lý do và nội dung đề nghị hội chẩn",
        "reason": "Lý do hội chẩn",
        "question": "Câu hỏi {n}",
        "s_summary": "5. Tóm tắt quá trình diễn biến bệnh, quá trình điều trị và chăm sóc "
                     "người bệnh",
        "history": "Tiền sử, bệnh sử",
        "course": "Quá trình điều trị và chăm sóc",
        "findings": "Kết quả khám",
        "tests": "Kết quả cận lâm sàng",
        "s_diagnosis_before": "6. Chẩn đoán trước hội chẩn",
        "s_conclusions": "7. Kết luận hội chẩn",
        "conclusion": "Kết luận",
        "diagnosis_after": "Chẩn đoán sau hội chẩn",
        "s_treatment": "8. Hướng điều trị và theo dõi",
        "treatment_plan": "Hướng điều trị",
        "treatment_method": "Phương pháp điều trị",
        "follow_up": "Theo dõi, chăm sóc tiếp theo",
        "s_images": "9. Hình ảnh chính",
        "figure": "Hình {n}",
        "sign_here": "(Ký, ghi rõ họ tên)",
        "signed_at": "Đã ký lúc {time}",
        "not_signed": "Chưa ký",
        "other_signers": "Người ký khác",
        "footer": "Biên bản hội chẩn số {id} - phiên bản {version} - trang {page}",
        "sex_M": "Nam",
        "sex_F": "Nữ",
        "sex_O": "Khác",
        "tier_central": "Trung ương",
        "tier_provincial": "Tỉnh",
        "tier_district": "Huyện",
        "tier_commune": "Xã",
        "role_host": "Chủ trì",
        "role_secretary": "Thư ký",
        "role_presenter": "Báo cáo",
        "role_participant": "Thành viên",
        "role_observer": "Dự thính",
    },
    "en": {
        "nation": "SOCIALIST REPUBLIC OF VIETNAM",
        "motto": "Independence - Freedom - Happiness",
        "number": "No.: {id}/BB-HCTX",
        "dated": "Date: {d}/{m}/{y}",
        "heading": "TELECONSULTATION MINUTES",
        "subject": "Subject: {title}",
        "amended": "Version {version}. Reason for the amendment: {reason}",
        "requesting": "Requesting facility",
        "consulting": "Consulting facility",
        "s_time": "1. Time and form of the consultation",
        "started": "Started",
        "ended": "Ended",
        "form": "Form",
        "form_value": "Online teleconsultation (audio, video and medical imaging data)",
        "s_people": "2. Participants",
        "chair": "Chair",
        "secretary": "Secretary",
        "participants": "Attendees",
        "col_no": "No.",
        "col_name": "Name",
        "col_title": "Title",
        "col_hospital": "Facility",
        "col_tier": "Tier",
        "col_role": "Role",
        "col_time": "Attended",
        "none": "(none)",
        "s_patient": "3. Patient",
        "patient_name": "Patient's name",
        "sex": "Sex",
        "birth_date": "Date of birth",
        "patient_id": "Patient ID",
        "national_id": "National ID",
        "s_reason": "4. Reason and questions",
        "reason": "Reason for the consultation",
        "question": "Question {n}",
        "s_summary": "5. Summary of the illness, its treatment and care",
        "history": "History",
        "course": "Course of treatment and care",
        "findings": "Examination findings",
        "tests": "Test results",
        "s_diagnosis_before": "6. Diagnosis before the consultation",
        "s_conclusions": "7. Conclusions",
        "conclusion": "Conclusion",
        "diagnosis_after": "Diagnosis after the consultation",
        "s_treatment": "8. Treatment and follow-up",
        "treatment_plan": "Treatment plan",
        "treatment_method": "Treatment method",
        "follow_up": "Follow-up",
        "s_images": "9. Key images",
        "figure": "Figure {n}",
        "sign_here": "(Signature and full name)",
        "signed_at": "Signed at {time}",
        "not_signed": "Not signed",
        "other_signers": "Other signatories",
        "footer": "Consultation minutes {id} - version {version} - page {page}",
        "sex_M": "Male",
        "sex_F": "Female",
        "sex_O": "Other",
        "tier_central": "Central",
        "tier_provincial": "Provincial",
        "tier_district": "District",
        "tier_commune": "Commune",
        "role_host": "Chair",
        "role_secretary": "Secretary",
        "role_presenter": "Presenter",
        "role_participant": "Participant",
        "role_observer": "Observer",
    },
}


class FontMissing(RuntimeError):
    """The embedded font's package is not installed."""


@cache
def register_fonts() -> None:
    try:
        files = resources.files(FONT_PACKAGE) / "files"
        regular = files / "BeVietnamPro-Regular.ttf"
        bold = files / "BeVietnamPro-Bold.ttf"
        with resources.as_file(regular) as regular_path, resources.as_file(bold) as bold_path:
            pdfmetrics.registerFont(TTFont(FONT, str(regular_path)))
            pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold_path)))
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise FontMissing(f"the minutes' PDF font Be Vietnam Pro is missing: install the PyPI "
                          f"package {FONT_DISTRIBUTION} (a dependency of hoichan; "
                          f"`make run` installs it)") from exc
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT,
                                  boldItalic=FONT_BOLD)


def markup(text: str) -> str:
    """Text for a Paragraph's markup: composed, escaped, newlines as line breaks.

    NFC because ReportLab places glyphs without mark positioning: a decomposed tone mark would
    be drawn beside its letter, and every Vietnamese letter has a precomposed form. Control
    characters other than newline have no glyph and would break the markup parser.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\t", " ")
    kept = "".join(c for c in text if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs"))
    return escape(kept).replace("\n", "<br/>")


class _Renderer:
    def __init__(self, doc: MinutesDocument) -> None:
        if doc.language not in LABELS:
            raise ValueError(f"minutes language must be one of {sorted(LABELS)}, "
                             f"got {doc.language!r}")
        self.doc = doc
        self.labels = LABELS[doc.language]
        self.body = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=14,
                                   spaceAfter=2)
        self.center = ParagraphStyle("center", parent=self.body, alignment=TA_CENTER,
                                     spaceAfter=0)
        self.center_bold = ParagraphStyle("center_bold", parent=self.center, fontName=FONT_BOLD)
        self.heading = ParagraphStyle("heading", parent=self.center_bold, fontSize=15,
                                      leading=20, spaceBefore=8, spaceAfter=4)
        self.section = ParagraphStyle("section", parent=self.body, fontName=FONT_BOLD,
                                      spaceBefore=8, spaceAfter=3)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=8.5, leading=10.5,
                                   spaceAfter=0)
        self.cell_bold = ParagraphStyle("cell_bold", parent=self.cell, fontName=FONT_BOLD)

    def label(self, key: str, **values: object) -> str:
        return self.labels[key].format(**values)

    def para(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(markup(text), style or self.body)

    def field(self, key: str, value: str) -> Paragraph:
        return self.field_text(self.label(key), value)

    def field_text(self, label: str, value: str) -> Paragraph:
        """"Label: value", the label bold, as the form's dotted lines filled in."""
        return Paragraph(f"<b>{markup(label)}:</b> {markup(value or EMPTY)}", self.body)

    def coded(self, kind: str, value: str) -> str:
        """A code (tier, role, sex) in words, or as given when it is not one of ours."""
        return self.labels.get(f"{kind}_{value}", value)

    def story(self) -> list[Flowable]:
        doc = self.doc
        story: list[Flowable] = [self.header(), self.para(self.label("heading"), self.heading)]
        if doc.title:
            story.append(self.para(self.label("subject", title=doc.title), self.center))
        if doc.version > 1:
            story.append(self.para(self.label("amended", version=doc.version,
                                              reason=doc.amendment_reason or EMPTY),
                                   self.center))
        story.append(Spacer(1, 4 * mm))

        story += [self.para(self.label("s_time"), self.section),
                  self.field("started", format_time(doc.started_at)),
                  self.field("ended", format_time(doc.ended_at)),
                  self.field("form", self.label("form_value")),
                  self.field("requesting", doc.requesting_hospital),
                  self.field("consulting", doc.consulting_hospital)]

        story += [self.para(self.label("s_people"), self.section),
                  self.field("chair", doc.chair),
                  self.field("secretary", doc.secretary),
                  self.para(self.label("participants") + ":"),
                  self.attendee_table(doc.attendees)]

        sex = self.coded("sex", doc.patient_sex.strip().upper()) if doc.patient_sex else ""
        story += [self.para(self.label("s_patient"), self.section),
                  self.field("patient_name", doc.patient_name),
                  self.field("sex", sex),
                  self.field("birth_date", format_date(doc.patient_birth_date)),
                  self.field("patient_id", doc.patient_id),
                  self.field("national_id", doc.national_id)]

        story += [self.para(self.label("s_reason"), self.section),
                  self.field("reason", doc.reason)]
        story += [self.field_text(self.label("question", n=n), answer.question)
                  for n, answer in enumerate(doc.answers, 1)]

        story += [self.para(self.label("s_summary"), self.section),
                  self.field("history", doc.history),
                  self.field("course", doc.course_of_treatment),
                  self.field("findings", doc.findings),
                  self.field("tests", doc.tests)]

        story += [self.para(self.label("s_diagnosis_before"), self.section),
                  self.para(doc.diagnosis_before or EMPTY)]

        story.append(self.para(self.label("s_conclusions"), self.section))
        for n, answer in enumerate(doc.answers, 1):
            story += [self.field_text(self.label("question", n=n), answer.question),
                      self.field("conclusion", answer.conclusion)]
        story.append(self.field("diagnosis_after", doc.diagnosis_after))

        story += [self.para(self.label("s_treatment"), self.section),
                  self.field("treatment_plan", doc.treatment_plan),
                  self.field("treatment_method", doc.treatment_method),
                  self.field("follow_up", doc.follow_up)]

        story.append(self.para(self.label("s_images"), self.section))
        story += self.images(doc.key_images) or [self.para(self.label("none"))]

        story += self.signatures(doc.signoffs)
        return story

    def header(self) -> Table:
        doc = self.doc
        day = _local(doc.ended_at or doc.started_at)
        if day is None:
            dated = self.label("dated", d="....", m="....", y="........")
        else:
            dated = self.label("dated", d=f"{day:%d}", m=f"{day:%m}", y=f"{day:%Y}")
        left = [self.para(doc.requesting_hospital.upper(), self.center),
                self.para(doc.consulting_hospital.upper(), self.center_bold),
                self.para(self.label("number", id=doc.consultation_id), self.center)]
        right = [self.para(self.label("nation"), self.center_bold),
                 Paragraph(f"<u>{markup(self.label('motto'))}</u>", self.center_bold),
                 self.para(dated, self.center)]
        table = Table([[left, right]], colWidths=[FRAME_WIDTH * 0.42, FRAME_WIDTH * 0.58],
                      splitInRow=1)
        table.setStyle(TableStyle([*TABLE_FONT, ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
        return table

    def attendee_table(self, attendees: Iterable[Attendee]) -> Flowable:
        rows: list[list[Paragraph]] = [
            [self.para(self.label(key), self.cell_bold)
             for key in ("col_no", "col_name", "col_title", "col_hospital", "col_tier",
                         "col_role", "col_time")]]
        for n, a in enumerate(attendees, 1):
            rows.append([self.para(str(n), self.cell), self.para(a.name, self.cell),
                         self.para(a.title, self.cell), self.para(a.hospital, self.cell),
                         self.para(self.coded("tier", a.tier), self.cell),
                         self.para(self.coded("role", a.role), self.cell),
                         self.para(_span(a.attended_from, a.attended_to), self.cell)])
        if len(rows) == 1:
            return self.para(self.label("none"))
        widths = [w * mm for w in (9, 33, 24, 38, 17, 19, 25)]
        table = Table(rows, colWidths=widths, repeatRows=1, splitInRow=1)
        table.setStyle(TableStyle([
            *TABLE_FONT,
            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]))
        return table

    def images(self, images: Iterable[KeyImage]) -> list[Flowable]:
        flowables: list[Flowable] = []
        for n, image in enumerate(images, 1):
            try:
                width, height = ImageReader(io.BytesIO(image.png)).getSize()
            except Exception as exc:  # Pillow raises several kinds for undecodable data
                raise ValueError(f"key image {n} is not a readable image: {exc}") from exc
            scale = min(FRAME_WIDTH / width, IMAGE_MAX_HEIGHT / height)
            picture = Image(io.BytesIO(image.png), width=width * scale, height=height * scale)
            caption = self.label("figure", n=n) + (f": {image.caption}" if image.caption else "")
            flowables.append(KeepTogether([picture, self.para(caption, self.center),
                                           Spacer(1, 3 * mm)]))
        return flowables

    def signatures(self, signoffs: tuple[Signoff, ...]) -> list[Flowable]:
        doc = self.doc
        by_role = {s.role: s for s in reversed(signoffs)}  # the first signoff of each role
        secretary, chair = by_role.get("secretary"), by_role.get("host")

        def column(label_key: str, signoff: Signoff | None, name: str) -> list[Paragraph]:
            signed = (self.label("signed_at", time=format_time(signoff.signed_at)) if signoff
                      else self.label("not_signed"))
            return [self.para(self.label(label_key).upper(), self.center_bold),
                    self.para(self.label("sign_here"), self.center),
                    self.para(signed, self.center),
                    self.para(signoff.title if signoff else "", self.center),
                    self.para(signoff.name if signoff else name, self.center_bold)]

        block = Table([[column("secretary", secretary, doc.secretary),
                        column("chair", chair, doc.chair)]],
                      colWidths=[FRAME_WIDTH / 2] * 2, splitInRow=1)
        block.setStyle(TableStyle([*TABLE_FONT, ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        flowables: list[Flowable] = [Spacer(1, 8 * mm), KeepTogether([block])]
        others = [s for s in signoffs if s is not secretary and s is not chair]
        if others:
            flowables.append(self.para(self.label("other_signers"), self.section))
            flowables += [self.para(f"{s.name} ({s.title}, {self.coded('role', s.role)}): "
                                    + self.label("signed_at", time=format_time(s.signed_at)))
                          for s in others]
        return flowables

    def footer(self, canvas: Canvas, _template: object) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawRightString(A4[0] - RIGHT_MARGIN, 10 * mm,
                               self.label("footer", id=self.doc.consultation_id,
                                          version=self.doc.version,
                                          page=canvas.getPageNumber()))
        canvas.restoreState()


def _local(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ)


def format_time(moment: datetime | None) -> str:
    local = _local(moment)
    return f"{local:%d/%m/%Y %H:%M}" if local else EMPTY


def format_date(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else EMPTY


def _span(start: datetime | None, end: datetime | None) -> str:
    """From–to; the end's date is left out when it is the start's."""
    first, last = _local(start), _local(end)
    if first and last and first.date() == last.date():
        return f"{format_time(start)} – {last:%H:%M}"
    return f"{format_time(start)} – {format_time(end)}"


def render_pdf(doc: MinutesDocument) -> bytes:
    """The minutes as PDF bytes, the font embedded (subset) so any reader shows Vietnamese."""
    register_fonts()
    renderer = _Renderer(doc)
    out = io.BytesIO()
    template = SimpleDocTemplate(
        out, pagesize=A4,
        title=plain_text(f"{renderer.label('heading')} {doc.consultation_id}/BB-HCTX"),
        author=plain_text(doc.consulting_hospital), subject=plain_text(doc.title),
        creator="Hoichan", lang=doc.language, initialFontName=FONT, leftMargin=LEFT_MARGIN,
        rightMargin=RIGHT_MARGIN, topMargin=TOP_MARGIN, bottomMargin=BOTTOM_MARGIN)
    template.build(renderer.story(), onFirstPage=renderer.footer,
                   onLaterPages=renderer.footer)
    return out.getvalue()


def plain_text(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", text)
                   if unicodedata.category(c) not in ("Cc", "Cs"))
