"""Runs a room's forwarding policy: speakers, downlinks, pauses, REMB caps.

Decisions come from :mod:`media.policy`; this module gathers their inputs on
a timer and applies them: pauses and resumes subscribers' video tracks, sends
each publisher its REMB cap, and reports changes to the room's callbacks.
"""

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from .config import SfuConfig
from .forwarder import Source
from .participant import Participant, Publisher
from .policy import (
    ForwardingDecision,
    LinkState,
    VideoTrack,
    bitrate_cap,
    display_role,
    rank_videos,
    select_videos,
)
from .speakers import ActiveSpeakers

logger = logging.getLogger(__name__)


class PolicyHost(Protocol):
    """What the controller needs from its room."""

    def policy_participants(self) -> Iterable[Participant]: ...

    def policy_sources(self) -> Iterable[Source]: ...

    def link_state_changed(self, participant_id: str, state: LinkState) -> None: ...

    def forwarding_changed(self, decision: ForwardingDecision) -> None: ...

    def view_changed(self, presenter: str | None, speakers: list[str]) -> None: ...


def _video_track(source: Source) -> VideoTrack:
    return VideoTrack(source.publisher_id, source.track_id, source.screen_share)


class ForwardingController:
    """One room's policy state (presenter, speakers, decisions) and its timer."""

    def __init__(self, config: SfuConfig, host: PolicyHost) -> None:
        self._config = config
        self._host = host
        self.speakers = ActiveSpeakers(
            config.speech_level, round(config.speaker_activation_s / config.policy_interval)
        )
        self.presenter: str | None = None
        #: Presenter and speakers come from another worker (:meth:`follow`), not from here.
        self.following = False
        self._view: tuple[str | None, list[str]] = (None, [])
        self._decisions: dict[str, ForwardingDecision] = {}
        self._task: asyncio.Task[None] | None = None

    def decision(self, participant_id: str) -> ForwardingDecision:
        # The room applies the policy whenever a participant joins, so every one has a decision.
        return self._decisions[participant_id]

    def decisions(self) -> dict[str, ForwardingDecision]:
        return dict(self._decisions)

    def start(self) -> None:
        """Start the timer (idempotent); needs the running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def forget(self, participant_id: str) -> None:
        self._decisions.pop(participant_id, None)
        self.speakers.remove(participant_id)
        if self.presenter == participant_id and not self.following:
            self.presenter = None

    def follow(self, presenter: str | None, speakers: list[str]) -> None:
        """Rank videos by the presenter and speaker order of the room's home worker."""
        self.following = True
        self.presenter = presenter
        self.speakers.follow(speakers)
        self.apply()

    def apply(self) -> None:
        """Recompute every subscriber's videos and every publisher's cap, and apply them."""
        sources = [s for s in self._host.policy_sources() if s.kind == "video" and not s.ended]
        by_track = {_video_track(s): s for s in sources}
        ranked = rank_videos(list(by_track), self.presenter, self.speakers.order)
        participants = list(self._host.policy_participants())
        for participant in participants:
            if not participant.receives:
                continue
            link = participant.downlink.state
            selected = select_videos(ranked, participant.id, self.presenter, link, self._config)
            chosen = {by_track[v] for v in selected}
            paused: list[VideoTrack] = []
            for track in participant.video_tracks():
                forwarding = track.source in chosen
                track.set_forwarding(forwarding)
                if not forwarding:
                    paused.append(_video_track(track.source))
            decision = ForwardingDecision(participant.id, link, tuple(selected), tuple(paused))
            if self._decisions.get(participant.id) != decision:
                self._decisions[participant.id] = decision
                self._host.forwarding_changed(decision)
        for participant in participants:
            if isinstance(participant, Publisher):
                participant.set_video_caps(
                    {
                        s: bitrate_cap(display_role(_video_track(s), self.presenter), self._config)
                        for s in sources
                        if s.publisher_id == participant.id
                    }
                )
        view = (self.presenter, self.speakers.order)
        if view != self._view:
            self._view = view
            self._host.view_changed(*view)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_link_check = loop.time() + self._config.link_check_interval
        while True:
            await asyncio.sleep(self._config.policy_interval)
            try:
                self.speakers.update()
                if loop.time() >= next_link_check:
                    next_link_check = loop.time() + self._config.link_check_interval
                    await self._check_links()
                self.apply()
                for participant in self._host.policy_participants():
                    if isinstance(participant, Publisher):
                        participant.bitrate.tick()
            except Exception:
                # The policy must never stop forwarding: log and try again next tick.
                logger.exception("forwarding policy tick failed")

    async def _check_links(self) -> None:
        participants = [p for p in self._host.policy_participants() if p.receives]
        samples = await asyncio.gather(
            *(p.sample_link() for p in participants), return_exceptions=True
        )
        for participant, sample in zip(participants, samples, strict=True):
            if isinstance(sample, BaseException):
                continue  # left or closed while its stats were read
            if participant.downlink.update(sample):
                self._host.link_state_changed(participant.id, participant.downlink.state)
