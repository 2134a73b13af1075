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
    #: A joining subscriber sees no video before the next keyframe: at 1 s, joins
    #: close together waited 1-2 s past their connection (bench/room.py), at
    #: 0.25 s 0.2-0.4 s, while a publisher still sends at most 4 a second.
    keyframe_request_interval: float = 0.25
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

    # -- forwarding policy (docs/media.md "Forwarding policy") ------------------

    #: Camera videos each subscriber receives besides the presenter and screen
    #: shares: those of the N most recent active speakers. The rest are paused.
    last_n: int = 4
    #: REMB caps a publisher's video by how it is shown. A screen share and the
    #: presenter's camera are shown large; every other camera is a grid tile.
    screen_share_bitrate_bps: int = 2_500_000
    presenter_bitrate_bps: int = 1_500_000
    tile_bitrate_bps: int = 400_000
    #: REMB is repeated this often (a lost REMB must not leave a publisher uncapped).
    remb_interval: float = 1.0
    #: How often speakers and forwarding decisions are re-evaluated.
    policy_interval: float = 0.25
    #: RFC 6464 level (0 = loudest, 127 = silence; -dBov) at or below which an
    #: audio packet counts as speech.
    speech_level: int = 50
    #: A publisher becomes the most recent speaker after speaking this long
    #: without a pause, so a cough or a door does not switch videos.
    speaker_activation_s: float = 0.5
    #: Downlink checks run every ``link_check_interval`` seconds on the
    #: subscriber's receiver reports and REMB. A link is bad when loss or RTT
    #: reach the ``degrade_*`` bounds, or its REMB is below
    #: ``degrade_remb_ratio`` of what is forwarded; good when loss and RTT are
    #: under the ``recover_*`` bounds and the REMB is not low.
    link_check_interval: float = 1.0
    degrade_loss: float = 0.10
    recover_loss: float = 0.03
    degrade_rtt_s: float = 0.6
    recover_rtt_s: float = 0.3
    degrade_remb_ratio: float = 0.7
    #: Hysteresis: one step down (full -> reduced -> audio-only) after this many
    #: seconds of bad link, one step up after this many seconds of good link.
    degrade_after_s: float = 2.0
    recover_after_s: float = 6.0
    #: Videos a subscriber in the "reduced" state still receives (highest priority first).
    reduced_videos: int = 1
