"""A room: the SFU state of one consultation, and the interface signaling uses."""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypedDict, TypeVar

from .config import SfuConfig
from .errors import DuplicateParticipant, PublishNotAllowed, UnknownParticipant
from .forwarder import Source
from .forwarding import ForwardingController
from .ice import IceCandidate
from .participant import (
    Participant,
    PeerConnectionKind,
    PublishedTrack,
    Publisher,
    SubscribeOffer,
    Subscription,
)
from .policy import ForwardingDecision, LinkState

P = TypeVar("P", bound=Participant)


class RoomStats(TypedDict):
    room_id: str
    participants: int
    # Per stream, the fields docs/media.md lists; read by signaling/stats.py.
    inbound: list[dict[str, Any]]
    outbound: list[dict[str, Any]]

logger = logging.getLogger(__name__)

#: ``on_negotiation_needed(participant_id)``: call ``create_subscribe_offer`` and send it.
NegotiationNeededCallback = Callable[[str], Awaitable[None] | None]
#: ``on_connection_state(participant_id, "publish" | "subscribe", state)`` with aiortc's
#: ``connectionState`` values (new, connecting, connected, failed, closed).
ConnectionStateCallback = Callable[[str, PeerConnectionKind, str], Awaitable[None] | None]
#: ``on_link_state(participant_id, "full" | "reduced" | "audio-only")``: its downlink state changed.
LinkStateCallback = Callable[[str, LinkState], Awaitable[None] | None]
#: ``on_forwarding_changed(decision)``: the videos one subscriber receives (or its link
#: state) changed.
ForwardingChangedCallback = Callable[[ForwardingDecision], Awaitable[None] | None]


class RoomListener(Protocol):
    """Follows a room's published tracks and view from outside: the relay that feeds the
    room's mirrors in other SFU workers (media/relay_home.py)."""

    def source_published(self, source: Source) -> None: ...

    def source_ended(self, source: Source) -> None: ...

    def view_changed(self, presenter: str | None, speakers: list[str]) -> None: ...


class Room:
    """Forwards every publisher's tracks to every other participant of the room.

    All methods must run on the event loop that owns the room. Errors a client
    can cause are :class:`media.errors.MediaError` subclasses and leave the
    room unchanged.
    """

    def __init__(
        self,
        room_id: str,
        config: SfuConfig | None = None,
        *,
        on_negotiation_needed: NegotiationNeededCallback | None = None,
        on_connection_state: ConnectionStateCallback | None = None,
        on_link_state: LinkStateCallback | None = None,
        on_forwarding_changed: ForwardingChangedCallback | None = None,
    ) -> None:
        self.room_id = room_id
        self.config = config or SfuConfig()
        self._on_negotiation_needed = on_negotiation_needed
        self._on_connection_state = on_connection_state
        self._on_link_state = on_link_state
        self._on_forwarding_changed = on_forwarding_changed
        self._participants: dict[str, Participant] = {}
        self._sources: list[Source] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self._listeners: list[RoomListener] = []
        self._policy = ForwardingController(self.config, self)

    # -- membership -----------------------------------------------------------

    def add_publisher(self, participant_id: str, *, receives: bool = True) -> Publisher:
        """Join a participant who may publish (the caller has checked the permission).

        ``receives`` off: its subscribe connection is in another worker's room, fed by a
        mirror of this one; here it only publishes.
        """
        return self._add(Publisher(participant_id, self.config, self, receives=receives))

    def add_observer(self, participant_id: str) -> Participant:
        """Join a receive-only participant: it never gets a publish connection."""
        return self._add(Participant(participant_id, self.config, self))

    def participant(self, participant_id: str) -> Participant:
        try:
            return self._participants[participant_id]
        except KeyError:
            raise UnknownParticipant(
                f"no participant {participant_id!r} in room {self.room_id}"
            ) from None

    @property
    def participant_ids(self) -> list[str]:
        return list(self._participants)

    async def remove_participant(self, participant_id: str) -> None:
        """Leave: unpublish the participant's tracks (others renegotiate) and close its
        connections."""
        participant = self.participant(participant_id)
        del self._participants[participant_id]
        self._policy.forget(participant_id)
        await participant.close()
        self._policy.apply()
        if not self._participants:
            await self._policy.stop()

    async def close(self) -> None:
        for participant_id in list(self._participants):
            await self.remove_participant(participant_id)
        await self._policy.stop()

    # -- forwarding policy (docs/media.md "Forwarding policy") ----------------------

    @property
    def presenter(self) -> str | None:
        return self._policy.presenter

    def set_presenter(self, participant_id: str | None) -> None:
        """Show ``participant_id``'s camera large to everyone (None: nobody presents).

        Its camera is capped high and forwarded to every subscriber outside
        last-N. A presenter who leaves the room stops presenting.
        """
        if participant_id is not None:
            self.participant(participant_id)  # UnknownParticipant
        self._policy.presenter = participant_id
        self._policy.apply()

    def follow(self, presenter: str | None, speakers: list[str]) -> None:
        """A mirror of another worker's room: take that room's presenter and speaker order
        (its publishers, whose audio levels are measured there, are not in this room)."""
        self._policy.follow(presenter, speakers)

    def attach(self, listener: RoomListener) -> None:
        """Tell ``listener`` of every published track and view change from now on, starting
        with the current ones."""
        self._listeners.append(listener)
        for source in self._sources:
            listener.source_published(source)
        listener.view_changed(self._policy.presenter, self._policy.speakers.order)

    def detach(self, listener: RoomListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def active_speakers(self) -> list[str]:
        """Publishers with audio, most recent speaker first."""
        return self._policy.speakers.order

    def forwarding(self, participant_id: str) -> ForwardingDecision:
        """What ``participant_id`` receives now: link state, forwarded and paused videos."""
        self.participant(participant_id)  # UnknownParticipant
        return self._policy.decision(participant_id)

    def forwarding_decisions(self) -> dict[str, ForwardingDecision]:
        """:meth:`forwarding` for every participant."""
        self._policy.apply()
        return self._policy.decisions()

    # -- negotiation (by participant id, for signaling) -------------------------

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Answer a publish offer. :class:`PublishNotAllowed` for observers."""
        participant = self.participant(participant_id)
        if not isinstance(participant, Publisher):
            raise PublishNotAllowed(f"{participant_id} joined as subscribe-only")
        return await participant.publish(offer_sdp)

    async def subscribe_offer(self, participant_id: str) -> SubscribeOffer:
        """The next subscribe offer with the mid → track mapping it carries: send both
        together, so the client applies the mapping with the SDP it describes."""
        return await self.participant(participant_id).create_subscribe_offer()

    async def create_subscribe_offer(self, participant_id: str) -> str:
        """:meth:`subscribe_offer`'s SDP alone, for in-process peers that need no mapping."""
        return (await self.subscribe_offer(participant_id)).sdp

    def outstanding_subscribe_offer(self, participant_id: str) -> SubscribeOffer | None:
        return self.participant(participant_id).outstanding_offer()

    async def accept_subscribe_answer(self, participant_id: str, answer_sdp: str,
                                      version: int | None = None) -> None:
        await self.participant(participant_id).accept_subscribe_answer(answer_sdp, version)

    async def add_ice_candidate(
        self, participant_id: str, pc: PeerConnectionKind, candidate: IceCandidate | None
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

    async def stats(self) -> RoomStats:
        """Per-stream stats as plain dicts (see docs/media.md for the fields)."""
        inbound: list[dict[str, Any]] = []
        outbound: list[dict[str, Any]] = []
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
        for listener in list(self._listeners):
            listener.source_published(source)
        self._policy.apply()

    def source_ended(self, source: Source) -> None:
        if source in self._sources:
            self._sources.remove(source)
        for p in self._participants.values():
            p.unsubscribe(source)
        for listener in list(self._listeners):
            listener.source_ended(source)
        self._policy.apply()

    def speaker_meter(self, publisher_id: str) -> Callable[[int], None]:
        return self._policy.speakers.meter(publisher_id)

    # -- PolicyHost (called by the forwarding controller) -----------------------

    def policy_participants(self) -> list[Participant]:
        return list(self._participants.values())

    def policy_sources(self) -> list[Source]:
        return list(self._sources)

    def link_state_changed(self, participant_id: str, state: LinkState) -> None:
        if self._on_link_state is not None:
            self._call(self._on_link_state, participant_id, state)

    def forwarding_changed(self, decision: ForwardingDecision) -> None:
        if self._on_forwarding_changed is not None:
            self._call(self._on_forwarding_changed, decision)

    def view_changed(self, presenter: str | None, speakers: list[str]) -> None:
        for listener in list(self._listeners):
            listener.view_changed(presenter, speakers)

    def negotiation_needed(self, participant_id: str) -> None:
        if self._on_negotiation_needed is not None:
            self._call(self._on_negotiation_needed, participant_id)

    def connection_state(self, participant_id: str, pc: PeerConnectionKind, state: str) -> None:
        if self._on_connection_state is not None:
            self._call(self._on_connection_state, participant_id, pc, state)

    # -- internals ------------------------------------------------------------

    def _add(self, participant: P) -> P:
        if participant.id in self._participants:
            raise DuplicateParticipant(f"{participant.id} is already in room {self.room_id}")
        self._participants[participant.id] = participant
        for source in self._sources:
            # A mirror room has the tracks of publishers who join it later to subscribe.
            if source.publisher_id != participant.id:
                participant.subscribe(source)
        self._policy.apply()
        self._policy.start()
        return participant

    def _call(self, callback: Callable[..., Awaitable[None] | None], *args: object) -> None:
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
