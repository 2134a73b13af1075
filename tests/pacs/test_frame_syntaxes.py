"""WADO-RS frames in the syntax the Accept header picks: bit-exact in every lossless syntax
for the pixel layouts modalities produce, the stored encoding as it lies, q-values, 406
instead of a syntax not asked for, and an encoded copy made once and then read."""

from __future__ import annotations

import asyncio
import gzip
import io
import re

import brotli
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.pixels import pixel_array
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from sqlalchemy import select
from yarl import URL

from app.db.engine import create_engine, session_factory
from app.dicomweb.negotiation import candidates
from app.errors import ApiError
from app.pacs.ingest import ingest
from app.pacs.models import FrameIndex
from app.pacs.store import store_root
from tests.pacs.frames import IMAGE_PIXEL, decode_served

HTJ2K, HTJ2K_RPCL = "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202"
JLS, J2K = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"
MEDIA = {HTJ2K: "image/jphc", HTJ2K_RPCL: "image/jphc", JLS: "image/jls", J2K: "image/jp2"}
LOSSLESS = (HTJ2K, HTJ2K_RPCL, JLS, J2K)
STUDY = "1.2.826.0.1.3680043.9.7777.13"


def accept(media: str, syntax: str | None = None, q: float | None = None) -> str:
    entry = f'multipart/related; type="{media}"'
    if syntax:
        entry += f"; transfer-syntax={syntax}"
    return entry + (f"; q={q}" if q is not None else "")


def image(rows: int, columns: int, frames: int, bits_stored: int, signed: bool,
          photometric: str, syntax: str = ExplicitVRLittleEndian, seed: int = 0) -> bytes:
    """A noisy image with exactly the given pixel layout, as a Part 10 file."""
    rng = np.random.default_rng(seed)
    colour = photometric in ("RGB", "YBR_FULL")
    allocated = 8 if bits_stored <= 8 else 16
    low, high = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (
        0, (1 << bits_stored) - 1)
    shape = (frames, rows, columns) + ((3,) if colour else ())
    dtype = f"{'i' if signed else 'u'}{allocated // 8}"
    # A smooth ramp with noise: compressible like an image, exercising the whole range.
    ramp = np.linspace(low, high, rows * columns).reshape(rows, columns)
    values = ramp[None, :, :, None] if colour else ramp[None]
    pixels = np.clip(values + rng.normal(0, (high - low) / 50, shape), low, high)
    pixels = pixels.astype(dtype)
    meta = FileMetaDataset()
    sop = generate_uid()
    meta.MediaStorageSOPClassUID = CTImageStorage if not colour else SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = "OT", "SYN-13", "SYN^THETIC"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = pixels.tobytes()
    if syntax == RLELossless:
        ds.compress(RLELossless, encoding_plugin="pydicom")
    elif syntax == DeflatedExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


LAYOUTS = {
    "unsigned 8-bit grey": (64, 64, 1, 8, False, "MONOCHROME2"),
    "signed 8-bit grey": (64, 64, 1, 8, True, "MONOCHROME2"),
    "unsigned 12-bit grey": (64, 64, 1, 12, False, "MONOCHROME2"),
    "signed 12-bit grey": (64, 64, 1, 12, True, "MONOCHROME2"),
    "unsigned 16-bit grey": (64, 64, 1, 16, False, "MONOCHROME2"),
    "signed 16-bit grey": (64, 64, 1, 16, True, "MONOCHROME2"),
    "MONOCHROME1": (64, 64, 1, 12, False, "MONOCHROME1"),
    "RGB": (48, 64, 1, 8, False, "RGB"),
    "YBR_FULL": (48, 64, 1, 8, False, "YBR_FULL"),
    "multi-frame": (32, 32, 5, 16, True, "MONOCHROME2"),
    "odd size": (37, 53, 1, 16, False, "MONOCHROME2"),
    "odd size colour": (7, 9, 2, 8, False, "RGB"),
}


async def _store(world, data: bytes) -> Dataset:
    engine = create_engine(world.settings.database_url)
    try:
        await ingest(session_factory(engine), world.settings.data_dir, data, "test")
    finally:
        await engine.dispose()
    return pydicom.dcmread(io.BytesIO(data))


def _url(ds: Dataset) -> str:
    frames = ",".join(str(n) for n in range(1, int(ds.get("NumberOfFrames", 1)) + 1))
    return (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/"
            f"instances/{ds.SOPInstanceUID}/frames/{frames}")


def _parts(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, payload = chunk.split(b"\r\n\r\n", 1)
        kind = re.search(rb"Content-Type: ([^\r\n]+)", head)
        assert kind, head
        out.append((kind.group(1).decode(), payload.removesuffix(b"\r\n")))
    return out


async def _frames(client, world, ds: Dataset, accept_header: str
                  ) -> tuple[str, list[tuple[str, bytes]]]:
    r = await client.get(_url(ds), headers={**world.auth("admin"), "Accept": accept_header,
                                            "Accept-Encoding": "gzip"})
    assert r.status == 200, await r.text()
    assert "Content-Encoding" not in r.headers, "pixel data must never be gzipped"
    return r.headers["Content-Type"], _parts(await r.read(), r.headers["Content-Type"])


def _decode(ds: Dataset, syntax: str, frame: bytes) -> np.ndarray:
    return decode_served({k: ds.get(k) for k in IMAGE_PIXEL}, syntax, frame)


@pytest.mark.parametrize("source", [ExplicitVRLittleEndian, RLELossless,
                                    DeflatedExplicitVRLittleEndian])
async def test_every_layout_round_trips_bit_exact_in_every_lossless_syntax(
        client, world, source):
    for name, layout in LAYOUTS.items():
        ds = await _store(world, image(*layout, syntax=source))
        expected = pixel_array(ds, raw=True).reshape(
            (int(ds.NumberOfFrames), ds.Rows, ds.Columns, ds.SamplesPerPixel))
        for syntax in LOSSLESS:
            kind, parts = await _frames(client, world, ds, accept(MEDIA[syntax], syntax))
            assert kind.startswith(f'multipart/related; type="{MEDIA[syntax]}"'), kind
            assert len(parts) == len(expected), (name, syntax)
            for number, (part_type, frame) in enumerate(parts):
                assert part_type == f"{MEDIA[syntax]}; transfer-syntax={syntax}"
                got = _decode(ds, syntax, frame).reshape(expected[number].shape)
                assert np.array_equal(got, expected[number]), (name, syntax, number + 1)


async def test_stored_compressed_frames_are_served_as_they_lie(client, world):
    ds = await _store(world, image(40, 40, 3, 16, True, "MONOCHROME2", syntax=RLELossless))
    own = [bytes(f) for f in pydicom.encaps.generate_frames(
        ds.PixelData, number_of_frames=3)]
    _, parts = await _frames(client, world, ds, accept("application/octet-stream", "*"))
    assert parts == [(f"application/octet-stream; transfer-syntax={RLELossless}", f)
                     for f in own]
    # Asked by its own media type, the stored syntax is named by it too.
    _, parts = await _frames(client, world, ds, accept("image/x-dicom-rle"))
    assert parts == [(f"image/x-dicom-rle; transfer-syntax={RLELossless}", f) for f in own]


async def test_q_values_pick_the_best_acceptable_and_ties_go_to_the_smallest(client, world):
    ds = await _store(world, image(64, 64, 1, 16, False, "MONOCHROME2"))
    header = ", ".join([accept("image/jls", JLS, 0.9), accept("image/jphc", HTJ2K, 0.5),
                        accept("application/octet-stream", ExplicitVRLittleEndian, 0.1)])
    _, [(part_type, _)] = await _frames(client, world, ds, header)
    assert part_type == f"image/jls; transfer-syntax={JLS}"
    # Equal q: a compressed lossless syntax before uncompressed, HTJ2K first.
    header = ", ".join([accept("application/octet-stream", "*"), accept("image/jls"),
                        accept("image/jphc")])
    _, [(part_type, _)] = await _frames(client, world, ds, header)
    assert part_type == f"image/jphc; transfer-syntax={HTJ2K}"
    # q=0 refuses a type outright.
    header = ", ".join([accept("image/jphc", q=0), accept("image/jp2", q=0.2)])
    _, [(part_type, _)] = await _frames(client, world, ds, header)
    assert part_type == f"image/jp2; transfer-syntax={J2K}"
    # No Accept, or */*: uncompressed, as before.
    for header in ("*/*", ""):
        _, [(part_type, frame)] = await _frames(client, world, ds, header)
        assert part_type == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
        assert frame == ds.PixelData


async def test_what_cannot_be_produced_is_refused_never_swapped(client, world):
    ds = await _store(world, image(64, 64, 1, 16, False, "MONOCHROME2"))
    for header in ('multipart/related; type="image/jpeg"',  # lossy: never made here
                   'multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.90',
                   "image/png", 'multipart/related; type="image/jphc"; q=0'):
        r = await client.get(_url(ds), headers={**world.auth("admin"), "Accept": header})
        assert r.status == 406, (header, r.status)
        assert "Accept" in (await r.json())["error"]["field"]
    float_image = image(16, 16, 1, 16, False, "MONOCHROME2")
    fds = pydicom.dcmread(io.BytesIO(float_image))
    del fds.PixelData
    fds.BitsAllocated, fds.BitsStored, fds.HighBit = 32, 32, 31
    del fds.PixelRepresentation
    fds.FloatPixelData = np.ones(256, "<f4").tobytes()
    fds.SOPInstanceUID = fds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    dcmwrite(buffer, fds, enforce_file_format=True)
    await _store(world, buffer.getvalue())
    url = _url(fds)
    r = await client.get(url, headers={**world.auth("admin"), "Accept": accept("image/jls")})
    assert r.status == 406
    message = (await r.json())["error"]["message"]
    assert JLS in message and "float" in message
    # Uncompressed is still there for it, when asked.
    r = await client.get(url, headers={**world.auth("admin"),
                                       "Accept": f"{accept('image/jls')}, */*; q=0.1"})
    assert r.status == 200


async def test_an_encoding_is_made_once_kept_beside_the_instance_and_then_read(client, world):
    ds = await _store(world, image(64, 64, 2, 16, True, "MONOCHROME2"))
    _, first = await _frames(client, world, ds, accept("image/jphc"))
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(FrameIndex))).all()
    finally:
        await engine.dispose()
    copies = [r for r in rows if r.transfer_syntax_uid == HTJ2K_RPCL]
    assert len(copies) == 1 and len(copies[0].frames) == 2
    copy = store_root(world.settings.data_dir) / copies[0].path
    assert copy.parent == (store_root(world.settings.data_dir) / copies[0].path).parent
    assert copy.name.endswith(f".{HTJ2K_RPCL}.frames") and copy.stat().st_size == sum(
        len(f) for _, f in first)
    written = copy.stat().st_mtime_ns
    # .202 is the same stream (RPCL, TLM), named as asked; nothing is encoded again.
    _, again = await _frames(client, world, ds, accept("image/jphc", HTJ2K_RPCL))
    assert [f for _, f in again] == [f for _, f in first]
    assert {t for t, _ in again} == {f"image/jphc; transfer-syntax={HTJ2K_RPCL}"}
    assert copy.stat().st_mtime_ns == written


async def test_an_outside_dicomweb_client_gets_each_syntax(client, world):
    ds = await _store(world, image(64, 64, 1, 12, True, "MONOCHROME2"))
    base = str(client.make_url("/dicomweb"))
    token = world.token("admin")
    expected = pixel_array(ds, raw=True)

    def fetch(media: str, syntax: str) -> bytes:
        dw = DICOMwebClient(base, headers={"Authorization": f"Bearer {token}",
                                           "Accept-Encoding": "identity"})
        (frame,) = dw.retrieve_instance_frames(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
            [1], media_types=((media, syntax),))
        return frame

    # dicomweb-client 0.61 knows no image/jphc; HTJ2K is checked over plain HTTP above.
    for syntax in (JLS, J2K):
        frame = await asyncio.to_thread(fetch, MEDIA[syntax], syntax)
        assert np.array_equal(_decode(ds, syntax, frame), expected), syntax


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('abimgjphclsx/;,="*-. 0123456789qtype')),
               max_size=120))
def test_any_accept_header_is_a_choice_or_a_clear_406(header):
    try:
        choices = candidates(header, ExplicitVRLittleEndian)
    except ApiError as exc:
        assert exc.status == 406
        return
    assert choices and all(not c.as_stored for c in choices)


async def test_metadata_is_compressed_and_names_bulk_data_by_uri(client, world):
    data = image(32, 32, 1, 16, False, "MONOCHROME2")
    ds = pydicom.dcmread(io.BytesIO(data))
    big, nested = bytes(range(256)) * 40, bytes(reversed(range(256))) * 20
    ds.add_new(0x00091010, "OB", big)
    ds.private_block(0x0009, "HOICHAN TEST", create=True)
    item = Dataset()
    item.add_new(0x00091011, "OB", nested)
    ds.add_new(0x00091020, "SQ", [item])
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    await _store(world, buffer.getvalue())
    url = _url(ds).rsplit("/frames/", 1)[0]
    plain = await client.get(url + "/metadata", headers={**world.auth("admin"),
                                                         "Accept-Encoding": "identity"})
    assert plain.status == 200 and "Content-Encoding" not in plain.headers
    expected = await plain.read()
    for coding, inflate in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        r = await client.get(url + "/metadata", headers={**world.auth("admin"),
                                                         "Accept-Encoding": coding},
                             auto_decompress=False)
        assert r.headers["Content-Encoding"] == coding
        raw = await r.read()
        assert len(raw) < len(expected) and inflate(raw) == expected
    (meta,) = await plain.json()
    assert meta["7FE00010"]["BulkDataURI"].endswith("/frames/1")
    for value, uri in ((big, meta["00091010"]["BulkDataURI"]),
                       (nested, meta["00091020"]["Value"][0]["00091011"]["BulkDataURI"])):
        r = await client.get(URL(uri).path,
                             headers=world.auth("admin"))
        assert r.status == 200, await r.text()
        [(part_type, got)] = _parts(await r.read(), r.headers["Content-Type"])
        assert part_type == "application/octet-stream" and got == value
    r = await client.get(url + "/bulkdata/0009ZZZZ", headers=world.auth("admin"))
    assert r.status == 400
    r = await client.get(url + "/bulkdata/00091010", headers=world.auth("NDI"))
    assert r.status == 404  # not a study of the doctor's consultations
