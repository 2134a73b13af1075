"""Files of the DICOM store: written whole and fsynced before they are named, so a crash
never leaves half an object."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

STORE_DIR = "dicom"


def store_root(data_dir: Path) -> Path:
    return data_dir / STORE_DIR


def relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    # UIDs are validated (digits and dots) before they reach here, so they are safe names.
    return f"{study_uid}/{series_uid}/{sop_uid}.dcm"


def sync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (files created, renamed, removed) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dirs(directories: Iterable[Path]) -> None:
    for directory in sorted(set(directories)):
        sync_dir(directory)


def make_dirs(directories: Iterable[Path]) -> None:
    """Create the missing directories, each new entry made durable in its parent (one fsync
    per parent): a new study's folder must survive a power loss as its files do."""
    parents: set[Path] = set()
    for directory in sorted(set(directories)):
        missing: list[Path] = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o700, exist_ok=True)
            parents.add(folder.parent)
    sync_dirs(parents)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``data``, fsynced; on any failure (a full
    disk fails the write or the fsync) it is removed again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def link_into_place(staged: Path, final: Path) -> None:
    """Give the fsynced file ``staged`` its name in the store too. Never replaces a file
    already there (FileExistsError): that one is another writer's, or held already. The
    entry is durable once ``final``'s directory is synced."""
    os.link(staged, final)


def write_atomically(root: Path, relative: str, data: bytes) -> Path:
    """Write to a temporary file, fsync it, rename it into place, fsync the directory.

    On any failure nothing of the file stays behind: the caller reports the failure.
    """
    final = root / relative
    make_dirs([final.parent])
    temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)  # left by a process of the same id that was killed
    write_new(temp, data)
    placed = False
    try:
        os.replace(temp, final)
        placed = True
        sync_dir(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        if placed:  # the rename may not be durable: the caller reports failure
            final.unlink(missing_ok=True)
        raise
    return final

