"""Frames of a stored instance encoded losslessly into another transfer syntax with
imagecodecs: HTJ2K (OpenJPH), JPEG-LS (CharLS), JPEG 2000 (OpenJPEG), or laid out
uncompressed little endian.

The samples are encoded as stored: no colour transform (YBR stays YBR, as the instance's
Photometric Interpretation says), signed values keep their bit patterns, so a standard
decoder given the instance's attributes gets back exactly what pydicom decodes from the
stored file (PS3.5 8.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import imagecodecs
import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.utils import iter_pixels

from app.pacs.syntaxes import EXPLICIT_LE, HTJ2K_RPCL, J2K_LOSSLESS, JPEG_LS_LOSSLESS, NATIVE

INTEGER_DTYPES = frozenset({np.dtype(t) for t in ("u1", "i1", "<u2", "<i2")})


class CannotEncode(Exception):
    """This instance's pixel data has no lossless form in the asked syntax."""


def _htj2k(frame: np.ndarray) -> bytes:
    # RPCL order, TLM markers and one tile-part per resolution: what 1.2.840.10008.1.2.4.202
    # asks (PS3.5 8.2.15), so a client may decode a low resolution from the first bytes.
    return bytes(imagecodecs.htj2k_encode(frame, reversible=True, tlm=True, tilepart=1,
                                          rgb=False))


def _jpegls(frame: np.ndarray) -> bytes:
    # JPEG-LS knows no sign: signed samples go as their bit patterns (PS3.5 A.4.3), which
    # decoders read back by the Pixel Representation; its modular residuals keep the wrap
    # from -1 to 0 cheap.
    unsigned = frame.view(frame.dtype.str.replace("i", "u"))
    return bytes(imagecodecs.jpegls_encode(unsigned, level=0))


def _j2k(frame: np.ndarray) -> bytes:
    return bytes(imagecodecs.jpeg2k_encode(frame, level=0, codecformat="J2K", reversible=True,
                                           mct=False, numthreads=1))


ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    HTJ2K_RPCL: _htj2k, JPEG_LS_LOSSLESS: _jpegls, J2K_LOSSLESS: _j2k,
}


def check_encodable(ds: Dataset, syntax: str) -> None:
    """Refuse with CannotEncode what ``syntax`` cannot hold without loss, before any work."""
    if syntax == EXPLICIT_LE:
        return
    if "PixelData" not in ds:
        raise CannotEncode("float pixel data has no lossless JPEG form; ask for "
                           "application/octet-stream")
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16):
        raise CannotEncode(f"{bits}-bit samples have no lossless JPEG form here; ask for "
                           "application/octet-stream")
    if syntax == JPEG_LS_LOSSLESS and int(ds.get("BitsStored", bits)) < 2:
        raise CannotEncode("JPEG-LS holds 2 to 16 bits per sample")


def _stored_layout(pixels: np.ndarray, ds: Dataset) -> bytes:
    """Decoded stored values laid out again as the instance's own Pixel Data would hold
    them in Explicit VR Little Endian (PS3.5 8.1, 8.2), so that they mean what the
    instance's metadata says: bits packed, 4:2:2 chroma shared, planes kept apart."""
    if int(ds.BitsAllocated) == 1:
        # A frame starts on a byte boundary; pixels fill each byte from the low bit up.
        return np.packbits(pixels.ravel(), bitorder="little").tobytes()
    pixels = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        # Y1 Y2 Cb Cr for each pair of pixels: pydicom repeated Cb and Cr when expanding.
        pairs = pixels.reshape(pixels.shape[0], -1, 2, 3)
        pixels = np.concatenate([pairs[..., 0], pairs[:, :, 0, 1:]], axis=-1)
    elif int(ds.get("SamplesPerPixel", 1)) > 1 and int(ds.get("PlanarConfiguration", 0)) == 1:
        pixels = np.moveaxis(pixels, -1, 0)
    return np.ascontiguousarray(pixels).tobytes()


def _uncompressed(ds: Dataset) -> Iterator[bytes]:
    """A native instance's frames are its stored values, as its metadata describes them
    (also YBR and planar ones); a compressed instance's are what decompression yields, as
    pydicom's decompress() makes them: interleaved samples, YBR decoded to RGB (PS3.5
    8.2)."""
    if str(ds.file_meta.TransferSyntaxUID) in NATIVE:
        for frame in iter_pixels(ds, raw=True):
            yield _stored_layout(frame, ds)
        return
    for frame in iter_pixels(ds):
        yield np.ascontiguousarray(frame.astype(frame.dtype.newbyteorder("<"))).tobytes()


def encode(ds: Dataset, syntax: str) -> Iterator[bytes]:
    """Each frame of ``ds`` (a whole stored dataset) in ``syntax``, decoding one frame at a
    time: a long cine is never held decoded whole."""
    check_encodable(ds, syntax)
    if syntax == EXPLICIT_LE:
        yield from _uncompressed(ds)
        return
    # raw: no YBR to RGB conversion, so the samples stay what the attributes describe.
    for frame in iter_pixels(ds, raw=True):
        frame = np.ascontiguousarray(frame.astype(frame.dtype.newbyteorder("<"), copy=False))
        if frame.dtype not in INTEGER_DTYPES:
            raise CannotEncode(f"{frame.dtype} samples have no lossless JPEG form here")
        try:
            yield ENCODERS[syntax](frame)
        except (imagecodecs.Htj2kError, imagecodecs.JpeglsError, imagecodecs.Jpeg2kError,
                ValueError) as exc:
            raise CannotEncode(f"the encoder refused these pixels: {exc}") from exc
