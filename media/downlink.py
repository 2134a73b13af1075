"""A subscriber's downlink quality: full, reduced, audio only, with hysteresis.

Passthrough forwarding cannot send a weak receiver a lighter stream (no
simulcast, no SVC, no transcoding here), so a weak downlink gets fewer streams.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import SfuConfig
from .policy import LINK_STATES, LinkState


@dataclass(frozen=True)
class LinkSample:
    """One look at a subscriber's downlink, from its RTCP."""

    #: Worst receiver-report loss fraction (0..1) over the forwarded streams; None before any RR.
    fraction_lost: float | None
    #: Worst round-trip time over the forwarded streams; None before any RR.
    rtt_s: float | None
    #: The subscriber's REMB estimate for the forwarded videos; None if it sends none.
    remb_bps: int | None
    #: What the SFU forwarded to it as video over the last seconds.
    video_bps: float


#: Below this forwarded video rate a REMB comparison says nothing (start-up, paused videos).
_MIN_VIDEO_BPS_FOR_REMB = 100_000


def classify(sample: LinkSample, config: SfuConfig, trust_remb: bool = True) -> bool | None:
    """True: good, False: bad, None: neither (keeps the current state)."""
    loss, rtt = sample.fraction_lost, sample.rtt_s
    remb_low = (
        trust_remb
        and sample.remb_bps is not None
        and sample.video_bps >= _MIN_VIDEO_BPS_FOR_REMB
        and sample.remb_bps < config.degrade_remb_ratio * sample.video_bps
    )
    if remb_low or (loss is not None and loss >= config.degrade_loss) or (
        rtt is not None and rtt >= config.degrade_rtt_s
    ):
        return False
    if (loss is None or loss <= config.recover_loss) and (
        rtt is None or rtt <= config.recover_rtt_s
    ):
        return True
    return None


class DownlinkMonitor:
    """Steps a subscriber down one state after ``degrade_after_s`` of bad samples
    in a row, and up one state after ``recover_after_s`` of good ones."""

    def __init__(self, config: SfuConfig) -> None:
        self._config = config
        self._degrade_after = max(1, round(config.degrade_after_s / config.link_check_interval))
        self._recover_after = max(1, round(config.recover_after_s / config.link_check_interval))
        self.state: LinkState = "full"
        self._bad = 0
        self._good = 0
        # Samples left in which a low REMB counts for nothing: after videos resume, the
        # subscriber's estimate still reflects the thinner (or lossy) past and ramps up
        # over seconds, while the resumed videos start with keyframes.
        self._settling = 0

    def update(self, sample: LinkSample) -> bool:
        """Feed one sample; return whether the state changed."""
        verdict = classify(sample, self._config, trust_remb=self._settling == 0)
        self._settling = max(0, self._settling - 1)
        self._bad = self._bad + 1 if verdict is False else 0
        self._good = self._good + 1 if verdict is True else 0
        level = LINK_STATES.index(self.state)
        if self._bad >= self._degrade_after and level < len(LINK_STATES) - 1:
            self._step(level + 1)
            return True
        if self._good >= self._recover_after and level > 0:
            self._step(level - 1)
            return True
        return False

    def _step(self, level: int) -> None:
        if level < LINK_STATES.index(self.state):
            self._settling = self._recover_after
        self.state = LINK_STATES[level]
        # Each step needs its own run of evidence: the sample that moved us
        # down still describes the old set of streams.
        self._bad = self._good = 0


class RembTracker:
    """A subscriber's latest REMB per set of SSRCs it covers.

    A browser sends one REMB for everything it receives; aiortc one per
    receiver. Summing the latest value of each distinct SSRC set gives the
    estimate for the whole downlink in both cases.
    """

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age_s
        self._clock = clock
        self._latest: dict[frozenset[int], tuple[int, float]] = {}

    def add(self, bitrate: int, ssrcs: list[int]) -> None:
        self._latest[frozenset(ssrcs)] = (bitrate, self._clock())

    def estimate(self, active_ssrcs: set[int]) -> int | None:
        """Sum of recent REMBs that cover at least one SSRC still being forwarded."""
        cutoff = self._clock() - self._max_age
        self._latest = {k: v for k, v in self._latest.items() if v[1] >= cutoff}
        values = [bitrate for ssrcs, (bitrate, _) in self._latest.items() if ssrcs & active_ssrcs]
        return sum(values) if values else None
