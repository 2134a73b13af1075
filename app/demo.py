"""The demo: a 1-4-4-2 hospital network, two hospitals beyond it, their users and one
consultation happening now in which every room role is somebody's."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.passwords import hash_password
from app.db.models import Case, CaseStudy, Consultation, Hospital, Invitation, Tier, User
from app.db.types import utcnow
from app.roles import PlatformRole, RoomRole

CREDENTIALS_FILE = "demo-credentials.txt"
EMAIL_DOMAIN = "demo.hoichan.vn"
# Fixed, so the demo case and the generated demo CT series agree across restarts.
DEMO_STUDY_UID = generate_uid(entropy_srcs=["hoichan demo CT study"])

# (code, name, tier, parent code)
HospitalRow = tuple[str, str, Tier, str | None]
# The 1-4-4-2 network the demo consultation is held in.
NETWORK: list[HospitalRow] = [
    ("BM", "Bệnh viện Bạch Mai", Tier.central, None),
    ("NDI", "Bệnh viện Đa khoa tỉnh Nam Định", Tier.provincial, "BM"),
    ("TBI", "Bệnh viện Đa khoa tỉnh Thái Bình", Tier.provincial, "BM"),
    ("HNA", "Bệnh viện Đa khoa tỉnh Hà Nam", Tier.provincial, "BM"),
    ("NBI", "Bệnh viện Đa khoa tỉnh Ninh Bình", Tier.provincial, "BM"),
    ("GTH", "Trung tâm Y tế huyện Giao Thủy", Tier.district, "NDI"),
    ("HHA", "Trung tâm Y tế huyện Hải Hậu", Tier.district, "NDI"),
    ("KXU", "Trung tâm Y tế huyện Kiến Xương", Tier.district, "TBI"),
    ("KBA", "Trung tâm Y tế huyện Kim Bảng", Tier.district, "HNA"),
    ("GTI", "Trạm Y tế xã Giao Thiện", Tier.commune, "GTH"),
    ("HLY", "Trạm Y tế xã Hải Lý", Tier.commune, "HHA"),
]
# Hospitals outside that network whose doctors follow the consultation as observers: the
# receive-only role a hospital learning from a case has, which the demo would otherwise lack.
OBSERVING: list[HospitalRow] = [
    ("HYE", "Bệnh viện Đa khoa tỉnh Hưng Yên", Tier.provincial, "BM"),
    ("THA", "Trung tâm Y tế huyện Tiền Hải", Tier.district, "TBI"),
]
# One doctor per hospital, in the order of NETWORK then OBSERVING.
DOCTOR_NAMES = [
    "GS. Nguyễn Văn An", "BS. Trần Thị Bình", "BS. Lê Văn Cường", "BS. Phạm Thị Dung",
    "BS. Hoàng Văn Em", "BS. Vũ Thị Giang", "BS. Đặng Văn Hải", "BS. Bùi Thị Hoa",
    "BS. Đỗ Văn Khoa", "BS. Ngô Thị Lan", "BS. Dương Văn Minh",
    "BS. Trịnh Thị Mai", "BS. Lý Văn Nam",
]
HOST_CODE, PRESENTER_CODE = "BM", "NDI"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    hospital: str
    #: The doctor's role in the demo consultation's room; None for admin and coordinator.
    room_role: RoomRole | None = None


def doctor_email(code: str) -> str:
    return f"doctor.{code.lower()}@{EMAIL_DOMAIN}"


def room_role(code: str) -> RoomRole:
    """The role in the demo consultation of the doctor of the hospital ``code``."""
    if code == HOST_CODE:
        return RoomRole.host
    if code == PRESENTER_CODE:
        return RoomRole.presenter
    if code in {observing[0] for observing in OBSERVING}:
        return RoomRole.observer
    return RoomRole.participant


async def seed(session: AsyncSession, password: str) -> list[DemoLogin] | None:
    """Create the demo in the caller's transaction; None if it is there already."""
    if await session.scalar(select(Hospital.id).where(Hospital.code == NETWORK[0][0])):
        return None
    pw_hash = hash_password(password)
    hospitals: dict[str, Hospital] = {}
    for code, name, tier, parent in NETWORK + OBSERVING:
        hospitals[code] = Hospital(code=code, name=name, tier=tier,
                                   parent=hospitals[parent] if parent else None)
        session.add(hospitals[code])
    central = hospitals[HOST_CODE]
    logins = [
        DemoLogin(f"admin@{EMAIL_DOMAIN}", "admin", central.code),
        DemoLogin(f"coordinator@{EMAIL_DOMAIN}", "coordinator", central.code),
    ]
    users = [User(email=logins[0].email, name="Quản trị hệ thống", hospital=central,
                  roles=[PlatformRole.admin.value], password_hash=pw_hash),
             User(email=logins[1].email, name="Điều phối viên Hội chẩn", hospital=central,
                  roles=[PlatformRole.coordinator.value], password_hash=pw_hash)]
    doctors: dict[str, User] = {}
    for (code, _, _, _), name in zip(NETWORK + OBSERVING, DOCTOR_NAMES, strict=True):
        doctors[code] = User(email=doctor_email(code), name=name, hospital=hospitals[code],
                             roles=[PlatformRole.doctor.value], password_hash=pw_hash)
        logins.append(DemoLogin(doctors[code].email, "doctor", code, room_role(code)))
    session.add_all(users + list(doctors.values()))
    await session.flush()

    now = utcnow().replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15)
    consultation = Consultation(
        title="Hội chẩn: khối choán chỗ phổi phải",
        description="Buổi hội chẩn mẫu: bệnh viện tỉnh trình bày, Bạch Mai chủ trì.",
        scheduled_start=start, scheduled_end=start + timedelta(hours=2),
        timezone="Asia/Ho_Chi_Minh", host_hospital=central, created_by_id=users[1].id,
    )
    consultation.invitations = [Invitation(user=doctor, role=room_role(code))
                                for code, doctor in doctors.items()]
    consultation.cases = [Case(
        patient_id="HC-0001", patient_name="NGUYEN^VAN^X", patient_birth_date=date(1961, 3, 14),
        patient_sex="M", clinical_question="Khối mờ thùy trên phổi phải, nghi u. Xin ý kiến "
        "chẩn đoán và hướng điều trị.",
        studies=[CaseStudy(study_instance_uid=DEMO_STUDY_UID)],
    )]
    session.add(consultation)
    await session.flush()
    audit.record(session, "demo.seed", actor=None, object_type="consultation",
                 object_id=consultation.id, consultation_id=consultation.id,
                 detail={"hospitals": len(hospitals), "users": len(logins)})
    return logins


def demo_password() -> tuple[str, bool]:
    """HOICHAN_DEMO_PASSWORD, or a generated one; True when it was generated."""
    configured = os.environ.get("HOICHAN_DEMO_PASSWORD")
    if configured:
        return configured, False
    return secrets.token_urlsafe(9), True


def _credentials_line(login: DemoLogin) -> str:
    line = f"{login.role:<12} {login.hospital:<4} {login.email}"
    if login.room_role is None:
        return line
    return f"{line:<46} {login.room_role.value} in the demo consultation"


def write_credentials(data_dir: Path, password: str, logins: list[DemoLogin]) -> Path:
    path = data_dir / CREDENTIALS_FILE
    lines = [f"password for every demo account: {password}", ""] + [
        _credentials_line(login) for login in logins]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
