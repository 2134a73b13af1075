"""Active speakers from the audio level header extension (RFC 6464).

The per-packet work is one comparison and two additions (:meth:`LevelMeter.add`,
called from the publisher's audio receiver); who is speaking is decided once
per policy tick (:meth:`ActiveSpeakers.update`).
"""

from collections.abc import Callable


class LevelMeter:
    """Counts one publisher's audio packets, and the loud ones, since the last tick."""

    __slots__ = ("_speech_level", "packets", "loud")

    def __init__(self, speech_level: int) -> None:
        self._speech_level = speech_level
        self.packets = 0
        self.loud = 0

    def add(self, level: int) -> None:
        # RFC 6464 levels are -dBov: smaller is louder.
        self.packets += 1
        if level <= self._speech_level:
            self.loud += 1


class ActiveSpeakers:
    """Publishers ordered by when they last started speaking, most recent first.

    A publisher speaks in a tick when at least half of its audio packets in
    that tick were loud; it moves to the front once it has spoken for
    ``activation_ticks`` ticks in a row. Publishers that never spoke keep the
    order in which they joined, after those who did.
    """

    def __init__(self, speech_level: int, activation_ticks: int) -> None:
        self._speech_level = speech_level
        self._activation_ticks = max(1, activation_ticks)
        self._meters: dict[str, LevelMeter] = {}
        self._streak: dict[str, int] = {}
        self._order: list[str] = []

    @property
    def order(self) -> list[str]:
        return list(self._order)

    def meter(self, publisher_id: str) -> Callable[[int], None]:
        """The per-packet level callback for ``publisher_id``'s audio track."""
        meter = self._meters.get(publisher_id)
        if meter is None:
            meter = self._meters[publisher_id] = LevelMeter(self._speech_level)
            self._streak[publisher_id] = 0
            self._order.append(publisher_id)
        return meter.add

    def follow(self, order: list[str]) -> None:
        """Take the order another worker's meters decided (a room spread over workers)."""
        self._order = list(order)

    def remove(self, publisher_id: str) -> None:
        if self._meters.pop(publisher_id, None) is not None:
            del self._streak[publisher_id]
            self._order.remove(publisher_id)

    def update(self) -> bool:
        """Close the current tick; return whether the order changed."""
        changed = False
        for publisher_id, meter in self._meters.items():
            speaking = meter.packets > 0 and 2 * meter.loud >= meter.packets
            meter.packets = meter.loud = 0
            streak = self._streak[publisher_id] + 1 if speaking else 0
            self._streak[publisher_id] = streak
            # Exactly at activation: a long monologue moves its speaker once.
            if streak == self._activation_ticks and self._order[0] != publisher_id:
                self._order.remove(publisher_id)
                self._order.insert(0, publisher_id)
                changed = True
        return changed
