"""A process's staging directory: where objects are written before they are linked into the
store, and the record that lets a crash be undone.

A file is written and fsynced here first, then linked to its place in the store, then
indexed. Until the staged copy is removed (after the index commit) it names where the file
was placed, so whatever a killed process had placed but not indexed can be found and removed
by the next one: the store never keeps a file without its index row. Each directory is held
with an exclusive ``flock`` for its process's life; one whose lock is free belongs to a
process that is gone.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import secrets
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from app.pacs import store

log = logging.getLogger(__name__)

STAGING_DIR = ".incoming"  # inside the store root: a staged file links into place


def _name(relative: str, number: int) -> str:
    # Store paths are UIDs (digits and dots) and slashes, so "+" cannot occur in them.
    return f"{relative.replace('/', '+')}.{number}"


def _relative(name: str) -> str:
    return name.rsplit(".", 1)[0].replace("+", "/")


def _lock(directory: Path) -> int | None:
    """A descriptor of ``directory`` holding its lock, or None if another process holds it
    or the directory is gone (a recovery removed it between the listing and the lock)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.path.samestat(os.fstat(fd), os.stat(directory)):
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


class Staging:
    """This process's staging directory under ``root``; thread-safe."""

    def __init__(self, root: Path, directory: Path, fd: int) -> None:
        self.root, self.directory, self._fd = root, directory, fd
        self._numbers = itertools.count()

    @classmethod
    def open(cls, root: Path) -> Staging:
        base = root / STAGING_DIR
        store.make_dirs([base])
        while True:
            directory = base / f"{os.getpid()}-{secrets.token_hex(4)}"
            directory.mkdir(mode=0o700)
            fd = _lock(directory)
            if fd is not None:
                break
            # Another process's recovery took it for a dead one's: try another name.
        # Its entry must be durable before any file staged in it is placed.
        store.sync_dir(base)
        return cls(root, directory, fd)

    def write(self, relative: str, data: bytes) -> Path:
        """``data`` written and fsynced as the staged copy of the store's ``relative``."""
        path = self.directory / _name(relative, next(self._numbers))
        store.write_new(path, data)
        return path

    def sync(self) -> None:
        """Make the staged copies' names durable: due before any of them is placed."""
        store.sync_dir(self.directory)

    def close(self) -> None:
        """Removes the directory if nothing is left in it (anything left, its outcome
        unknown, waits for the next process's recovery) and lets go of it."""
        try:
            self.directory.rmdir()
        except OSError:
            log.warning("staged files left in %s for the next start to settle", self.directory)
        os.close(self._fd)


@dataclass
class Abandoned:
    """A gone process's staging directory, held: the store paths its staged copies name."""

    root: Path
    directory: Path
    fd: int
    staged: dict[Path, str]  # staged copy: the store path it was placed at, or meant for

    def settle(self, indexed: Collection[str]) -> None:
        """Remove each placed file the index does not hold (only if it is still the staged
        copy's own file, never another process's later one), then the directory."""
        touched: set[Path] = set()
        for copy, relative in self.staged.items():
            if relative in indexed:
                continue
            final = self.root / relative
            try:
                if os.path.samestat(os.stat(copy), os.stat(final)):
                    final.unlink()
                    touched.add(final.parent)
            except FileNotFoundError:
                continue  # never placed, or removed already
        store.sync_dirs(touched)
        shutil.rmtree(self.directory)
        log.log(logging.WARNING if self.staged else logging.INFO,
                "settled the staging directory %s of a process that is gone: %d staged "
                "files, %d placed but not indexed (removed)", self.directory.name,
                len(self.staged), len(touched))
        self.release()

    def release(self) -> None:
        """Lets go of the directory (settled or not); once."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def staged_elsewhere(root: Path, own: Staging) -> set[str]:
    """The store paths that other processes' staged copies name: files they are placing, or
    (for a gone process not yet settled) may have placed."""
    base = root / STAGING_DIR
    named: set[str] = set()
    for entry in os.scandir(base):
        if entry.is_dir(follow_symlinks=False) and Path(entry.path) != own.directory:
            try:
                named.update(_relative(name) for name in os.listdir(entry.path))
            except FileNotFoundError:  # settled meanwhile
                continue
    return named


def abandoned(root: Path, own: Staging | None) -> list[Abandoned]:
    """The staging directories of processes that are gone, each held until settled or
    released."""
    base = root / STAGING_DIR
    try:
        entries = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    found: list[Abandoned] = []
    for entry in entries:
        directory = Path(entry.path)
        if own is not None and directory == own.directory:
            continue
        fd = _lock(directory)
        if fd is None:
            continue  # its process is alive
        staged = {directory / name: _relative(name) for name in os.listdir(directory)}
        found.append(Abandoned(root, directory, fd, staged))
    return found
