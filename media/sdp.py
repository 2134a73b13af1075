"""Checks on client SDP before it reaches a peer connection.

aiortc changes a connection's state part-way through ``setRemoteDescription``
before some of its own checks fail, so everything the SFU can check is
checked here first: a refused offer or answer leaves the room as it was.
"""


from aiortc import RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpSender

from . import aiortc_hooks
from .config import SfuConfig
from .errors import SdpError

#: Codecs the SFU can forward without transcoding, by media kind.
FORWARDABLE = {"audio": ("opus",), "video": ("vp8", "h264")}

_SENDING = ("sendonly", "sendrecv")


def parse(text: str) -> aiortc_hooks.ParsedSdp:
    if not isinstance(text, str) or not text.strip():
        raise SdpError("empty SDP")
    try:
        parsed = aiortc_hooks.parse_sdp(text)
    except Exception as exc:  # the parser raises assorted types on bad input
        raise SdpError(f"unparsable SDP: {exc!r}") from exc
    if not parsed.media:
        raise SdpError("SDP has no media section")
    return parsed


def direction(media: aiortc_hooks.ParsedMedia) -> str:
    # RFC 4566: no direction attribute means sendrecv.
    return media.direction or "sendrecv"


def is_forwardable(codec: RTCRtpCodecParameters, kind: str) -> bool:
    name = codec.name.lower()
    if name not in FORWARDABLE.get(kind, ()):
        return False
    # aiortc only packetizes H.264 in non-interleaved mode.
    return name != "h264" or str(codec.parameters.get("packetization-mode")) == "1"


def _check_transport(media: aiortc_hooks.ParsedMedia, *, answer: bool) -> None:
    mid = media.rtp.muxId
    if not mid:
        raise SdpError(f"{media.kind} m-section has no a=mid")
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise SdpError(f"m-section {mid}: ICE ufrag or password missing")
    if media.dtls is None or not media.dtls.fingerprints:
        raise SdpError(f"m-section {mid}: DTLS fingerprint or setup missing")
    if answer and media.dtls.role not in ("client", "server"):
        raise SdpError(f"m-section {mid}: an answer must say a=setup:active or passive")
    if not media.rtcp_mux:
        raise SdpError(f"m-section {mid}: rtcp-mux is required")


def primary_ssrc(media: aiortc_hooks.ParsedMedia) -> int | None:
    """The media (not RTX) SSRC an m-section announces, if it announces one."""
    for group in media.ssrc_group:
        if group.semantic == "FID" and group.items:
            return int(group.items[0])
    return media.ssrc[0].ssrc if media.ssrc else None


def validate_publish_offer(text: str, config: SfuConfig) -> aiortc_hooks.ParsedSdp:
    """Parse and check a publisher's offer; raise :class:`SdpError` if unacceptable."""
    offer = parse(text)
    if len(offer.media) > config.max_publish_sections:
        raise SdpError(f"too many m-sections ({len(offer.media)})")
    mids: set[str] = set()
    sending = {"audio": 0, "video": 0}
    for media in offer.media:
        if media.kind not in ("audio", "video"):
            raise SdpError(f"{media.kind} m-sections are not accepted on the publish connection")
        _check_transport(media, answer=False)
        if media.rtp.muxId in mids:
            raise SdpError(f"duplicate mid {media.rtp.muxId}")
        mids.add(media.rtp.muxId)
        if not any(is_forwardable(c, media.kind) for c in media.rtp.codecs):
            raise SdpError(
                f"m-section {media.rtp.muxId}: no forwardable {media.kind} codec "
                f"(need one of {', '.join(FORWARDABLE[media.kind])})"
            )
        if direction(media) in _SENDING:
            sending[media.kind] += 1
    if sending["audio"] > config.max_published_audio:
        raise SdpError(f"at most {config.max_published_audio} audio track(s) may be published")
    if sending["video"] > config.max_published_video:
        raise SdpError(f"at most {config.max_published_video} video track(s) may be published")
    if sum(sending.values()) == 0:
        raise SdpError("the publish offer sends nothing")
    for kind, count in sending.items():
        # aiortc routes RTP by SSRC, then payload type: two m-sections of one
        # kind with the same payload types need SSRCs or both are dropped.
        if count > 1 and any(
            m.kind == kind and direction(m) in _SENDING and primary_ssrc(m) is None
            for m in offer.media
        ):
            raise SdpError(f"several {kind} m-sections need a=ssrc lines")
    return offer


def validate_subscribe_answer(
    text: str, offer: aiortc_hooks.ParsedSdp
) -> aiortc_hooks.ParsedSdp:
    """Parse and check a subscriber's answer against the SFU's outstanding offer."""
    answer = parse(text)
    offered = [(m.kind, m.rtp.muxId) for m in offer.media]
    answered = [(m.kind, m.rtp.muxId) for m in answer.media]
    if offered != answered:
        raise SdpError(f"answer m-sections {answered} do not match the offer {offered}")
    for ours, theirs in zip(offer.media, answer.media, strict=True):
        _check_transport(theirs, answer=True)
        mid = theirs.rtp.muxId
        allowed = ("recvonly", "inactive") if direction(ours) == "sendonly" else ("inactive",)
        if direction(theirs) not in allowed:
            # Anything else would let a subscriber send media to the SFU.
            raise SdpError(f"m-section {mid}: direction must be one of {allowed}")
        if direction(theirs) == "recvonly":
            wanted = ours.rtp.codecs[0]
            if not any(codec_matches(wanted, c) for c in theirs.rtp.codecs):
                raise SdpError(f"m-section {mid}: the subscriber refused {wanted.mimeType}")
    return answer


def negotiated_codec(description: aiortc_hooks.ParsedSdp, mid: str) -> RTCRtpCodecParameters:
    """The codec the SFU's answer lists first for ``mid``: the one the publisher sends."""
    for media in description.media:
        if media.rtp.muxId == mid:
            return media.rtp.codecs[0]
    raise SdpError(f"no m-section {mid} in the answer")


Codec = RTCRtpCodecParameters | RTCRtpCodecCapability


def codec_matches(a: Codec, b: Codec) -> bool:
    """Same codec for forwarding purposes (H.264 also needs the same profile and mode)."""
    if a.mimeType.lower() != b.mimeType.lower() or a.clockRate != b.clockRate:
        return False
    if a.mimeType.lower() == "video/h264":
        keys = ("profile-level-id", "packetization-mode")
        return all(
            str(a.parameters.get(k)).lower() == str(b.parameters.get(k)).lower() for k in keys
        )
    return True


def send_preferences(codec: RTCRtpCodecParameters, kind: str) -> list[RTCRtpCodecCapability]:
    """Codec preferences that make a subscriber transceiver offer exactly ``codec`` (+ RTX)."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if codec_matches(codec, c)]
    if not chosen:
        raise SdpError(f"{codec.mimeType} cannot be sent by this SFU")
    return chosen + [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
