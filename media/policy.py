"""Which videos each subscriber receives, and how large each video is shown.

Pure decisions over plain values, no aiortc: the room feeds in its videos,
presenter, speaker order and each subscriber's link state, and applies the
result (pause/resume outbound tracks, REMB caps).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .config import SfuConfig

#: A subscriber's downlink: every selected video, fewer videos, or audio only.
LinkState = Literal["full", "reduced", "audio-only"]
LINK_STATES: tuple[LinkState, ...] = ("full", "reduced", "audio-only")

#: How a video is shown, which decides its publisher's REMB cap.
DisplayRole = Literal["screen-share", "presenter", "tile"]


@dataclass(frozen=True)
class VideoTrack:
    publisher_id: str
    track_id: str
    #: A publisher's second video m-section is its screen share (publish convention).
    screen_share: bool


@dataclass(frozen=True)
class ForwardingDecision:
    """What one subscriber currently receives (for the room UI)."""

    subscriber_id: str
    link_state: LinkState
    #: Videos forwarded to it, highest priority first.
    videos: tuple[VideoTrack, ...]
    #: Videos it is subscribed to but that are paused (no RTP sent).
    paused: tuple[VideoTrack, ...]


def display_role(video: VideoTrack, presenter: str | None) -> DisplayRole:
    if video.screen_share:
        return "screen-share"
    if video.publisher_id == presenter:
        return "presenter"
    return "tile"


def bitrate_cap(role: DisplayRole, config: SfuConfig) -> int:
    if role == "screen-share":
        return config.screen_share_bitrate_bps
    if role == "presenter":
        return config.presenter_bitrate_bps
    return config.tile_bitrate_bps


def rank_videos(
    videos: Sequence[VideoTrack], presenter: str | None, speakers: Sequence[str]
) -> list[VideoTrack]:
    """Room-wide priority: screen shares (the presenter's first), the presenter's
    camera, then cameras by how recently their publisher started speaking;
    publishers never heard keep their publish order (``videos``' order)."""
    recency = {publisher_id: i for i, publisher_id in enumerate(speakers)}
    never = len(recency)

    def key(item: tuple[int, VideoTrack]) -> tuple[int, int, int]:
        index, video = item
        if video.screen_share:
            return (0, video.publisher_id != presenter, index)
        if video.publisher_id == presenter:
            return (1, 0, index)
        return (2, recency.get(video.publisher_id, never), index)

    return [video for _, video in sorted(enumerate(videos), key=key)]


def select_videos(
    ranked: Sequence[VideoTrack],
    subscriber_id: str,
    presenter: str | None,
    link: LinkState,
    config: SfuConfig,
) -> list[VideoTrack]:
    """The videos ``subscriber_id`` receives, highest priority first.

    Full link: screen shares, the presenter's camera, and the cameras of the
    ``last_n`` most recent other speakers. Reduced: the first
    ``reduced_videos`` of those. Audio only: none.
    """
    if link == "audio-only":
        return []
    selected: list[VideoTrack] = []
    cameras = 0
    for video in ranked:
        if video.publisher_id == subscriber_id:
            continue  # nobody receives their own video
        if display_role(video, presenter) == "tile":
            if cameras >= config.last_n:
                continue
            cameras += 1
        selected.append(video)
    if link == "reduced":
        return selected[: config.reduced_videos]
    return selected
