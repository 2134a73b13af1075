"""Waiting on conditions, not timers: the one polling loop the tests share.

``wait_for`` fails the test when the condition does not come within the timeout;
``poll`` and ``poll_blocking`` return the last value instead, for callers that say
themselves what went wrong (a process that did not start, a trail that is short).
A predicate may be a plain function or a coroutine function (awaited each round).
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(predicate: Callable[[], T | Awaitable[T]], timeout: float,
               interval: float = 0.05) -> T:
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else its
    last (falsy) value. The predicate is always asked at least once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def wait_for(predicate: Callable[[], T | Awaitable[T]], timeout: float = 10.0,
                   what: str = "", interval: float = 0.05) -> T:
    """The first truthy value of ``predicate()``; AssertionError after ``timeout`` s."""
    value = await poll(predicate, timeout, interval)
    if not value:
        raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
    return value


def poll_blocking(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """``poll`` for code outside an event loop (process start-up, browser tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
