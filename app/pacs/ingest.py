"""Taking DICOM objects into the store: durably, all or nothing, off the event loop, and
indexed in group commits.

Each object is checked (``app/pacs/checking.py``) on a worker thread, or on the caller's
own thread for pynetdicom's associations. Objects that arrive together (from one or several
associations, STOW-RS parts, import jobs) are kept as one batch, which starts as soon as the
previous batch is over, with at most ``MAX_BATCH`` objects:

1. each file is written to this process's staging directory and fsynced (worker threads);
2. the staging directory is synced, each file linked to its place in the store, and each
   directory that got files is synced once;
3. the batch's index rows (studies, series, instances and the stored files' frame indexes)
   are added in one transaction, and committed;
4. only then are the staged names removed and each caller told "stored".

A process killed before 3 leaves files placed but not indexed: the next start finds them
through the staged names and removes them (``app/pacs/staging.py``), so the store never
holds a file without its row nor a row without its file. An object the index refuses does
not fail the others: a failed batch is committed again one object at a time.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, TypeVarTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import READ_ONLY
from app.pacs import index_batch, staging, store
from app.pacs.checking import INT32 as INT32
from app.pacs.checking import UID as UID
from app.pacs.checking import Checked, check
from app.pacs.checking import IngestError as IngestError
from app.pacs.index_batch import Entry

log = logging.getLogger(__name__)

MAX_BATCH = 64
WORKERS = 2  # threads checking and writing objects; the cores are the limit anyway
THREAD_WAIT_S = 120.0  # how long a caller's thread waits for its object's outcome

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class Ingested:
    sop_instance_uid: str
    study_instance_uid: str
    duplicate: bool


@dataclass(eq=False)
class _Item:
    entry: Entry
    done: asyncio.Future[Ingested]
    staged: Path | None = None  # the fsynced copy in the staging directory
    placed: bool = False  # linked to its place in the store by this item

    @property
    def checked(self) -> Checked:
        return self.entry.checked

    @property
    def relative(self) -> str:
        return self.checked.relative_path

    def ingested(self, duplicate: bool) -> Ingested:
        return Ingested(self.checked.sop_uid, self.checked.study_uid, duplicate)


def _finish(item: _Item, outcome: Ingested | BaseException) -> None:
    if item.done.done():
        return
    if isinstance(outcome, BaseException):
        item.done.set_exception(outcome)
    else:
        item.done.set_result(outcome)


def _is_new(outcome: Ingested | BaseException) -> bool:
    return isinstance(outcome, Ingested) and not outcome.duplicate


def _observed(future: asyncio.Future[Ingested]) -> None:
    # A caller whose wait timed out no longer reads its outcome; asyncio would log it.
    if not future.cancelled():
        future.exception()


class Ingester:
    """Keeps objects for the application (or one caller): ``start`` before use, ``close``
    after. An object is reported stored only once its file and its index row are durable."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], data_dir: Path) -> None:
        self._sessions = sessions
        self._root = store.store_root(data_dir)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="ingest")
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._staging: staging.Staging | None = None
        self._committer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Placed, then the commit's outcome was lost with the database connection: settled
        # (kept or removed, by what the index says) before the next batch.
        self._unknown: list[_Item] = []
        self._known = index_batch.Known()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._staging = await self._run(staging.Staging.open, self._root)
        await self.recover()
        self._committer = asyncio.create_task(self._commit_forever(), name="ingest-commit")

    async def close(self) -> None:
        """Keeps what was handed over already, then stops."""
        self._closed = True
        self._wake.set()
        if self._committer is not None:
            await self._committer
        await self._settle_unknown()
        if self._staging is not None:
            await self._run(self._staging.close)
        self._pool.shutdown(wait=False)

    async def ingest(self, data: bytes, received_from: str) -> Ingested:
        """Store ``data`` (a DICOM file: preamble, file meta, dataset, as received).

        A repeated SOP Instance UID is a success that changes nothing. A malformed object
        raises IngestError; a failure to keep it raises the OSError or database error. In
        neither case is anything of it kept.
        """
        return await self.store(await self.check(data), received_from)

    async def check(self, data: bytes) -> Checked:
        """``data`` checked on a worker thread (IngestError if malformed), not yet kept."""
        return await self._run(check, data)

    async def store(self, checked: Checked, received_from: str) -> Ingested:
        """Keep a checked object with the next batch; returns once it is durable."""
        if self._closed or self._loop is None:
            raise RuntimeError("the store is not taking objects (stopped)")
        item = _Item(Entry(checked, received_from), self._loop.create_future())
        item.done.add_done_callback(_observed)
        self._queue.append(item)
        self._wake.set()
        # Shielded: a caller that goes away (a STOW-RS client) does not undo a batch.
        return await asyncio.shield(item.done)

    def ingest_in_thread(self, data: bytes, received_from: str) -> Ingested:
        """``ingest`` for a thread other than the event loop's (pynetdicom's association
        threads): checked on the calling thread, then kept by the loop's next batch."""
        checked = check(data)
        if self._loop is None:
            raise RuntimeError("the store is not taking objects (not started)")
        future = asyncio.run_coroutine_threadsafe(self.store(checked, received_from),
                                                  self._loop)
        try:
            return future.result(THREAD_WAIT_S)
        except TimeoutError:
            future.cancel()
            raise

    async def recover(self) -> None:
        """Settle what processes that are gone left in their staging directories: each file
        they placed and did not index is removed."""
        found = await self._run(staging.abandoned, self._root, self._staging)
        if not found:
            return
        try:
            paths = {relative for gone in found for relative in gone.staged.values()}
            async with self._reading() as session:
                indexed = await index_batch.indexed_paths(session, paths)
            for gone in found:
                await self._run(gone.settle, indexed)
        finally:
            for gone in found:
                gone.release()

    # --- The batches

    async def _commit_forever(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._keep(batch)
            except Exception as exc:
                # A fault of ours: its callers hear of it, what it staged or placed is
                # settled by what the index says, and the next batch goes on.
                log.exception("ingest batch of %d failed", len(batch))
                for item in batch:
                    _finish(item, exc)
                self._unknown.extend(item for item in batch if item.staged is not None)

    async def _keep(self, batch: list[_Item]) -> None:
        await self._settle_unknown()
        batch = self._distinct(batch)
        placed = await self._place(await self._stage(batch))
        if not placed:
            return
        outcomes = await self._commit(placed)
        failed = [item for item in placed if isinstance(outcomes[item], BaseException)]
        unknown: list[_Item] = []
        if failed:
            stored, unknown = await self._settle(failed)
            outcomes.update(stored)
        kept = [item for item in placed if _is_new(outcomes[item])]
        # Staged names first (unlinks, no fsync): an acknowledged object leaves nothing
        # behind for a recovery to look at.
        await self._run(self._forget_staged, kept)
        for item in kept:
            _finish(item, outcomes[item])
        # Refused, failed, or held already: what this batch placed of them goes. Those
        # whose outcome is unknown stay placed until the index can say.
        lost = [item for item in placed if item not in kept]
        await self._discard(item for item in lost if item not in unknown)
        for item in lost:
            _finish(item, outcomes[item])

    def _distinct(self, batch: list[_Item]) -> list[_Item]:
        """One object per SOP Instance UID in a batch; a repeat waits for the next batch,
        which finds the first one held."""
        seen: set[str] = set()
        first: list[_Item] = []
        repeats: list[_Item] = []
        for item in batch:
            (repeats if item.checked.sop_uid in seen else first).append(item)
            seen.add(item.checked.sop_uid)
        self._queue[:0] = repeats
        return first

    async def _stage(self, items: list[_Item]) -> list[_Item]:
        """Each file written and fsynced in the staging directory, in parallel; a failure
        (a full disk) fails that object only."""
        assert self._staging is not None
        written = await asyncio.gather(
            *(self._run(self._staging.write, item.relative, item.checked.data)
              for item in items), return_exceptions=True)
        staged: list[_Item] = []
        for item, result in zip(items, written, strict=True):
            if isinstance(result, BaseException):
                _finish(item, result)
            else:
                item.staged = result
                staged.append(item)
        return staged

    async def _place(self, items: list[_Item]) -> list[_Item]:
        """Link the staged files into the store; the items placed. A file in the way is
        held already (the object is a duplicate), or a gone process's that the index does
        not hold (settled by recovery, then the link is tried again), or another live
        process's that it is placing (its staged copy names it: this object fails, to be
        sent again), or else an orphan (left by a version of Hoichan that staged nothing):
        that one is replaced."""
        placed, existing = await self._link(items)
        if not existing:
            return placed
        try:
            await self.recover()
        except Exception:
            log.exception("settling gone processes' staged files failed")
        assert self._staging is not None
        in_flight = await self._run(staging.staged_elsewhere, self._root, self._staging)
        # The index is asked after the staging directories are read: a process removes its
        # staged copy only once its row is committed (or its file removed), so a file that
        # no staged copy named then and no row holds now is no one's.
        existing = await self._drop_held(existing)
        busy = [item for item in existing if item.relative in in_flight]
        orphans = [item for item in existing if item.relative not in in_flight]
        if orphans:
            log.warning("replacing %d files that no index row holds, nor any staged copy "
                        "names", len(orphans))
            await self._run(self._unlink_orphans, orphans)
            again, taken = await self._link(orphans)
            placed += again
            busy += taken
        for item in busy:
            error = FileExistsError(errno.EEXIST, "another process is storing this object",
                                    item.relative)
            await self._discard([item])
            _finish(item, error)
        return placed

    def _unlink_orphans(self, items: list[_Item]) -> None:
        # Not synced: the links that replace them are, with their directories.
        for item in items:
            (self._root / item.relative).unlink(missing_ok=True)

    async def _link(self, items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
        """Placed items, and those whose place was taken; the others failed."""
        if not items:
            return [], []
        try:
            errors = await self._run(self._link_all, items)
        except OSError as exc:  # the staging directory or a new folder could not be synced
            errors = {item: exc for item in items}
        existing = [item for item, e in errors.items() if isinstance(e, FileExistsError)]
        failed = [item for item in errors if item not in existing]
        await self._discard(failed)
        for item in failed:
            _finish(item, errors[item])
        return [item for item in items if item not in errors], existing

    def _link_all(self, items: list[_Item]) -> dict[_Item, OSError]:
        """On a worker thread: the staged names made durable, then each file linked into
        place, then each directory that got one synced: one fsync per directory per batch.
        The items that failed, with why."""
        assert self._staging is not None
        self._staging.sync()
        store.make_dirs({(self._root / item.relative).parent for item in items})
        errors: dict[_Item, OSError] = {}
        folders: dict[Path, list[_Item]] = {}
        for item in items:
            assert item.staged is not None
            final = self._root / item.relative
            try:
                store.link_into_place(item.staged, final)
            except OSError as exc:
                errors[item] = exc
                continue
            item.placed = True
            folders.setdefault(final.parent, []).append(item)
        for folder, members in folders.items():
            try:
                store.sync_dir(folder)
            except OSError as exc:
                errors.update(dict.fromkeys(members, exc))
        return errors

    async def _drop_held(self, items: list[_Item]) -> list[_Item]:
        """Finish, as duplicates, the items whose SOP Instance UID the index holds; the
        others."""
        try:
            async with self._reading() as session:
                held = await index_batch.held_paths(session, [i.checked.sop_uid for i in items])
        except Exception as exc:
            await self._discard(items)
            for item in items:
                _finish(item, exc)
            return []
        duplicates = [item for item in items if item.checked.sop_uid in held]
        await self._discard(duplicates)
        for item in duplicates:
            _finish(item, item.ingested(duplicate=True))
        return [item for item in items if item.checked.sop_uid not in held]

    async def _commit(self, items: list[_Item], retry: bool = True
                      ) -> dict[_Item, Ingested | BaseException]:
        """The index rows of ``items`` in one transaction; each item's outcome."""
        try:
            async with self._sessions.begin() as session:
                added = await index_batch.add(session, [item.entry for item in items],
                                              self._known)
        except Exception as exc:
            self._known.forget()  # ids it held may be why: the next try looks them up
            if len(items) > 1:
                # One object the index refuses must not fail the others: each on its own.
                log.info("index of a batch of %d failed (%s); each object on its own",
                         len(items), exc)
                outcomes: dict[_Item, Ingested | BaseException] = {}
                for item in items:
                    outcomes.update(await self._commit([item]))
                return outcomes
            if retry and isinstance(exc, IntegrityError):
                # Another process added this study, series or instance between our look-up
                # and our insert (a modality pushing a new study on parallel associations);
                # it has committed, so a second pass finds its rows.
                return await self._commit(items, retry=False)
            return {items[0]: exc}
        self._known.learn(added)
        outcomes = {}
        for item in items:
            sop = item.checked.sop_uid
            if sop in added.refused:
                outcomes[item] = added.refused[sop]
            elif sop in added.held:
                if added.held[sop] == item.relative:
                    item.placed = False  # the row names this very file: it stays
                outcomes[item] = item.ingested(duplicate=True)
            else:
                outcomes[item] = item.ingested(duplicate=False)
        return outcomes

    async def _settle(self, failed: list[_Item]) -> tuple[dict[_Item, Ingested], list[_Item]]:
        """A failed commit may have happened all the same (the connection was lost during
        COMMIT): the index says which. Those it holds are stored; if it cannot be asked,
        their outcome is unknown (the second list) and their files stay until it can."""
        try:
            async with self._reading() as session:
                held = await index_batch.held_paths(session,
                                                    [i.checked.sop_uid for i in failed])
        except Exception:
            self._unknown.extend(failed)
            return {}, failed
        return {item: item.ingested(duplicate=False) for item in failed
                if held.get(item.checked.sop_uid) == item.relative}, []

    async def _settle_unknown(self) -> None:
        if not self._unknown:
            return
        try:
            async with self._reading() as session:
                held = await index_batch.held_paths(
                    session, [i.checked.sop_uid for i in self._unknown])
        except Exception:
            return  # still unreachable; the next batch tries again
        items, self._unknown = self._unknown, []
        for item in items:
            if held.get(item.checked.sop_uid) == item.relative:
                item.placed = False  # committed after all: the file stays
        await self._discard(items)

    async def _discard(self, items: Iterable[_Item]) -> None:
        items = list(items)
        if items:
            await self._run(self._remove, items)

    def _remove(self, items: list[_Item]) -> None:
        """On a worker thread: the files these items placed removed (and that made
        durable), then their staged copies. If the first part fails, the staged copies stay
        so that the next start removes the files."""
        placed = [self._root / item.relative for item in items if item.placed]
        try:
            for final in placed:
                final.unlink(missing_ok=True)
            store.sync_dirs(final.parent for final in placed)
        except OSError:
            log.exception("could not remove %d placed files; left to the next start",
                          len(placed))
            return
        self._forget_staged(items)

    @staticmethod
    def _forget_staged(items: list[_Item]) -> None:
        for item in items:
            if item.staged is not None:
                item.staged.unlink(missing_ok=True)
                item.staged = None

    # --- Helpers

    def _run(self, fn: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            # A deferred transaction on SQLite: look-ups need not wait for the write lock.
            await session.connection(execution_options={READ_ONLY: True})
            yield session


async def ingest(sessions: async_sessionmaker[AsyncSession], data_dir: Path, data: bytes,
                 received_from: str) -> Ingested:
    """One object into the store, for callers that have no ingester (the synthetic CT,
    tests): ``Ingester.ingest`` with a short-lived ingester of its own."""
    ingester = Ingester(sessions, data_dir)
    await ingester.start()
    try:
        return await ingester.ingest(data, received_from)
    finally:
        await ingester.close()
