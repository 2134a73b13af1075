"""Files of the DICOM store: written atomically, so a crash never leaves half an object."""

from __future__ import annotations

import os
from pathlib import Path

STORE_DIR = "dicom"


def store_root(data_dir: Path) -> Path:
    return data_dir / STORE_DIR


def relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    # UIDs are validated (digits and dots) before they reach here, so they are safe names.
    return f"{study_uid}/{series_uid}/{sop_uid}.dcm"


def write_atomically(root: Path, relative: str, data: bytes) -> Path:
    """Write to a temporary file, fsync it, rename it into place, fsync the directory."""
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(temp, final)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def remove(root: Path, relative: str) -> None:
    (root / relative).unlink(missing_ok=True)
