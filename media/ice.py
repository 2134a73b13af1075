"""ICE configuration and remote candidates.

Candidates from the SFU: aiortc gathers all of its candidates inside
``setLocalDescription`` (no trickle), so every SDP the SFU returns already
carries its candidates and ``a=end-of-candidates``; signaling has nothing to
relay in that direction. Candidates from clients are trickled in with
:meth:`media.room.Room.add_ice_candidate`.
"""

from dataclasses import dataclass

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection

from . import aiortc_hooks
from .errors import IceCandidateError


def configure_host_addresses(addresses: list[str] | None) -> None:
    """Gather host candidates on exactly these local addresses, process-wide.

    aioice leaves 127.0.0.1 out of its own discovery, so on a loopback-only
    network the SFU would answer with no candidate at all; in production this
    is where the public (or NAT-mapped private) address goes. ``None`` restores
    aioice's discovery. Call before any peer connection gathers.
    """
    aiortc_hooks.set_host_addresses(addresses)


def rtc_configuration(ice_servers: tuple[RTCIceServer, ...]) -> RTCConfiguration:
    """Configuration for every SFU peer connection.

    MAX_BUNDLE because with aiortc's default BALANCED policy a connection
    carrying audio, video, audio, video never starts the second video sender
    (aiortc issue #1414).
    """
    return RTCConfiguration(
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceServers=list(ice_servers)
    )


@dataclass(frozen=True)
class IceCandidate:
    """A remote candidate as a browser's ``RTCIceCandidate.toJSON()`` gives it."""

    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


async def add_remote_candidate(pc: RTCPeerConnection, candidate: IceCandidate | None) -> None:
    """Apply a trickled candidate; ``None`` or an empty string ends the candidates.

    Under MAX_BUNDLE every transceiver shares one ICE transport, so the
    candidate goes straight to it. (``RTCPeerConnection.addIceCandidate``
    routes by ``sdpMid`` and silently drops candidates that name a bundled
    m-section.)
    """
    transceivers = pc.getTransceivers()
    if not transceivers:
        raise IceCandidateError("the peer connection has no media section yet")
    ice_transport = transceivers[0].receiver.transport.transport
    if candidate is None or not candidate.candidate.strip():
        await ice_transport.addRemoteCandidate(None)
        return
    text = candidate.candidate.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        parsed = aiortc_hooks.parse_candidate(text)
    except (AssertionError, ValueError, IndexError) as exc:
        raise IceCandidateError(f"unparsable ICE candidate {candidate.candidate!r}") from exc
    parsed.sdpMid = candidate.sdpMid
    parsed.sdpMLineIndex = candidate.sdpMLineIndex
    try:
        await ice_transport.addRemoteCandidate(parsed)
    except ValueError as exc:
        raise IceCandidateError(f"ICE candidate refused: {exc}") from exc
