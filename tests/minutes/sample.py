"""A filled-in minutes document and PNG key images for the renderer's and signer's tests."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from PIL import Image

from app.minutes.document import Answer, Attendee, KeyImage, MinutesDocument, Signoff

STARTED = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 08:00 in Ho Chi Minh City
ENDED = STARTED + timedelta(minutes=75)


def png(width: int, height: int, shade: int = 128) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), shade).save(out, format="PNG")
    return out.getvalue()


def attendee(n: int) -> Attendee:
    roles = ("host", "secretary", "presenter", "participant", "observer")
    tiers = ("central", "provincial", "district", "commune")
    return Attendee(name=f"Bác sĩ Trần Thị Hồng {n}", title="Bác sĩ chuyên khoa II",
                    hospital="Bệnh viện Đa khoa tỉnh Quảng Ngãi", tier=tiers[n % 4],
                    role=roles[n % 5], attended_from=STARTED + timedelta(minutes=n),
                    attended_to=ENDED)


def document(**changes: object) -> MinutesDocument:
    doc = MinutesDocument(
        consultation_id=42,
        title="Hội chẩn ca chấn thương sọ não",
        requesting_hospital="Trung tâm Y tế huyện Sơn Tịnh",
        consulting_hospital="Bệnh viện Chợ Rẫy",
        started_at=STARTED,
        ended_at=ENDED,
        patient_name="Nguyễn Văn Ánh",
        patient_sex="M",
        patient_birth_date=date(1968, 5, 19),
        patient_id="BN-2026-00042",
        national_id="051068000123",
        reason="Cần ý kiến tuyến trên về chỉ định phẫu thuật",
        answers=(Answer("Có chỉ định mổ lấy máu tụ không?",
                        "Có chỉ định mổ cấp cứu lấy máu tụ ngoài màng cứng"),
                 Answer("Có thể chuyển viện an toàn không?",
                        "Không chuyển; mổ tại chỗ với hỗ trợ từ xa")),
        history="Tăng huyết áp 10 năm, điều trị không đều",
        course_of_treatment="Nhập viện sau tai nạn giao thông, Glasgow 13 điểm",
        findings="Đồng tử hai bên đều, phản xạ ánh sáng (+)",
        tests="CT sọ não: máu tụ ngoài màng cứng thái dương phải dày 15 mm",
        diagnosis_before="Theo dõi chấn thương sọ não, chẩn đoán ban đầu: máu tụ nội sọ",
        diagnosis_after="Máu tụ ngoài màng cứng thái dương phải",
        treatment_plan="Phẫu thuật cấp cứu trong 6 giờ",
        treatment_method="Mở sọ lấy máu tụ, cầm máu",
        follow_up="Theo dõi tri giác mỗi giờ, chụp CT kiểm tra sau 24 giờ",
        attendees=tuple(attendee(n) for n in range(1, 6)),
        chair="PGS.TS. Lê Quang Dũng",
        secretary="ThS.BS. Phạm Thị Yến",
        signoffs=(Signoff("ThS.BS. Phạm Thị Yến", "Bác sĩ điều trị", "secretary",
                          ENDED + timedelta(minutes=5)),
                  Signoff("PGS.TS. Lê Quang Dũng", "Trưởng khoa Ngoại thần kinh", "host",
                          ENDED + timedelta(minutes=9))),
        version=1,
        amendment_reason="",
        key_images=(KeyImage(png(512, 512), "CT sọ não, lát cắt qua ổ máu tụ"),),
    )
    return replace(doc, **changes)
