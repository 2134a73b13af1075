"""Drives the SFU (``media/``) from the room: one ``media.Room`` per live consultation.

Admitted publishers (host, presenter, participants) join the SFU as publishers, observers
as subscribe-only participants; the SFU refuses a publish from the latter on its own too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.roles import RoomRole
from media import (
    ForwardingDecision,
    IceCandidate,
    IceCandidateError,
    MediaError,
    NegotiationStateError,
    PublishNotAllowed,
    Room,
    SdpError,
    SfuConfig,
    SubscribeOffer,
    UnknownParticipant,
    UnknownPeerConnection,
    VideoTrack,
)
from media.relay_edge import RoomMirror
from media.relay_home import RelayServer
from media.room import RoomStats

from .. import errors
from ..errors import SignalingError
from ..ports import Outbox, PeerConnection
from ..room_state import Member, RoomState

log = logging.getLogger(__name__)

_ERROR_CODES: tuple[tuple[type[MediaError], str], ...] = (
    (SdpError, errors.INVALID_SDP),
    (IceCandidateError, errors.INVALID_CANDIDATE),
    (UnknownPeerConnection, errors.UNKNOWN_CONNECTION),
    (NegotiationStateError, errors.NEGOTIATION_STATE),
    (PublishNotAllowed, errors.FORBIDDEN),
    (UnknownParticipant, errors.NOT_FOUND),
)


def forwarding_payload(decision: ForwardingDecision) -> dict[str, Any]:
    """What the member's client needs to draw its grid: which videos flow, which are paused
    (show the tile without video), and its own downlink state."""
    def track(v: VideoTrack) -> dict[str, Any]:
        return {"publisher_id": v.publisher_id, "track_id": v.track_id,
                "screen_share": v.screen_share}
    return {"link_state": decision.link_state, "videos": [track(v) for v in decision.videos],
            "paused": [track(v) for v in decision.paused]}


def offer_payload(offer: SubscribeOffer) -> dict[str, Any]:
    """A subscribe offer as the client gets it: the SDP with the mapping of exactly that
    SDP's sending m-sections (docs/signaling.md, "Which publisher a track is")."""
    return {"sdp": offer.sdp, "version": offer.version,
            "tracks": [{"mid": t.mid, "publisher_id": t.publisher_id, "track_id": t.track_id,
                        "kind": t.kind, "screen_share": t.screen_share} for t in offer.tracks]}


def as_signaling_error(exc: MediaError) -> SignalingError:
    code = next((c for t, c in _ERROR_CODES if isinstance(exc, t)), errors.MEDIA_ERROR)
    return SignalingError(code, str(exc) or type(exc).__name__)


class MediaBridge:
    """This node's SFU rooms. Every method names the member by participant id and reads it
    from room state, so a request forwarded from another node (multi-node) is served the
    same way as a local one.

    A room spread over SFU workers (router.py) is a *home* room in the worker that
    receives its publishers and a *mirror* room in each other worker carrying some of its
    subscribers, fed from the home over ``relay`` (media/relay_home.py); ``relay_address``
    names a worker's relay socket.
    """

    def __init__(self, state: RoomState, outbox: Outbox, config: SfuConfig | None = None, *,
                 relay: RelayServer | None = None,
                 relay_address: Callable[[str], str] | None = None) -> None:
        self._state = state
        self._outbox = outbox
        self._config = config or SfuConfig()
        self._relay = relay
        self._relay_address = relay_address
        self._rooms: dict[int, Room] = {}
        self._mirrors: dict[int, RoomMirror] = {}
        # Participants whose client asked for its first subscribe offer: before that the
        # SFU's "negotiation needed" is folded into that first offer.
        self._subscribing: set[tuple[int, str]] = set()
        # Negotiation needed while the member's socket was down; offered on resume.
        self._pending: set[tuple[int, str]] = set()
        # Resets the member missed while its socket was down (its room moved here): told
        # on resume, with the reason.
        self._missed_resets: dict[tuple[int, str], str] = {}

    def room(self, room_id: int) -> Room | None:
        return self._rooms.get(room_id)

    def room_ids(self) -> list[int]:
        """The rooms whose media this node carries: their publishers are received here."""
        return [r for r in self._rooms if r not in self._mirrors]

    def mirrored_room_ids(self) -> list[int]:
        """Rooms received in another worker, of which this one carries some subscribers."""
        return list(self._mirrors)

    def relay_figures(self) -> tuple[int, int]:
        """Mirrors this worker feeds, and the frames it dropped for lagging ones."""
        if self._relay is None:
            return 0, 0
        return self._relay.connections(), self._relay.frames_dropped

    def load(self) -> int:
        """SFU participants on this node: what room placement balances."""
        return sum(len(room.participant_ids) for room in self._rooms.values())

    def _room(self, room_id: int) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = Room(
                str(room_id), self._config,
                on_negotiation_needed=lambda pid: self._negotiation_needed(room_id, pid),
                on_connection_state=lambda pid, pc, state: self._outbox.emit_member(
                    room_id, pid, "media:connection_state", {"pc": pc, "state": state}),
                on_forwarding_changed=lambda d: self._outbox.emit_member(
                    room_id, d.subscriber_id, "media:forwarding", forwarding_payload(d)),
            )
            self._rooms[room_id] = room
        return room

    async def _member(self, room_id: int, participant_id: str) -> Member:
        member = await self._state.member(room_id, participant_id)
        if member is None:
            raise SignalingError(errors.NOT_FOUND, f"no participant {participant_id!r} "
                                 "in this room")
        return member

    async def add(self, room_id: int, participant_id: str, receives: bool = True) -> None:
        """The member's media joins here: its publish connection if it publishes, and its
        subscribe connection unless another worker carries that (``receives`` off)."""
        member = await self._member(room_id, participant_id)
        if not (member.publishes or receives):
            return
        # The room's publishers may come here from another worker (its home moved): the
        # old home's tracks end, and this worker's own mirrors are fed from now on.
        mirror = self._mirrors.pop(room_id, None)
        if mirror is not None:
            mirror.close()
        opened = mirror is not None or room_id not in self._rooms
        room = self._room(room_id)
        if opened and self._relay is not None:
            self._relay.open(room_id, room)
        if participant_id in room.participant_ids:
            return
        if member.publishes:
            room.add_publisher(participant_id, receives=receives)
        else:
            room.add_observer(participant_id)
        await self.sync_presenter(room_id)

    async def add_subscriber(self, room_id: int, participant_id: str, home: str) -> None:
        """The member's subscribe connection joins here, in a mirror of the room whose
        publishers worker ``home`` receives."""
        await self._member(room_id, participant_id)
        mirror = self._mirrors.get(room_id)
        if mirror is None or mirror.home != home or mirror.closed:
            if mirror is not None:
                mirror.close()
            elif room_id in self._rooms:
                # This worker was the room's home, and is no longer.
                await self.close_room(room_id)
            if self._relay_address is None:
                raise SignalingError(errors.MEDIA_ERROR, "this node has no relay to mirror "
                                     "rooms with")
            room = self._room(room_id)
            mirror = RoomMirror(room, room_id, home, self._relay_address(home), self._config)
            self._mirrors[room_id] = mirror
            try:
                await mirror.connect()
            except MediaError as exc:
                if not room.participant_ids:
                    await self.close_room(room_id)
                raise as_signaling_error(exc) from None
        room = self._rooms[room_id]
        if participant_id not in room.participant_ids:
            room.add_observer(participant_id)

    async def sync_presenter(self, room_id: int) -> None:
        """Tell the SFU whose camera everyone sees large: the admitted presenter, if any."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        presenter = next((m.participant_id for m in await self._state.members(room_id)
                          if m.admitted and m.role is RoomRole.presenter
                          and m.participant_id in room.participant_ids), None)
        if room.presenter != presenter:
            room.set_presenter(presenter)

    async def remove(self, room_id: int, participant_id: str) -> None:
        key = (room_id, participant_id)
        self._subscribing.discard(key)
        self._pending.discard(key)
        self._missed_resets.pop(key, None)
        room = self._rooms.get(room_id)
        if room is None or participant_id not in room.participant_ids:
            return
        await room.remove_participant(participant_id)
        if not room.participant_ids:
            await self.close_room(room_id)

    async def reset(self, room_id: int, participant_id: str, reason: str,
                    gone_node: str = "", receives: bool = True) -> None:
        """New SFU participant under the same id; the client must build new connections."""
        await self.remove(room_id, participant_id)
        await self.add(room_id, participant_id, receives)
        member = await self._member(room_id, participant_id)
        if member.sid is None or (gone_node and member.node == gone_node):
            self._missed_resets[(room_id, participant_id)] = reason
            return
        await self._outbox.emit_to(member.sid, "media:reset",
                                {"reason": reason, "can_publish": member.publishes})

    async def resumed(self, room_id: int, participant_id: str) -> None:
        key = (room_id, participant_id)
        reason = self._missed_resets.pop(key, None)
        if reason is not None:
            member = await self._member(room_id, participant_id)
            await self._outbox.emit_to(member.sid, "media:reset",
                                    {"reason": reason, "can_publish": member.publishes})
            return
        room = self._rooms.get(room_id)
        offer = (room.outstanding_subscribe_offer(participant_id)
                 if room is not None and participant_id in room.participant_ids
                 and key in self._subscribing else None)
        if offer is not None:
            # Sent to the old socket as it dropped, or answered into it: the same offer
            # again, which the client answers (again). Changes since follow its answer.
            self._pending.discard(key)
            member = await self._member(room_id, participant_id)
            await self._outbox.emit_to(member.sid, "media:subscribe_offer", offer_payload(offer))
            return
        if key in self._pending:
            self._pending.discard(key)
            await self._negotiation_needed(room_id, participant_id)

    async def close_room(self, room_id: int) -> None:
        room = self._rooms.pop(room_id, None)
        self._subscribing = {k for k in self._subscribing if k[0] != room_id}
        self._pending = {k for k in self._pending if k[0] != room_id}
        self._missed_resets = {k: v for k, v in self._missed_resets.items() if k[0] != room_id}
        mirror = self._mirrors.pop(room_id, None)
        if mirror is not None:
            mirror.close()
        elif self._relay is not None:
            self._relay.close(room_id)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.close_room(room_id)

    async def stats(self, room_id: int) -> RoomStats | None:
        """The room's SFU stats, with the streams its mirrors in other workers forward."""
        room = self._rooms.get(room_id)
        if room is None or room_id in self._mirrors:
            return None
        stats = await room.stats()
        if self._relay is not None:
            stats["outbound"] = [*stats["outbound"], *self._relay.mirror_stats(room_id)]
        return stats

    async def report_mirrors(self) -> None:
        """Send each mirror's outbound streams to its room's home, which reports the room."""
        for room_id, mirror in list(self._mirrors.items()):
            room = self._rooms.get(room_id)
            if room is not None and not mirror.closed:
                mirror.report((await room.stats())["outbound"])

    async def _negotiation_needed(self, room_id: int, participant_id: str) -> None:
        key = (room_id, participant_id)
        if key not in self._subscribing:
            return
        member = await self._state.member(room_id, participant_id)
        if member is None:
            return
        if member.sid is None:
            self._pending.add(key)
            return
        room = self._rooms.get(room_id)
        # Checked again after the wait: a media:restart meanwhile replaced the member's
        # connections, and the new one's first offer is the client's to ask for.
        if room is None or key not in self._subscribing:
            return
        try:
            offer = await room.subscribe_offer(participant_id)
        except MediaError as exc:
            # Raced with a leave or an outstanding offer; the SFU asks again after the
            # answer, and a leave needs nothing more.
            log.info("room %s: no subscribe offer for %s: %s", room_id, participant_id, exc)
            return
        # The socket is read again: the member may have resumed on another one while the
        # offer was made. Away now, the offer stays outstanding and is sent on resume.
        await self._outbox.emit_member(room_id, participant_id, "media:subscribe_offer",
                                    offer_payload(offer))

    # -- a member's media events ---------------------------------------------------

    def _member_room(self, room_id: int, participant_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None or participant_id not in room.participant_ids:
            raise SignalingError(errors.UNKNOWN_CONNECTION, "you have no media session")
        return room

    async def publish(self, room_id: int, participant_id: str, sdp: str) -> dict[str, Any]:
        room = self._member_room(room_id, participant_id)
        try:
            answer = await room.publish(participant_id, sdp)
        except MediaError as exc:
            raise as_signaling_error(exc) from None
        return {"sdp": answer}

    async def subscribe(self, room_id: int, participant_id: str) -> dict[str, Any]:
        room = self._member_room(room_id, participant_id)
        if not room.subscriptions(participant_id):
            # Nothing published yet: an offer without m-sections helps nobody (and its
            # answer would be refused); the first published track pushes an offer.
            self._subscribing.add((room_id, participant_id))
            return {"sdp": None, "tracks": []}
        try:
            offer = await room.subscribe_offer(participant_id)
        except MediaError as exc:
            raise as_signaling_error(exc) from None
        self._subscribing.add((room_id, participant_id))
        return offer_payload(offer)

    async def subscribe_answer(self, room_id: int, participant_id: str, sdp: str,
                               version: int | None = None) -> dict[str, Any]:
        room = self._member_room(room_id, participant_id)
        try:
            await room.accept_subscribe_answer(participant_id, sdp, version)
        except MediaError as exc:
            raise as_signaling_error(exc) from None
        return {"ok": True}

    async def ice(self, room_id: int, participant_id: str, pc: PeerConnection,
                  candidate: dict[str, Any] | None) -> dict[str, Any]:
        room = self._member_room(room_id, participant_id)
        ice = None
        if candidate is not None:
            ice = IceCandidate(candidate["candidate"], candidate["sdpMid"],
                               candidate["sdpMLineIndex"])
        try:
            await room.add_ice_candidate(participant_id, pc, ice)
        except MediaError as exc:
            raise as_signaling_error(exc) from None
        return {"ok": True}

    async def restart(self, room_id: int, participant_id: str,
                      receives: bool = True) -> dict[str, Any]:
        """The client lost its peer connections (reload, ICE failure): start media over."""
        await self.remove(room_id, participant_id)
        await self.add(room_id, participant_id, receives)
        member = await self._member(room_id, participant_id)
        return {"ok": True, "can_publish": member.publishes}
