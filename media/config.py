"""Settings of one SFU room."""

from dataclasses import dataclass, field

from aiortc import RTCIceServer


@dataclass(frozen=True)
class SfuConfig:
    """Tunables of a :class:`media.room.Room`.

    ICE host addresses are process-wide (aioice gathers from a module-level
    function), so they are set with :func:`media.ice.configure_host_addresses`,
    not here.
    """

    #: STUN/TURN servers for the SFU's own gathering. Empty by default: aiortc
    #: would otherwise use stun.l.google.com, which stalls gathering offline.
    ice_servers: tuple[RTCIceServer, ...] = field(default_factory=tuple)
    #: At most one keyframe request (PLI) per this many seconds reaches a
    #: publisher's track; later requests are merged into one trailing request.
    keyframe_request_interval: float = 1.0
    #: Per-subscriber queue bounds, in frames. Video: 2 s at 30 fps; on
    #: overflow the queue is flushed and refilled from the next keyframe.
    video_queue_frames: int = 60
    #: Audio: 1 s of 20 ms Opus frames; on overflow the oldest frame is dropped.
    audio_queue_frames: int = 50
    #: What one publisher may send: camera + screen share, one microphone.
    max_published_video: int = 2
    max_published_audio: int = 1
    #: Upper bound on m-sections in one publish offer, sending or not.
    max_publish_sections: int = 8
    #: Bitrate and frame rate are averaged over this many whole seconds.
    rate_window_seconds: int = 2
