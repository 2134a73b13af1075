"""Where an instance's frames lie, per encoding, so that serving one is a positioned read.

An encoding's frames are either in the stored file itself (its native little-endian values,
or its encapsulated fragments as they lie) or in a copy beside it (``<sop>.<syntax>.frames``,
the frames one after another), made once on first demand, fsynced, then indexed: a repeat
request costs a file read, never an encode. The stored file's own index is written at
ingest, with its instance (``stored_ranges``, from what the structure check found); it is
built here on first demand only for objects stored before ingest did so. The index rows go
with their instance (foreign key ON DELETE CASCADE).
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import get_expected_length
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pacs import frame_codec, store
from app.pacs.models import DicomInstance, FrameIndex
from app.pacs.syntaxes import EXPLICIT_LE, IMPLICIT_LE, NATIVE

Ranges = list[list[list[int]]]  # per frame, its [offset, length] pieces

ITEM, SEQUENCE_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # pixel, float and double float data
KEPT_INDEXES = 20_000  # about 40 studies of 500 slices in two encodings each


def _value_offset(ds: Dataset) -> int | None:
    """The file offset of the pixel data's value, found without loading it."""
    for tag in PIXEL_TAGS:
        if tag in ds:
            offset: int | None = getattr(ds.get_item(tag), "file_tell", None)
            return offset
    return None


@dataclass(frozen=True)
class PixelValue:
    """Where a file's pixel data value lies: its offset and, when encapsulated, the Basic
    Offset Table's value and each fragment's item (offset of its tag, value length)."""

    offset: int
    table: bytes = b""
    fragments: tuple[tuple[int, int], ...] | None = None


def stored_encoding(syntax: str) -> str | None:
    """The encoding whose frames a file in ``syntax`` holds as they lie: uncompressed little
    endian for native little-endian files, the syntax itself for encapsulated ones; None for
    big-endian and deflated files, whose frames must be rewritten."""
    if syntax in (EXPLICIT_LE, IMPLICIT_LE):
        return EXPLICIT_LE
    return None if syntax in NATIVE else syntax


def _native_ranges(ds: Dataset, offset: int, frames: int) -> Ranges | None:
    if int(ds.get("BitsAllocated", 8)) % 8:
        return None  # bit-packed frames need not start on a byte
    size = get_expected_length(ds, unit="bytes") // frames
    return [[[offset + i * size, size]] for i in range(frames)]


def _items(data: bytes, pos: int) -> list[tuple[int, int]]:
    """Each item from ``pos`` to the sequence delimiter, as (item offset, value length)."""
    items: list[tuple[int, int]] = []
    while data[pos:pos + 4] == ITEM:
        (length,) = struct.unpack_from("<I", data, pos + 4)
        items.append((pos, length))
        pos += 8 + length
    if data[pos:pos + 4] != SEQUENCE_END:
        raise ValueError("encapsulated pixel data without its sequence delimiter")
    return items


def _read_pixel_value(path: Path, offset: int) -> PixelValue:
    """The encapsulated pixel data of a stored file, its items walked from ``offset``."""
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    (table_length,) = struct.unpack_from("<I", data, 4)
    fragments = tuple((offset + item, length) for item, length in _items(data, 8 + table_length))
    return PixelValue(offset, data[8:8 + table_length], fragments)


def _fragment_ranges(ds: Dataset, fragments: tuple[tuple[int, int], ...], table: bytes,
                     frames: int) -> Ranges | None:
    """Each frame's fragments; None where the file does not say which fragments make which
    frame (no offset table and not one fragment per frame)."""
    # Offset tables count from the first fragment's item tag (PS3.5 A.4).
    first = fragments[0][0] if fragments else 0
    pieces = [(item - first, item + 8, length) for item, length in fragments]
    if frames == 1:
        return [[[value, length] for _, value, length in pieces]]
    if len(pieces) == frames:
        return [[[value, length]] for _, value, length in pieces]
    starts: list[int] = []
    if "ExtendedOffsetTable" in ds:
        extended = bytes(ds.ExtendedOffsetTable)
        starts = list(struct.unpack(f"<{len(extended) // 8}Q", extended))
    elif table:
        starts = list(struct.unpack(f"<{len(table) // 4}I", table))
    if len(starts) != frames:
        return None
    bounds = [*starts[1:], 1 << 62]
    grouped: Ranges = [[] for _ in range(frames)]
    for relative, value, length in pieces:
        frame = next(i for i, end in enumerate(bounds) if relative < end)
        grouped[frame].append([value, length])
    return grouped if all(grouped) else None


def stored_ranges(ds: Dataset, pixel: PixelValue) -> tuple[str, Ranges] | None:
    """The frames a file holds as they lie: their encoding (``stored_encoding``) and where
    each frame is; None where they must be rewritten to be served."""
    encoding = stored_encoding(str(ds.file_meta.TransferSyntaxUID))
    if encoding is None:
        return None
    frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    ranges: Ranges | None = None
    if encoding == EXPLICIT_LE and pixel.fragments is None:
        ranges = _native_ranges(ds, pixel.offset, frames)
    elif encoding != EXPLICIT_LE and pixel.fragments is not None:
        ranges = _fragment_ranges(ds, pixel.fragments, pixel.table, frames)
    return None if ranges is None else (encoding, ranges)


def _stored_file_ranges(path: Path, encoding: str) -> Ranges | None:
    """The frames of ``encoding`` inside the stored file itself, or None."""
    ds = pydicom.dcmread(path, defer_size=1024)
    start = _value_offset(ds)
    if start is None or stored_encoding(str(ds.file_meta.TransferSyntaxUID)) != encoding:
        return None
    pixel = PixelValue(start) if encoding == EXPLICIT_LE else _read_pixel_value(path, start)
    found = stored_ranges(ds, pixel)
    return None if found is None else found[1]


def _frames_of(path: Path, encoding: str) -> Iterator[bytes]:
    """The frames in ``encoding``: the stored ones as they lie (regrouped), or encoded."""
    ds = pydicom.dcmread(path)
    stored = str(ds.file_meta.TransferSyntaxUID)
    if encoding == stored and stored not in NATIVE:
        yield from generate_frames(ds.PixelData, number_of_frames=int(
            ds.get("NumberOfFrames", 1) or 1))
        return
    yield from frame_codec.encode(ds, encoding)


def _copy(root: Path, instance_path: str, encoding: str) -> tuple[str, Ranges, int]:
    """Write the frames in ``encoding`` beside the instance; its path, ranges and size."""
    ranges: Ranges = []
    chunks: list[bytes] = []
    offset = 0
    for frame in _frames_of(root / instance_path, encoding):
        ranges.append([[offset, len(frame)]])
        chunks.append(frame)
        offset += len(frame)
    relative = f"{instance_path.removesuffix('.dcm')}.{encoding}.frames"
    store.write_atomically(root, relative, b"".join(chunks))
    return relative, ranges, offset


def build(root: Path, instance: DicomInstance, encoding: str) -> FrameIndex:
    """The index of ``encoding`` for ``instance``, writing a copy where the stored file
    does not hold those frames as they lie. Raises frame_codec.CannotEncode."""
    ranges = _stored_file_ranges(root / instance.path, encoding)
    if ranges is not None:
        return FrameIndex(instance_id=instance.id, transfer_syntax_uid=encoding,
                          path=instance.path, frames=ranges, size_bytes=instance.size_bytes)
    path, ranges, size = _copy(root, instance.path, encoding)
    return FrameIndex(instance_id=instance.id, transfer_syntax_uid=encoding, path=path,
                      frames=ranges, size_bytes=size)


def read(root: Path, index: FrameIndex, numbers: list[int]) -> list[bytes]:
    """Frames ``numbers`` (1-based, known to exist) with one positioned read per piece."""
    fd = os.open(root / index.path, os.O_RDONLY)
    try:
        return [b"".join(os.pread(fd, length, offset) for offset, length in index.frames[n - 1])
                for n in numbers]
    finally:
        os.close(fd)


class FrameIndexes:
    """Indexes looked up, or built once per instance and encoding even when many viewers
    ask at the same moment (the room's followers all jump together)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], root: Path) -> None:
        self._sessions = sessions
        self._root = root
        self._building: dict[tuple[int, str], asyncio.Future[FrameIndex]] = {}
        # An index never changes once written: the hot path keeps the recent ones.
        self._known: OrderedDict[tuple[int, str], FrameIndex] = OrderedDict()

    async def get(self, instance: DicomInstance, encoding: str) -> FrameIndex:
        key = (instance.id, encoding)
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
            return known
        async with self._sessions() as session:
            found = await session.scalar(select(FrameIndex).where(
                FrameIndex.instance_id == instance.id,
                FrameIndex.transfer_syntax_uid == encoding))
        if found is None:
            found = await self._built(key, instance, encoding)
        self._known[key] = found
        if len(self._known) > KEPT_INDEXES:
            self._known.popitem(last=False)
        return found

    async def _built(self, key: tuple[int, str], instance: DicomInstance, encoding: str
                     ) -> FrameIndex:
        task = self._building.get(key)
        if task is None:
            task = asyncio.ensure_future(self._build(instance, encoding))
            self._building[key] = task
            task.add_done_callback(lambda _: self._building.pop(key, None))
        # Shielded: one viewer giving up must not cancel the build the others wait for.
        return await asyncio.shield(task)

    async def _build(self, instance: DicomInstance, encoding: str) -> FrameIndex:
        index = await asyncio.to_thread(build, self._root, instance, encoding)
        async with self._sessions() as session:
            session.add(index)
            try:
                await session.commit()
            except IntegrityError:
                # Another node indexed it meanwhile; its copy has the same bytes and path.
                await session.rollback()
                found = await session.scalar(select(FrameIndex).where(
                    FrameIndex.instance_id == instance.id,
                    FrameIndex.transfer_syntax_uid == encoding))
                if found is None:
                    raise
                return found
            await session.refresh(index)
        return index
