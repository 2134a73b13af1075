"""Checking a received DICOM object before anything of it is kept: whole, readable, with
valid UIDs; and reading, in the same pass, what the index keeps of it.

Pure CPU work on the bytes in memory, safe to run on any thread.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from app.pacs import frame_index, store
from app.pacs.frame_index import PixelValue, Ranges
from app.text_search import person_name

UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


class IngestError(Exception):
    """The object was refused as malformed; nothing of it was kept.

    Failing to keep a well-formed object (disk, database) raises the underlying OSError or
    database error instead, so callers can tell "fix the object" from "try again later".
    """


# --- Structure: every element complete, every length inside its container (PS3.5 7.1, 7.5).
# pydicom reads leniently (a value cut short is kept short, an unknown VR fails only when the
# element is used), so a truncated or corrupt object would otherwise be stored as if whole.

PREAMBLE = 128
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT",
                      "UV"})
SHORT_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                       "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"})
MAX_DEPTH = 64  # nested sequences; real objects use a handful
MAX_INFLATED = 1 << 30  # a deflated object that inflates past this is refused, not held
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"})


@dataclass(frozen=True)
class _Encoding:
    implicit: bool
    order: str  # struct byte order: "<" or ">"


EXPLICIT_LITTLE = _Encoding(False, "<")
# Undefined-length UN content is implicit VR little endian whatever the syntax (PS3.5 6.2.2).
IMPLICIT_LITTLE = _Encoding(True, "<")


def _header(data: bytes, pos: int, enc: _Encoding) -> tuple[int, str | None, int, int]:
    """Tag, VR (None where the encoding has none), value length and value offset."""
    if len(data) - pos < 8:
        raise IngestError(f"element header cut short at byte {pos}")
    group, element = struct.unpack_from(enc.order + "HH", data, pos)
    tag = group << 16 | element
    if group == 0xFFFE or enc.implicit:
        (length,) = struct.unpack_from(enc.order + "I", data, pos + 4)
        vr = None if group == 0xFFFE else _dictionary_vr(tag)
        return tag, vr, length, pos + 8
    vr = data[pos + 4:pos + 6].decode("latin-1")
    if vr in SHORT_VRS:
        (length,) = struct.unpack_from(enc.order + "H", data, pos + 6)
        return tag, vr, length, pos + 8
    if vr not in LONG_VRS:
        raise IngestError(f"element {_tag(tag)} has an unknown VR {vr!r}")
    if len(data) - pos < 12:
        raise IngestError(f"element header cut short at byte {pos}")
    (length,) = struct.unpack_from(enc.order + "I", data, pos + 8)
    return tag, vr, length, pos + 12


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _dictionary_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:  # private or unknown: its value is opaque bytes
        return None


def _elements(data: bytes, pos: int, end: int | None, enc: _Encoding, depth: int,
              pixels: dict[int, PixelValue] | None = None) -> int:
    """Check a dataset's elements from ``pos`` up to ``end``, or, for an item of undefined
    length (``end`` None), up to its Item Delimitation; the offset after it. ``pixels``
    (top level only) gets where each pixel data value lies, so that the frames can be
    indexed without parsing the object again."""
    if depth > MAX_DEPTH:
        raise IngestError(f"sequences nested deeper than {MAX_DEPTH}")
    limit = len(data) if end is None else end
    while pos < limit:
        tag, vr, length, pos = _header(data, pos, enc)
        if pos > limit:
            raise IngestError(f"element header crosses the end of its item at byte {pos}")
        if tag == ITEM_END and end is None:
            return pos
        if tag >> 16 == 0xFFFE:
            raise IngestError(f"misplaced item or delimiter {_tag(tag)}")
        if length == UNDEFINED:
            if not (enc.implicit or vr in ("SQ", "UN", "OB", "OW")):
                raise IngestError(f"a {vr} element of undefined length at byte {pos}")
            fragments = vr in ("OB", "OW")  # encapsulated pixel data
            items: list[tuple[int, int]] = []
            value = pos
            pos = _items(data, pos, None, IMPLICIT_LITTLE if vr == "UN" else enc, depth + 1,
                         fragments, items)
            if pixels is not None and fragments and tag in frame_index.PIXEL_TAGS and items:
                (table_at, table_length), *rest = items
                pixels[tag] = PixelValue(value, data[table_at + 8:table_at + 8 + table_length],
                                         tuple(rest))
            continue
        if length > limit - pos:
            raise IngestError(f"element {_tag(tag)} declares {length} bytes, "
                              f"{limit - pos} remain")
        if vr == "SQ":
            _items(data, pos, pos + length, enc, depth + 1, fragments=False)
        elif pixels is not None and tag in frame_index.PIXEL_TAGS:
            pixels[tag] = PixelValue(pos)
        pos += length
    if end is None:
        raise IngestError("item without its Item Delimitation")
    return pos


def _items(data: bytes, pos: int, end: int | None, enc: _Encoding, depth: int,
           fragments: bool, found: list[tuple[int, int]] | None = None) -> int:
    """Check a sequence's items (or pixel data fragments) from ``pos`` up to ``end``, or,
    for undefined length, up to its Sequence Delimitation; the offset after it. ``found``
    gets each fragment's (item offset, value length)."""
    while end is None or pos < end:
        at = pos
        tag, _, length, pos = _header(data, pos, enc)  # items have no VR in any syntax
        if end is not None and pos > end:
            raise IngestError(f"item header crosses the end of its sequence at byte {pos}")
        if tag == SEQUENCE_END and end is None:
            return pos
        if tag != ITEM:
            raise IngestError(f"expected an item, found {_tag(tag)}")
        if length == UNDEFINED and not fragments:
            pos = _elements(data, pos, None, enc, depth)
            continue
        if length == UNDEFINED or length > (len(data) if end is None else end) - pos:
            raise IngestError(f"item at byte {pos} declares {length} bytes, fewer remain")
        if not fragments:
            _elements(data, pos, pos + length, enc, depth)
        elif found is not None:
            found.append((at, length))
        pos += length
    return pos


def _check_structure(data: bytes) -> PixelValue | None:
    """Refuse with IngestError anything but a complete Part 10 file: preamble, ``DICM``,
    file meta, then a dataset whose every element lies whole inside the data. Returns where
    the pixel data value lies in ``data`` (None for a deflated object, whose offsets are in
    the inflated dataset, and for one without pixel data)."""
    if len(data) < PREAMBLE + 4 or data[PREAMBLE:PREAMBLE + 4] != b"DICM":
        raise IngestError("not a DICOM file: no preamble and DICM prefix")
    pos, syntax = PREAMBLE + 4, ""
    while len(data) - pos >= 2 and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        tag, _, length, value = _header(data, pos, EXPLICIT_LITTLE)
        if length == UNDEFINED or length > len(data) - value:
            raise IngestError("file meta information cut short")
        if tag == 0x00020010:
            syntax = data[value:value + length].rstrip(b"\x00 ").decode("latin-1")
        pos = value + length
    if not syntax:
        raise IngestError("no file meta information (transfer syntax)")
    encoding = _Encoding(syntax == IMPLICIT_LE, ">" if syntax == EXPLICIT_BE else "<")
    if syntax not in DEFLATED:
        pixels: dict[int, PixelValue] = {}
        _elements(data, pos, len(data), encoding, 0, pixels)
        return next((pixels[tag] for tag in frame_index.PIXEL_TAGS if tag in pixels), None)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data[pos:], MAX_INFLATED)
    except zlib.error as exc:
        raise IngestError(f"deflated dataset is corrupt: {exc}") from None
    if inflater.unconsumed_tail:
        raise IngestError("deflated dataset inflates beyond the size we accept")
    if not inflater.eof:
        raise IngestError("deflated dataset cut short")
    _elements(body, 0, len(body), encoding, 0)
    return None


# --- Attributes: what the index keeps of an object.

STUDY_TEXT = {"patient_id": ("PatientID", 64), "patient_name": ("PatientName", 324),
              "patient_birth_date": ("PatientBirthDate", 8), "patient_sex": ("PatientSex", 16),
              "study_date": ("StudyDate", 8), "study_time": ("StudyTime", 16),
              "accession_number": ("AccessionNumber", 16),
              "study_description": ("StudyDescription", 64),
              "referring_physician_name": ("ReferringPhysicianName", 324),
              "study_id": ("StudyID", 16)}
SERIES_TEXT = {"modality": ("Modality", 16), "series_description": ("SeriesDescription", 64),
               "body_part_examined": ("BodyPartExamined", 16)}
INT32 = (-(1 << 31), (1 << 31) - 1)  # the index's Integer columns


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword, "")
    # PostgreSQL text cannot hold NUL, which no DICOM text value may contain anyway.
    return str(value if value is not None else "").replace("\x00", "")[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is None or INT32[0] <= number <= INT32[1] else None


@dataclass(frozen=True)
class Checked:
    """An object found whole and readable, as received, with the index rows' values (read
    once, while a malformed value could still be refused) and where its frames lie."""

    data: bytes
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    #: The stored file's own frame index (its encoding, each frame's byte ranges), or None
    #: where it is left to be built on first demand.
    frames: tuple[str, Ranges] | None

    @property
    def relative_path(self) -> str:
        return store.relative_path(self.study_uid, self.series_uid, self.sop_uid)


def _index(ds: Dataset) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The study, series and instance rows' values."""
    study = {column: _text(ds, k, n) for column, (k, n) in STUDY_TEXT.items()}
    study["patient_name_search"] = person_name(study["patient_name"])[:324]
    study["referring_physician_search"] = person_name(study["referring_physician_name"])[:324]
    series = {**{column: _text(ds, k, n) for column, (k, n) in SERIES_TEXT.items()},
              "series_number": _int(ds, "SeriesNumber")}
    instance = {"instance_number": _int(ds, "InstanceNumber"),
                "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
                "rows": _int(ds, "Rows"), "columns": _int(ds, "Columns"),
                "number_of_frames": _int(ds, "NumberOfFrames")}
    return study, series, instance


def _frames(ds: Dataset, pixel: PixelValue | None) -> tuple[str, Ranges] | None:
    if pixel is None:
        return None
    try:
        return frame_index.stored_ranges(ds, pixel)
    except (ValueError, TypeError, KeyError, AttributeError, struct.error):
        # Pixel attributes missing or unusable: the index is left to the first request,
        # which reports why it cannot be served.
        return None


def check(data: bytes) -> Checked:
    """``data`` (a DICOM file: preamble, file meta, dataset) checked, or IngestError."""
    pixel = _check_structure(data)
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
        # Convert every element now: one pydicom cannot read (bad VR, bad character set)
        # would otherwise fail later, when the object is served.
        for _ in ds.iterall():
            pass
        missing = [k for k in REQUIRED_UIDS if not str(ds.get(k, "") or "")]
        if missing:
            raise IngestError(f"missing {', '.join(missing)}")
        study, series, instance = _index(ds)
    except IngestError:
        raise
    except Exception as exc:  # pydicom raises many kinds on malformed input: all mean this
        raise IngestError(f"not a readable DICOM object: {type(exc).__name__}: {exc}"
                          ) from None
    for keyword in REQUIRED_UIDS:
        value = str(ds.get(keyword))
        if len(value) > 64 or not UID.match(value):
            raise IngestError(f"{keyword} is not a valid UID: {value[:80]!r}")
    return Checked(data=data, study_uid=str(ds.StudyInstanceUID),
                   series_uid=str(ds.SeriesInstanceUID), sop_uid=str(ds.SOPInstanceUID),
                   sop_class_uid=str(ds.SOPClassUID), study=study, series=series,
                   instance=instance, frames=_frames(ds, pixel))
