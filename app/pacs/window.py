"""A bounded window of objects being kept while the next ones of a stream are read (STOW-RS
parts, a WADO-RS import): they reach the ingester together and commit in groups, and a long
stream is never held in memory whole."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Window(Generic[T]):
    """At most ``items`` tasks and ``size`` bytes (as the caller counts them) at once."""

    def __init__(self, items: int, size: int) -> None:
        self._items, self._size = items, size
        self._open: deque[tuple[asyncio.Task[T], int]] = deque()
        self._bytes = 0
        self.tasks: list[asyncio.Task[T]] = []

    async def add(self, work: Coroutine[Any, Any, T], size: int) -> asyncio.Task[T]:
        """Start ``work`` once the window has room (the oldest tasks done); its task."""
        while self._open and (len(self._open) >= self._items
                              or self._bytes + size > self._size):
            oldest, counted = self._open.popleft()
            await asyncio.wait([oldest])
            self._bytes -= counted
        task = asyncio.ensure_future(work)
        # Read here or by raise_first: one that fails while the stream fails too is not
        # logged as never retrieved.
        task.add_done_callback(_observed)
        self._open.append((task, size))
        self._bytes += size
        self.tasks.append(task)
        return task

    async def wait(self) -> None:
        """Until every task is done (a caller cancelled meanwhile leaves them running)."""
        if self.tasks:
            await asyncio.wait(self.tasks)

    def raise_first(self) -> None:
        """The first task's exception, in the order they were added, if any failed."""
        for task in self.tasks:
            error = task.exception()
            if error is not None:
                raise error


def _observed(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
