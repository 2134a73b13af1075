"""DICOM JSON (PS3.18 F.2) as an observer the host has not shown the patient to reads it:
the name as initials, the patient ID masked, birth date, other IDs, address and telephone
left out. Frames and rendered images carry no header and go unchanged."""

from __future__ import annotations

from typing import Any

from app.deidentify import MASKED_ID, initials

PATIENT_NAME, PATIENT_ID = "00100010", "00100020"
#: Birth date and time, other patient IDs (and their sequence), other names, address,
#: telephone numbers, the issuer of the ID.
LEFT_OUT = ("00100030", "00100032", "00101000", "00101001", "00101002", "00101040",
            "00102154", "00100021", "00101060")


def mask(item: dict[str, Any]) -> dict[str, Any]:
    out = {tag: value for tag, value in item.items() if tag not in LEFT_OUT}
    name = out.get(PATIENT_NAME)
    if name and name.get("Value"):
        out[PATIENT_NAME] = {"vr": "PN", "Value": [
            {"Alphabetic": initials(v.get("Alphabetic", ""))} for v in name["Value"]]}
    if PATIENT_ID in out and out[PATIENT_ID].get("Value"):
        out[PATIENT_ID] = {"vr": "LO", "Value": [MASKED_ID]}
    return out


def mask_where(items: list[dict[str, Any]], masked: frozenset[str]) -> list[dict[str, Any]]:
    """Each item of a study in ``masked`` (by its Study Instance UID) masked."""
    if not masked:
        return items
    return [mask(i) if _study(i) in masked else i for i in items]


def _study(item: dict[str, Any]) -> str | None:
    values = item.get("0020000D", {}).get("Value")
    return values[0] if values else None
