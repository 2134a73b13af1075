"""A room: the SFU state of one consultation, and the interface signaling uses."""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Optional, Union

from .config import SfuConfig
from .errors import DuplicateParticipant, PublishNotAllowed, UnknownParticipant
from .forwarder import Source
from .ice import IceCandidate
from .participant import Participant, PeerConnectionKind, PublishedTrack, Publisher, Subscription

logger = logging.getLogger(__name__)

#: ``on_negotiation_needed(participant_id)``: call ``create_subscribe_offer`` and send it.
NegotiationNeededCallback = Callable[[str], Union[Awaitable[None], None]]
#: ``on_connection_state(participant_id, "publish" | "subscribe", state)`` with aiortc's
#: ``connectionState`` values (new, connecting, connected, failed, closed).
ConnectionStateCallback = Callable[[str, PeerConnectionKind, str], Union[Awaitable[None], None]]


class Room:
    """Forwards every publisher's tracks to every other participant of the room.

    All methods must run on the event loop that owns the room. Errors a client
    can cause are :class:`media.errors.MediaError` subclasses and leave the
    room unchanged.
    """

    def __init__(
        self,
        room_id: str,
        config: Optional[SfuConfig] = None,
        *,
        on_negotiation_needed: Optional[NegotiationNeededCallback] = None,
        on_connection_state: Optional[ConnectionStateCallback] = None,
    ) -> None:
        self.room_id = room_id
        self.config = config or SfuConfig()
        self._on_negotiation_needed = on_negotiation_needed
        self._on_connection_state = on_connection_state
        self._participants: dict[str, Participant] = {}
        self._sources: list[Source] = []
        self._tasks: set[asyncio.Future[None]] = set()

    # -- membership -----------------------------------------------------------

    def add_publisher(self, participant_id: str) -> Publisher:
        """Join a participant who may publish (the caller has checked the permission)."""
        return self._add(Publisher(participant_id, self.config, self))

    def add_observer(self, participant_id: str) -> Participant:
        """Join a receive-only participant: it never gets a publish connection."""
        return self._add(Participant(participant_id, self.config, self))

    def participant(self, participant_id: str) -> Participant:
        try:
            return self._participants[participant_id]
        except KeyError:
            raise UnknownParticipant(f"no participant {participant_id!r} in room {self.room_id}") from None

    @property
    def participant_ids(self) -> list[str]:
        return list(self._participants)

    async def remove_participant(self, participant_id: str) -> None:
        """Leave: unpublish the participant's tracks (others renegotiate) and close its connections."""
        participant = self.participant(participant_id)
        del self._participants[participant_id]
        await participant.close()

    async def close(self) -> None:
        for participant_id in list(self._participants):
            await self.remove_participant(participant_id)

    # -- negotiation (by participant id, for signaling) -------------------------

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Answer a publish offer. :class:`PublishNotAllowed` for observers."""
        participant = self.participant(participant_id)
        if not isinstance(participant, Publisher):
            raise PublishNotAllowed(f"{participant_id} joined as subscribe-only")
        return await participant.publish(offer_sdp)

    async def create_subscribe_offer(self, participant_id: str) -> str:
        return await self.participant(participant_id).create_subscribe_offer()

    async def accept_subscribe_answer(self, participant_id: str, answer_sdp: str) -> None:
        await self.participant(participant_id).accept_subscribe_answer(answer_sdp)

    async def add_ice_candidate(
        self, participant_id: str, pc: PeerConnectionKind, candidate: Optional[IceCandidate]
    ) -> None:
        await self.participant(participant_id).add_ice_candidate(pc, candidate)

    # -- queries --------------------------------------------------------------

    def published_tracks(self) -> list[PublishedTrack]:
        return [
            track
            for p in self._participants.values()
            if isinstance(p, Publisher)
            for track in p.published_tracks()
        ]

    def subscriptions(self, participant_id: str) -> list[Subscription]:
        return self.participant(participant_id).subscriptions()

    async def stats(self) -> dict[str, object]:
        """Per-stream stats as plain dicts (see docs/media.md for the fields)."""
        inbound: list[dict[str, object]] = []
        outbound: list[dict[str, object]] = []
        for p in list(self._participants.values()):
            if isinstance(p, Publisher):
                inbound.extend(p.inbound_stats())
            outbound.extend(await p.outbound_stats())
        return {
            "room_id": self.room_id,
            "participants": len(self._participants),
            "inbound": inbound,
            "outbound": outbound,
        }

    # -- RoomEvents (called by participants) ------------------------------------

    def source_published(self, source: Source) -> None:
        self._sources.append(source)
        for p in self._participants.values():
            if p.id != source.publisher_id:
                p.subscribe(source)

    def source_ended(self, source: Source) -> None:
        if source in self._sources:
            self._sources.remove(source)
        for p in self._participants.values():
            p.unsubscribe(source)

    def negotiation_needed(self, participant_id: str) -> None:
        if self._on_negotiation_needed is not None:
            self._call(self._on_negotiation_needed, participant_id)

    def connection_state(self, participant_id: str, pc: PeerConnectionKind, state: str) -> None:
        if self._on_connection_state is not None:
            self._call(self._on_connection_state, participant_id, pc, state)

    # -- internals ------------------------------------------------------------

    def _add(self, participant: Participant) -> Participant:
        if participant.id in self._participants:
            raise DuplicateParticipant(f"{participant.id} is already in room {self.room_id}")
        self._participants[participant.id] = participant
        for source in self._sources:
            participant.subscribe(source)
        return participant

    def _call(self, callback: Callable[..., Union[Awaitable[None], None]], *args: object) -> None:
        try:
            result = callback(*args)
        except Exception:
            logger.exception("room %s: callback %r failed", self.room_id, callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: "asyncio.Future[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("room %s: callback failed", self.room_id, exc_info=task.exception())
