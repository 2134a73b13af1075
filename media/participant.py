"""One participant's peer connections.

:class:`Participant` owns the *subscribe* connection (the SFU offers, the
client answers). :class:`Publisher` adds the *publish* connection (the client
offers camera, microphone and optionally a screen share; the SFU answers).
Observers are plain :class:`Participant` objects: they have no publish
connection and no method to make one, so nothing can be published through them.
"""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from . import aiortc_hooks, sdp
from .config import SfuConfig
from .downlink import DownlinkMonitor, LinkSample, RembTracker
from .errors import MediaError, NegotiationStateError, SdpError, UnknownPeerConnection
from .forwarder import OutboundTrack, Source
from .ice import IceCandidate, add_remote_candidate, rtc_configuration
from .keyframes import KeyframeRequester
from .remb import PublisherBitrate

PeerConnectionKind = Literal["publish", "subscribe"]


@dataclass(frozen=True)
class PublishedTrack:
    """A track a publisher is sending to the SFU."""

    publisher_id: str
    track_id: str
    kind: str
    codec: str
    #: The m-section of the publisher's own publish connection.
    mid: str


@dataclass(frozen=True)
class Subscription:
    """A published track as carried on one subscriber's subscribe connection."""

    publisher_id: str
    track_id: str
    kind: str
    #: The m-section on the subscribe connection; None until offered.
    mid: str | None
    #: A publisher's second video (docs/media.md's publish convention), not its camera.
    screen_share: bool = False


@dataclass(frozen=True)
class SubscribeOffer:
    """One subscribe offer and the mapping it carries, taken together under the
    connection's lock: ``tracks`` names exactly the offer's sending m-sections.

    A mid is bound to one outbound track (one publisher's track) when its transceiver is
    made and keeps it for the connection's life: aiortc never hands a mid out twice on one
    connection, and a transceiver is never given another track (an ended one turns
    inactive). So a mapping is never contradicted by a later one of the same connection.
    """

    sdp: str
    #: 1 for the connection's first offer, then one more for each new offer.
    version: int
    tracks: tuple[Subscription, ...]


class RoomEvents(Protocol):
    """What a participant reports to its room."""

    def negotiation_needed(self, participant_id: str) -> None: ...

    def connection_state(self, participant_id: str, pc: PeerConnectionKind, state: str) -> None: ...

    def source_published(self, source: Source) -> None: ...

    def source_ended(self, source: Source) -> None: ...

    def speaker_meter(self, publisher_id: str) -> Callable[[int], None]: ...


@dataclass
class _Outbound:
    track: OutboundTrack
    transceiver: RTCRtpTransceiver | None = None
    removed: bool = False


class Participant:
    """A room member that receives media: subscribe connection only."""

    can_publish = False

    def __init__(
        self, participant_id: str, config: SfuConfig, events: RoomEvents, *, receives: bool = True
    ) -> None:
        self.id = participant_id
        #: Whether its subscribe connection is in this room object: a publisher whose
        #: subscribe connection another SFU worker carries (a room spread over workers)
        #: is here for its publish connection only.
        self.receives = receives
        self._config = config
        self._events = events
        self._sub_pc: RTCPeerConnection | None = None
        self._outbounds: dict[Source, _Outbound] = {}
        self._sub_lock = asyncio.Lock()
        self._offer_version = 0
        #: The last offer made, until it is answered, and the last version answered.
        self._offer: SubscribeOffer | None = None
        self._answered = 0
        self._negotiation_needed = False
        self._notify_scheduled = False
        self._closed = False
        #: This participant's downlink as the forwarding policy sees it.
        self.downlink = DownlinkMonitor(config)
        # A REMB older than a few checks describes streams that have changed since.
        self._remb = RembTracker(max_age_s=3 * config.link_check_interval)

    # -- subscribe connection -------------------------------------------------

    async def create_subscribe_offer(self) -> SubscribeOffer:
        """Bring the subscribe connection up to date and return the SFU's offer with the
        mid → track mapping of exactly that offer.

        Call on join and whenever the room reports that negotiation is needed.
        The SDP carries all of the SFU's ICE candidates (aiortc gathers before
        returning). Raises :class:`NegotiationStateError` while a previous
        offer is still unanswered, :class:`MediaError` if the participant left meanwhile
        (its offer is for a closed connection and must not be sent).
        """
        async with self._sub_lock:
            self._check_open()
            if self._sub_pc is None:
                self._sub_pc = self._new_pc("subscribe")
            pc = self._sub_pc
            if pc.signalingState != "stable":
                raise NegotiationStateError("the previous subscribe offer is not answered yet")
            await self._apply_subscriptions(pc)
            self._negotiation_needed = False
            await pc.setLocalDescription(await pc.createOffer())
            # It may have left while aiortc gathered: the offer is a closed connection's.
            self._check_open()
            self._offer_version += 1
            self._offer = SubscribeOffer(pc.localDescription.sdp, self._offer_version,
                                         self._offered_tracks(pc.localDescription.sdp))
            return self._offer

    def outstanding_offer(self) -> SubscribeOffer | None:
        """The offer made and not answered yet (to send again to a client that may have
        lost it), if any."""
        pc = self._sub_pc
        if self._closed or pc is None or pc.signalingState != "have-local-offer":
            return None
        return self._offer

    async def accept_subscribe_answer(self, answer_sdp: str, version: int | None = None) -> None:
        """Apply the client's answer to the last subscribe offer (``version``, when given,
        must be that offer's: an answer to an older offer is refused, a second answer to
        the offer answered last is taken as already applied).

        A refused answer (:class:`SdpError`, :class:`NegotiationStateError`) leaves the
        offer outstanding, so the client may answer again.
        """
        async with self._sub_lock:
            self._check_open()
            pc = self._sub_pc
            if pc is None:
                raise UnknownPeerConnection(f"{self.id}: no subscribe offer was made")
            if version is not None and version == self._answered:
                # The same offer sent twice around a resume: answered the first time.
                return
            if pc.signalingState != "have-local-offer":
                raise NegotiationStateError(f"{self.id}: no subscribe offer is outstanding")
            if version is not None and version != self._offer_version:
                raise NegotiationStateError(
                    f"{self.id}: answer to subscribe offer {version}, but offer "
                    f"{self._offer_version} is the outstanding one")
            offer = aiortc_hooks.parse_sdp(pc.localDescription.sdp)
            sdp.validate_subscribe_answer(answer_sdp, offer)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
            except Exception as exc:
                raise SdpError(f"subscribe answer refused by aiortc: {exc!r}") from exc
            self._offer = None
            self._answered = self._offer_version
        if self._negotiation_needed:
            self._schedule_notify()

    async def add_ice_candidate(self, pc: PeerConnectionKind,
                                candidate: IceCandidate | None) -> None:
        """Apply a client's trickled candidate to its ``pc`` connection (None: end of
        candidates)."""
        await add_remote_candidate(self._connection(pc), candidate)

    def subscriptions(self) -> list[Subscription]:
        """Which m-section carries which published track (for the client's UI)."""
        return [
            Subscription(
                publisher_id=source.publisher_id,
                track_id=source.track_id,
                kind=source.kind,
                mid=out.transceiver.mid if out.transceiver else None,
                screen_share=source.screen_share,
            )
            for source, out in self._outbounds.items()
            if not out.removed
        ]

    async def outbound_stats(self) -> list[dict[str, object]]:
        result = []
        for source, out in self._outbounds.items():
            if out.removed:
                continue
            fps, bps = out.track.counters.meter.rates()
            c = out.track.counters
            entry: dict[str, object] = {
                "subscriber_id": self.id,
                "publisher_id": source.publisher_id,
                "track_id": source.track_id,
                "kind": source.kind,
                "codec": source.codec.mimeType,
                "mid": out.transceiver.mid if out.transceiver else None,
                "ssrc": None,
                "packets": 0,
                "bytes": 0,
                "packets_lost": None,
                "fraction_lost": None,
                "jitter_s": None,
                "rtt_s": None,
                "frames": c.frames_sent,
                "fps": fps,
                "bitrate_bps": bps,
                "keyframes_sent": c.keyframes_sent,
                "keyframe_requests_received": c.keyframe_requests_received,
                "first_frame_keyframe": c.first_frame_keyframe,
                "frames_held": c.frames_held,
                "frames_dropped": c.frames_dropped,
                "queue_overflows": c.queue_overflows,
                "waiting_for_keyframe": out.track.waiting_for_keyframe,
                "forwarding": out.track.forwarding,
                "pauses": c.pauses,
            }
            if out.transceiver is not None:
                report = await out.transceiver.sender.getStats()
                for stat in report.values():
                    if stat.type == "outbound-rtp":
                        entry.update(ssrc=stat.ssrc, packets=stat.packetsSent, bytes=stat.bytesSent)
                    elif stat.type == "remote-inbound-rtp":
                        entry.update(
                            packets_lost=stat.packetsLost,
                            fraction_lost=stat.fractionLost / 256,
                            jitter_s=stat.jitter / source.codec.clockRate,
                            rtt_s=stat.roundTripTime,
                        )
            result.append(entry)
        return result

    async def close(self) -> None:
        """Leave: stop forwarding to this participant and close its connections."""
        self._closed = True
        for out in self._outbounds.values():
            out.track.detach()
        self._outbounds.clear()
        if self._sub_pc is not None:
            await self._sub_pc.close()

    # -- called by the room ---------------------------------------------------

    def video_tracks(self) -> list[OutboundTrack]:
        """The published videos this participant is subscribed to."""
        return [
            out.track
            for out in self._outbounds.values()
            if not out.removed and out.track.kind == "video"
        ]

    async def sample_link(self) -> LinkSample:
        """The downlink as the subscriber's last receiver reports and REMBs describe it."""
        losses: list[float] = []
        rtts: list[float] = []
        video_bps = 0.0
        video_ssrcs: set[int] = set()
        for out in list(self._outbounds.values()):
            if out.removed or out.transceiver is None or not out.track.forwarding:
                continue
            video = out.track.kind == "video"
            if video:
                video_bps += out.track.counters.meter.rates()[1]
            for stat in (await out.transceiver.sender.getStats()).values():
                if stat.type == "outbound-rtp" and video:
                    video_ssrcs.add(stat.ssrc)
                elif stat.type == "remote-inbound-rtp":
                    resumed = out.track.resumed_at
                    if resumed is not None and stat.timestamp < resumed:
                        continue  # from before a pause: the loss of a link since recovered
                    losses.append(stat.fractionLost / 256)
                    if stat.roundTripTime is not None:
                        rtts.append(stat.roundTripTime)
        return LinkSample(
            fraction_lost=max(losses, default=None),
            rtt_s=max(rtts, default=None),
            remb_bps=self._remb.estimate(video_ssrcs),
            video_bps=video_bps,
        )

    def subscribe(self, source: Source) -> None:
        if self._closed or not self.receives or source in self._outbounds:
            return
        queue = (
            self._config.video_queue_frames
            if source.kind == "video"
            else self._config.audio_queue_frames
        )
        track = OutboundTrack(source, self.id, queue, self._config.rate_window_seconds)
        self._outbounds[source] = _Outbound(track)
        self._mark_negotiation_needed()

    def unsubscribe(self, source: Source) -> None:
        out = self._outbounds.get(source)
        if out is None or out.removed:
            return
        out.track.detach()
        if out.transceiver is None:
            del self._outbounds[source]
        else:
            out.removed = True
            self._mark_negotiation_needed()

    # -- internals ------------------------------------------------------------

    def _offered_tracks(self, offer_sdp: str) -> tuple[Subscription, ...]:
        """Whose track each sending m-section of ``offer_sdp`` carries, read from the offer
        itself: a track that ended while the offer was made is still named (its m-section
        sends, nothing, until the next offer turns it inactive), one that came meanwhile
        is not (it has no m-section yet)."""
        by_mid = {
            out.transceiver.mid: source
            for source, out in self._outbounds.items()
            if out.transceiver is not None
        }
        tracks = []
        for media in aiortc_hooks.parse_sdp(offer_sdp).media:
            if sdp.direction(media) == "sendonly":
                source = by_mid[media.rtp.muxId]
                tracks.append(Subscription(source.publisher_id, source.track_id, source.kind,
                                           media.rtp.muxId, source.screen_share))
        return tuple(tracks)

    async def _apply_subscriptions(self, pc: RTCPeerConnection) -> None:
        for source, out in list(self._outbounds.items()):
            if out.removed:
                assert out.transceiver is not None
                # aiortc cannot remove an m-section: it stays, inactive, and
                # stopping its sender ends the RTP task reading the track.
                out.transceiver.direction = "inactive"
                await out.transceiver.sender.stop()
                del self._outbounds[source]
                # It may have left meanwhile: no transceiver for a closed connection.
                self._check_open()
            elif out.transceiver is None:
                transceiver = pc.addTransceiver(out.track, direction="sendonly")
                transceiver.setCodecPreferences(sdp.send_preferences(source.codec, source.kind))
                aiortc_hooks.install_packer(transceiver.sender, source.codec.name)
                aiortc_hooks.install_rtp_loop(transceiver.sender)
                aiortc_hooks.on_keyframe_request(transceiver.sender, out.track.request_keyframe)
                aiortc_hooks.on_remb(transceiver.sender, self._remb.add)
                # Group a publisher's tracks into one MediaStream named after them.
                aiortc_hooks.set_stream_id(transceiver.sender, source.publisher_id)
                out.transceiver = transceiver

    def _connection(self, kind: PeerConnectionKind) -> RTCPeerConnection:
        self._check_open()
        if kind == "subscribe" and self._sub_pc is not None:
            return self._sub_pc
        if kind == "publish":
            raise UnknownPeerConnection(f"{self.id} is subscribe-only: no publish connection")
        raise UnknownPeerConnection(f"{self.id} has no {kind!r} connection")

    def _new_pc(self, kind: PeerConnectionKind) -> RTCPeerConnection:
        pc = RTCPeerConnection(rtc_configuration(self._config.ice_servers))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self._connection_state_changed(kind, pc.connectionState)

        return pc

    def _connection_state_changed(self, kind: PeerConnectionKind, state: str) -> None:
        if not self._closed:
            self._events.connection_state(self.id, kind, state)

    def _mark_negotiation_needed(self) -> None:
        self._negotiation_needed = True
        self._schedule_notify()

    def _schedule_notify(self) -> None:
        # Coalesce changes made in one loop iteration (a publisher's audio and
        # video leaving together) into one notification.
        if not self._notify_scheduled:
            self._notify_scheduled = True
            asyncio.get_running_loop().call_soon(self._notify)

    def _notify(self) -> None:
        self._notify_scheduled = False
        if self._closed or not self._negotiation_needed:
            return
        if self._sub_pc is not None and self._sub_pc.signalingState != "stable":
            return  # accept_subscribe_answer re-checks
        self._events.negotiation_needed(self.id)

    def _check_open(self) -> None:
        if self._closed:
            raise MediaError(f"{self.id} has left the room")


class _InboundSlot:
    """Receives one publish-side receiver's frames; holds its Source while published."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.source: Source | None = None
        self.ssrc: int | None = None

    def media_ssrc(self) -> int | None:
        """The publisher's media SSRC: from the offer, else the one seen (may be RTX)."""
        if self.ssrc is not None:
            return self.ssrc
        sources = self.receiver.getSynchronizationSources()
        return sources[0].source if sources else None

    def on_frame(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        if self.source is not None:
            self.source.on_frame(codec, data, timestamp)


class Publisher(Participant):
    """A room member allowed to publish: a publish connection as well."""

    can_publish = True

    def __init__(
        self, participant_id: str, config: SfuConfig, events: RoomEvents, *, receives: bool = True
    ) -> None:
        super().__init__(participant_id, config, events, receives=receives)
        self._pub_pc: RTCPeerConnection | None = None
        self._pub_lock = asyncio.Lock()
        self._slots: dict[str, _InboundSlot] = {}
        #: The REMB caps sent to this publisher.
        self.bitrate = PublisherBitrate(config.remb_interval)

    async def publish(self, offer_sdp: str) -> str:
        """Apply the client's publish offer (first or renegotiated) and return the SFU's answer.

        Tracks the offer sends are published to every other participant;
        m-sections turned inactive/recvonly are unpublished. A refused offer
        raises :class:`SdpError` and leaves the publisher as it was.
        """
        async with self._pub_lock:
            self._check_open()
            offer = sdp.validate_publish_offer(offer_sdp, self._config)
            created = self._pub_pc is None
            pc = self._pub_pc if self._pub_pc is not None else self._new_publish_pc()
            if pc.signalingState != "stable":
                raise NegotiationStateError(f"{self.id}: publish connection is mid-negotiation")
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:
                if created:
                    self._slots.clear()
                    await pc.close()
                raise SdpError(f"publish offer refused by aiortc: {exc!r}") from exc
            self._pub_pc = pc
            self._sync_sources(offer, aiortc_hooks.parse_sdp(pc.localDescription.sdp))
            return pc.localDescription.sdp

    def published_tracks(self) -> list[PublishedTrack]:
        return [
            PublishedTrack(
                publisher_id=self.id,
                track_id=slot.source.track_id,
                kind=slot.source.kind,
                codec=slot.source.codec.mimeType,
                mid=slot.source.mid,
            )
            for slot in self._slots.values()
            if slot.source is not None
        ]

    def inbound_stats(self) -> list[dict[str, object]]:
        result: list[dict[str, object]] = []
        for slot in self._slots.values():
            source = slot.source
            if source is None:
                continue
            streams = aiortc_hooks.receiver_stream_counters(slot.receiver)
            ssrc = slot.ssrc
            if ssrc is None and streams:
                ssrc = max(streams, key=lambda s: streams[s].packets_received)
            rtp = streams.get(ssrc) if ssrc is not None else None
            fps, bps = source.counters.meter.rates()
            c = source.counters
            result.append(
                {
                    "publisher_id": self.id,
                    "track_id": source.track_id,
                    "kind": source.kind,
                    "codec": source.codec.mimeType,
                    "mid": source.mid,
                    "ssrc": ssrc,
                    "packets": rtp.packets_received if rtp else 0,
                    "packets_lost": rtp.packets_lost if rtp else 0,
                    "jitter_s": rtp.jitter / source.codec.clockRate if rtp else None,
                    # A receive-only endpoint gets no RTCP report blocks back, so
                    # RTT to a publisher is not measurable here.
                    "rtt_s": None,
                    "bytes": c.bytes,
                    "frames": c.frames,
                    "fps": fps,
                    "bitrate_bps": bps,
                    "keyframes": c.keyframes,
                    "keyframe_requests_received": source.keyframes.requests_received,
                    "keyframe_requests_sent": source.keyframes.requests_sent,
                    "frames_wrong_codec": c.frames_wrong_codec,
                    "subscribers": len(source.outbounds),
                    "forwarded_to": sum(1 for o in source.outbounds if o.forwarding),
                    "screen_share": source.screen_share,
                    # The publisher's whole REMB (all its videos), on its video tracks.
                    "remb_bps": self.bitrate.value if source.kind == "video" else None,
                }
            )
        return result

    def set_video_caps(self, caps: dict[Source, int]) -> None:
        """Send this publisher the REMB for its published videos' caps (bps)."""
        by_ssrc: dict[int, int] = {}
        for slot in self._slots.values():
            if slot.source is not None and slot.source in caps:
                ssrc = slot.media_ssrc()
                if ssrc is not None:
                    by_ssrc[ssrc] = caps[slot.source]
        self.bitrate.set_caps(by_ssrc)

    async def close(self) -> None:
        for slot in self._slots.values():
            self._end_source(slot)
        self.bitrate.close()
        await super().close()
        if self._pub_pc is not None:
            await self._pub_pc.close()

    def _connection(self, kind: PeerConnectionKind) -> RTCPeerConnection:
        if kind == "publish":
            self._check_open()
            if self._pub_pc is None:
                raise UnknownPeerConnection(f"{self.id} has not offered to publish yet")
            return self._pub_pc
        return super()._connection(kind)

    def _new_publish_pc(self) -> RTCPeerConnection:
        pc = self._new_pc("publish")

        @pc.on("track")
        def on_track(track: object) -> None:
            # Emitted inside setRemoteDescription, before the receiver starts:
            # the last moment the frame sink can replace the decoder.
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            receiver = transceiver.receiver
            slot = _InboundSlot(receiver)
            aiortc_hooks.attach_frame_sink(receiver, slot.on_frame, lambda: self._end_source(slot))
            if transceiver.kind == "audio":
                aiortc_hooks.on_audio_level(receiver, self._events.speaker_meter(self.id))
            else:
                self.bitrate.set_sender(
                    aiortc_hooks.take_over_remb(
                        receiver, lambda bps: self.bitrate.estimate(receiver, bps)
                    )
                )
            # aiortc gives every transceiver its mid while applying the offer.
            self._slots[str(transceiver.mid)] = slot

        return pc

    def _sync_sources(self, offer: aiortc_hooks.ParsedSdp, answer: aiortc_hooks.ParsedSdp) -> None:
        # Publish convention: the first video m-section is the camera, a later
        # one a screen share (shown large, capped high).
        camera_mid = next((m.rtp.muxId for m in offer.media if m.kind == "video"), None)
        for media in offer.media:
            slot = self._slots.get(media.rtp.muxId)
            if slot is None:
                continue
            sending = sdp.direction(media) in ("sendonly", "sendrecv")
            if sending and slot.source is None:
                slot.ssrc = sdp.primary_ssrc(media)
                slot.source = Source(
                    publisher_id=self.id,
                    track_id=slot.receiver.track.id,
                    kind=media.kind,
                    mid=media.rtp.muxId,
                    codec=sdp.negotiated_codec(answer, media.rtp.muxId),
                    keyframes=KeyframeRequester(
                        functools.partial(self._send_pli, slot),
                        self._config.keyframe_request_interval,
                    ),
                    rate_window=self._config.rate_window_seconds,
                    screen_share=media.kind == "video" and media.rtp.muxId != camera_mid,
                )
                self._events.source_published(slot.source)
            elif not sending and slot.source is not None:
                self._end_source(slot)

    async def _send_pli(self, slot: _InboundSlot) -> None:
        ssrc = slot.ssrc
        if ssrc is None:
            # No a=ssrc in the offer: use what the receiver has seen.
            sources = slot.receiver.getSynchronizationSources()
            if not sources:
                return
            ssrc = sources[0].source
        await aiortc_hooks.request_keyframe(slot.receiver, ssrc)

    def _end_source(self, slot: _InboundSlot) -> None:
        source, slot.source = slot.source, None
        if source is not None:
            self.bitrate.forget(slot.receiver)
            source.end()
            self._events.source_ended(source)

    def _connection_state_changed(self, kind: PeerConnectionKind, state: str) -> None:
        if kind == "publish" and state in ("failed", "closed"):
            # No ICE restart in aiortc: a failed publish connection is gone for good.
            for slot in self._slots.values():
                self._end_source(slot)
        super()._connection_state_changed(kind, state)
