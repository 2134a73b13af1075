"""/metrics as the tests read it: the samples of one scrape, and scrapes until one shows
what a stats round brings (the SFU's figures reach /metrics once per round)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.waiting import poll

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scraped(fetch: Callable[[], Awaitable[str]], ready: Callable[[Samples], bool],
                  timeout: float = 15.0) -> Samples:
    """The first scrape of which ``ready`` holds; after ``timeout`` s the last one, for the
    caller's assertions to say what is off."""
    last: Samples = {}

    async def check() -> bool:
        last.clear()
        last.update(samples(await fetch()))
        return ready(last)

    await poll(check, timeout, interval=0.1)
    return last
