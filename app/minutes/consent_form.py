"""The printable consent form: the patient (or their representative) ticks and signs consent
to the tele-consultation and to its recording, the doctor who explained it countersigns.
Decree 13/2023/ND-CP wants consent to sensitive (health) data explicit, informed and
withdrawable, so the form says what is shared, with whom, how long recordings are kept
(Circular 49/2017/TT-BYT: at least 10 years) and that consent can be withdrawn.

Laid out with the minutes' font and margins (app/minutes/pdf.py); CPU-bound, run it in a
thread from the event loop."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.minutes.pdf import (
    BOTTOM_MARGIN,
    EMPTY,
    FONT,
    FONT_BOLD,
    FRAME_WIDTH,
    LEFT_MARGIN,
    RIGHT_MARGIN,
    TABLE_FONT,
    TOP_MARGIN,
    format_date,
    format_time,
    markup,
    plain_text,
    register_fonts,
)

BOX = "\u2610"  # ☐, in Be Vietnam Pro

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "nation": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "motto": "Độc lập - Tự do - Hạnh phúc",
        "heading": "GIẤY ĐỒNG Ý THAM GIA HỘI CHẨN TỪ XA",
        "subheading": "(Hội chẩn số {id}: {title})",
        "s_patient": "1. Người bệnh",
        "patient_name": "Họ và tên",
        "birth_date": "Ngày sinh",
        "sex": "Giới tính",
        "patient_id": "Mã người bệnh",
        "national_id": "Số CCCD",
        "s_consultation": "2. Buổi hội chẩn",
        "requesting": "Cơ sở đề nghị hội chẩn",
        "consulting": "Cơ sở chủ trì hội chẩn",
        "scheduled": "Thời gian dự kiến",
        "s_giver": "3. Người đồng ý",
        "giver": "Tôi là: ........................................................ "
                 f"{BOX} người bệnh   {BOX} người đại diện của người bệnh, quan hệ với người "
                 "bệnh: ........................",
        "s_explained": "4. Tôi đã được giải thích rằng",
        "s_decision": "5. Ý kiến của tôi",
        "teleconsultation": "Tham gia hội chẩn từ xa và chia sẻ hồ sơ, hình ảnh:",
        "recording": "Ghi hình, ghi âm buổi hội chẩn:",
        "agree": "Đồng ý",
        "disagree": "Không đồng ý",
        "dated": "......., ngày ...... tháng ...... năm ..........",
        "giver_sign": "NGƯỜI BỆNH / NGƯỜI ĐẠI DIỆN",
        "doctor_sign": "BÁC SĨ GIẢI THÍCH",
        "sign_here": "(Ký, ghi rõ họ tên)",
        "sex_M": "Nam",
        "sex_F": "Nữ",
        "sex_O": "Khác",
    },
    "en": {
        "nation": "SOCIALIST REPUBLIC OF VIETNAM",
        "motto": "Independence - Freedom - Happiness",
        "heading": "CONSENT TO TELE-CONSULTATION",
        "subheading": "(Consultation {id}: {title})",
        "s_patient": "1. The patient",
        "patient_name": "Full name",
        "birth_date": "Date of birth",
        "sex": "Sex",
        "patient_id": "Patient ID",
        "national_id": "National ID (CCCD)",
        "s_consultation": "2. The consultation",
        "requesting": "Requesting facility",
        "consulting": "Consulting facility",
        "scheduled": "Scheduled for",
        "s_giver": "3. The person consenting",
        "giver": "I am: ........................................................ "
                 f"{BOX} the patient   {BOX} the patient's representative, relation to the "
                 "patient: ........................",
        "s_explained": "4. It was explained to me that",
        "s_decision": "5. My decision",
        "teleconsultation": "Taking part in the tele-consultation, sharing records and images:",
        "recording": "Recording the consultation (video and sound):",
        "agree": "I agree",
        "disagree": "I do not agree",
        "dated": "......., date ....../....../..........",
        "giver_sign": "PATIENT / REPRESENTATIVE",
        "doctor_sign": "EXPLAINING DOCTOR",
        "sign_here": "(Signature and full name)",
        "sex_M": "Male",
        "sex_F": "Female",
        "sex_O": "Other",
    },
}


#: What the doctor explains before the patient decides, as the form lists it.
EXPLAINED: dict[str, list[str]] = {
    "vi": [
        "Hồ sơ bệnh án, kết quả xét nghiệm và hình ảnh chẩn đoán (CT, MR, X-quang, siêu "
        "âm) của người bệnh được chia sẻ qua mạng, có mã hóa, với các bác sĩ tham gia hội "
        "chẩn của các cơ sở nêu trên, chỉ cho mục đích chẩn đoán và điều trị.",
        "Buổi hội chẩn có thể được ghi hình, ghi âm; bản ghi được lưu giữ ít nhất 10 năm "
        "theo Thông tư 49/2017/TT-BYT và chỉ người có thẩm quyền được xem.",
        "Kết luận hội chẩn được ghi vào biên bản hội chẩn và lưu vào hồ sơ bệnh án.",
        "Tôi có thể từ chối hoặc rút lại sự đồng ý bất cứ lúc nào mà không ảnh hưởng đến "
        "việc khám, chữa bệnh (Nghị định 13/2023/NĐ-CP).",
    ],
    "en": [
        "The patient's records, test results and diagnostic images (CT, MR, X-ray, "
        "ultrasound) are shared over an encrypted network with the consulting doctors of "
        "the facilities above, for diagnosis and treatment only.",
        "The consultation may be recorded (video and sound); the recording is kept at "
        "least 10 years as Circular 49/2017/TT-BYT requires, and only authorised persons "
        "may view it.",
        "The consultation's conclusions are written into its minutes and kept in the "
        "medical record.",
        "I may refuse or withdraw this consent at any time without any effect on the "
        "patient's care (Decree 13/2023/ND-CP).",
    ],
}


@dataclass(frozen=True)
class ConsentForm:
    consultation_id: int
    title: str
    requesting_hospital: str
    consulting_hospital: str
    scheduled_start: datetime | None
    patient_name: str
    patient_birth_date: date | None
    patient_sex: str
    patient_id: str
    national_id: str
    language: str = "vi"


def render_consent_form(form: ConsentForm) -> bytes:
    """The form as A4 PDF bytes, the font embedded."""
    if form.language not in LABELS:
        raise ValueError(f"consent form language must be one of {sorted(LABELS)}, "
                         f"got {form.language!r}")
    register_fonts()
    labels = LABELS[form.language]
    body = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=14, spaceAfter=2)
    center = ParagraphStyle("center", parent=body, alignment=TA_CENTER)
    center_bold = ParagraphStyle("center_bold", parent=center, fontName=FONT_BOLD)
    heading = ParagraphStyle("heading", parent=center_bold, fontSize=15, leading=20,
                             spaceBefore=10, spaceAfter=2)
    section = ParagraphStyle("section", parent=body, fontName=FONT_BOLD, spaceBefore=8,
                             spaceAfter=3)

    def label(key: str) -> str:
        return labels[key]

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(markup(text), style)

    def field(key: str, value: str) -> Paragraph:
        return Paragraph(f"<b>{markup(label(key))}:</b> {markup(value or EMPTY)}", body)

    def choice(key: str) -> Paragraph:
        return para(f"{label(key)}   {BOX} {label('agree')}   {BOX} {label('disagree')}")

    sex = form.patient_sex.strip().upper()
    story: list[Flowable] = [
        para(label("nation"), center_bold), Paragraph(f"<u>{markup(label('motto'))}</u>",
                                                      center_bold),
        para(label("heading"), heading),
        para(label("subheading").format(id=form.consultation_id, title=form.title), center),
        Spacer(1, 4 * mm),
        para(label("s_patient"), section),
        field("patient_name", form.patient_name.replace("^", " ").strip()),
        field("birth_date", format_date(form.patient_birth_date)),
        field("sex", labels.get(f"sex_{sex}", sex) if sex else ""),
        field("patient_id", form.patient_id),
        field("national_id", form.national_id),
        para(label("s_consultation"), section),
        field("requesting", form.requesting_hospital),
        field("consulting", form.consulting_hospital),
        field("scheduled", format_time(form.scheduled_start)),
        para(label("s_giver"), section),
        para(label("giver")),
        para(label("s_explained"), section),
        *(para(f"- {line}") for line in EXPLAINED[form.language]),
        para(label("s_decision"), section),
        choice("teleconsultation"),
        choice("recording"),
        Spacer(1, 6 * mm),
    ]
    columns = [[para(label(key), center_bold), para(label("sign_here"), center),
                Spacer(1, 22 * mm)] for key in ("giver_sign", "doctor_sign")]
    signatures = Table([columns], colWidths=[FRAME_WIDTH / 2] * 2, splitInRow=1)
    signatures.setStyle(TableStyle([*TABLE_FONT, ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [KeepTogether([para(label("dated"), center), Spacer(1, 3 * mm), signatures])]

    out = io.BytesIO()
    SimpleDocTemplate(
        out, pagesize=A4, title=plain_text(f"{label('heading')} {form.consultation_id}"),
        author=plain_text(form.consulting_hospital), creator="Hoichan", lang=form.language,
        initialFontName=FONT, leftMargin=LEFT_MARGIN, rightMargin=RIGHT_MARGIN,
        topMargin=TOP_MARGIN, bottomMargin=BOTTOM_MARGIN).build(story)
    return out.getvalue()
