"""Decoding a served WADO-RS frame the way an outside client would: pydicom with
pylibjpeg's OpenJPEG and libjpeg, given the instance's own attributes (not the imagecodecs
encoders the server used)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array

IMAGE_PIXEL = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit",
               "PixelRepresentation", "PhotometricInterpretation", "PlanarConfiguration")


def decode_served(attributes: dict[str, Any], syntax: str, frame: bytes) -> np.ndarray:
    """One compressed frame in ``syntax``, decoded with the Image Pixel ``attributes``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    for keyword, value in attributes.items():
        if keyword in IMAGE_PIXEL and value is not None:
            setattr(ds, keyword, value)
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0  # what a JPEG family syntax always holds (PS3.5 8.2)
    ds.NumberOfFrames = 1
    ds.PixelData = encapsulate([frame])
    return pixel_array(ds, raw=True)
