"""Our C-STORE SCP as the tests run it, and dcmtk's tools as the peers that push to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from app.db.engine import create_engine, session_factory
from app.pacs.ingest import Ingester
from app.pacs.scp import StoreScp
from app.pacs.store import store_root


@asynccontextmanager
async def open_scp(database_url: str, data_dir: Path, allowed_callers: tuple[str, ...] = (),
                   **options: Any) -> AsyncIterator[StoreScp]:
    """Our SCP on a free port, ingesting into ``data_dir``; ``sessions``, ``root`` and
    ``ingester`` are attached for the tests' checks."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    ingester = Ingester(sessions, data_dir)
    await ingester.start()
    server = StoreScp("HOICHAN", "127.0.0.1", 0, allowed_callers, ingester.ingest_in_thread,
                      **options)
    server.start()
    server.sessions = sessions  # type: ignore[attr-defined]
    server.root = store_root(data_dir)  # type: ignore[attr-defined]
    server.ingester = ingester  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
        await ingester.close()
        await engine.dispose()


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


async def storescu(scp, paths: str | Sequence[str], *options: str,
                   calling: str = "PACS") -> str:
    # storescu exits 0 even when the store failed: callers check what we hold.
    files = [paths] if isinstance(paths, str) else list(paths)
    _, out = await run("storescu", "-aet", calling, "-aec", "HOICHAN", *options, "127.0.0.1",
                       str(scp.port), *files)
    return out


async def count(scp, model) -> int:
    async with scp.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def fresh_copy(name: str, folder: Path) -> str:
    """The test file under a new SOP Instance UID (several share one), pixels untouched."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def nothing_is_stored(scp) -> None:
    assert not scp.root.exists() or not [p for p in scp.root.rglob("*") if p.is_file()]
