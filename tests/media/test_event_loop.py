import asyncio

import pytest

from media import event_loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_asyncio_loop_on_request():
    assert event_loop.run(_loop_type(), "asyncio") == "asyncio"


def test_default_is_uvloop_when_installed():
    expected = "uvloop" if event_loop.uvloop_available() else "asyncio"
    assert event_loop.run(_loop_type()) == expected


@pytest.mark.skipif(not event_loop.uvloop_available(), reason="uvloop not installed")
def test_uvloop_loop_for_aiohttp():
    loop = event_loop.new_event_loop("uvloop")
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
