"""The event loop the SFU runs on: uvloop when it is installed, else asyncio's own.

Forwarding is per-packet Python on one loop (docs/performance.md "Per-packet path"):
uvloop's datagram transports and callback scheduling are C, which cuts the loop's
share of every packet. Nothing in ``media`` depends on which loop runs it.
"""

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopName = Literal["uvloop", "asyncio"]
LOOP_NAMES: tuple[LoopName, ...] = ("asyncio", "uvloop")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def default_name() -> LoopName:
    """uvloop when installed, else asyncio's loop."""
    return "uvloop" if uvloop_available() else "asyncio"


def new_event_loop(name: LoopName | None = None) -> asyncio.AbstractEventLoop:
    """A new loop: ``name`` if given, else :func:`default_name`."""
    if name is None:
        name = default_name()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], name: LoopName | None = None) -> T:
    """``asyncio.run(main)`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(name)) as runner:
        return runner.run(main)
