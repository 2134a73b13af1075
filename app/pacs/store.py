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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """Create the missing directories, each entry fsynced in its parent: a new study's
    folder must survive a power loss as its files do."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        _fsync_dir(folder.parent)


def write_atomically(root: Path, relative: str, data: bytes) -> Path:
    """Write to a temporary file, fsync it, rename it into place, fsync the directory.

    On any failure (a full disk fails the write or the fsync) nothing of the object stays
    behind: the caller reports the failure and keeps no index row.
    """
    final = root / relative
    _make_dirs(final.parent)
    temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    placed = False
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        placed = True
        _fsync_dir(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        if placed:  # the rename may not be durable: the caller reports failure
            final.unlink(missing_ok=True)
        raise
    return final


def remove(root: Path, relative: str) -> None:
    (root / relative).unlink(missing_ok=True)
