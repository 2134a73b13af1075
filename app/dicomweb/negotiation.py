"""Which encoding a WADO-RS frame request gets: the Accept header against what can be served
(PS3.18 8.7.3, the media types of image frames and their transfer syntaxes).

Only lossless encodings are produced here; a stored encoding (lossy JPEG included) is served
as it lies when the client accepts it, by its syntax or by ``transfer-syntax=*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import ApiError
from app.pacs.syntaxes import (
    EXPLICIT_LE,
    HTJ2K,
    HTJ2K_LOSSLESS,
    HTJ2K_RPCL,
    J2K,
    J2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR,
    NATIVE,
)

OCTET = "application/octet-stream"

# PS3.18 Table 8.7.3-2 (image frame media types), the first syntax of each being the default.
MEDIA_SYNTAXES: dict[str, tuple[str, ...]] = {
    OCTET: (EXPLICIT_LE, "1.2.840.10008.1.2.1.98"),
    "image/jpeg": ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                   "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"),
    "image/jls": (JPEG_LS_LOSSLESS, JPEG_LS_NEAR),
    "image/jp2": (J2K_LOSSLESS, J2K),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/jphc": (HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K),
    "image/jxl": ("1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111",
                  "1.2.840.10008.1.2.4.112"),
    "image/x-dicom-rle": ("1.2.840.10008.1.2.5",),
}
SYNTAX_MEDIA = {ts: media for media, syntaxes in MEDIA_SYNTAXES.items() for ts in syntaxes}

# What the server encodes itself, each syntax with the encoding whose bytes serve it: one
# lossless HTJ2K stream in RPCL order with TLM markers is valid .201, .202 and .203 alike, a
# lossless JPEG-LS stream is a near-lossless one with NEAR=0, and so on.
PRODUCED: dict[str, str] = {
    HTJ2K_LOSSLESS: HTJ2K_RPCL, HTJ2K_RPCL: HTJ2K_RPCL, HTJ2K: HTJ2K_RPCL,
    JPEG_LS_LOSSLESS: JPEG_LS_LOSSLESS, JPEG_LS_NEAR: JPEG_LS_LOSSLESS,
    J2K_LOSSLESS: J2K_LOSSLESS, J2K: J2K_LOSSLESS,
    EXPLICIT_LE: EXPLICIT_LE,
}
# On equal q, what costs the link least: a stored compressed frame (no work either), then
# the encodings by how fast browsers decode them, uncompressed last.
PREFERENCE = (HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K, JPEG_LS_LOSSLESS, JPEG_LS_NEAR, J2K_LOSSLESS,
              J2K, EXPLICIT_LE)
SERVED = ", ".join(f'multipart/related; type="{m}"' for m in
                   (OCTET, "image/jphc", "image/jls", "image/jp2")) + " (transfer-syntax=* " \
    "for the stored encoding)"


@dataclass(frozen=True)
class Choice:
    """One way to answer: ``syntax`` labelled ``media``; ``as_stored`` when the stored
    frames are sent as they lie, else ``encoding`` names the syntax of the bytes to send."""

    media: str
    syntax: str
    as_stored: bool
    encoding: str


@dataclass(frozen=True)
class _Range:
    media: str
    syntax: str  # a UID, or "*"
    q: float


_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


def _split(header: str) -> list[str]:
    """The header's comma-separated entries, commas inside quotes kept."""
    entries: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            entries.append("".join(current))
            current = []
        else:
            current.append(char)
    entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def _ranges(header: str) -> list[_Range]:
    ranges = []
    for entry in _split(header):
        media = entry.split(";", 1)[0].strip().lower()
        params = {k.lower(): v.strip('"') for k, v in _PARAM.findall(entry[len(media):])}
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            raise ApiError(406, f"a q-value is not a number: {entry!r}", field="Accept") from None
        if media in ("multipart/related", "multipart/*", "*/*"):
            kind = params.get("type", OCTET).lower()
        elif media == OCTET:  # a bare octet-stream: answered multipart, as before
            kind = OCTET
        else:
            continue
        if kind not in MEDIA_SYNTAXES:
            continue
        syntax = params.get("transfer-syntax", MEDIA_SYNTAXES[kind][0])
        if syntax != "*" and SYNTAX_MEDIA.get(syntax) != kind:
            continue
        if q > 0:
            ranges.append(_Range(kind, syntax, q))
    return ranges


def candidates(accept: str, stored_syntax: str) -> list[Choice]:
    """The acceptable answers for a frame stored in ``stored_syntax``, best first; 406 when
    the header accepts no frame media type at all. Whether each can be produced for this
    instance (JPEG-LS of float data cannot) is for the caller to find, in this order."""
    ranges = _ranges(accept or "*/*")
    if not ranges:
        raise ApiError(406, f"frames are served as {SERVED}; the Accept header asks for none "
                       "of them", field="Accept")
    stored_compressed = stored_syntax not in NATIVE
    scored: dict[Choice, tuple[float, int]] = {}
    for r in ranges:
        options: list[Choice] = []
        if r.syntax in ("*", stored_syntax) and stored_compressed and (
                r.media == OCTET or SYNTAX_MEDIA.get(stored_syntax) == r.media):
            label = r.media if r.media == OCTET else SYNTAX_MEDIA[stored_syntax]
            options.append(Choice(label, stored_syntax, True, stored_syntax))
        if r.syntax == "*":
            options += [Choice(r.media, ts, False, PRODUCED[ts])
                        for ts in MEDIA_SYNTAXES[r.media] if ts in PRODUCED]
        elif r.syntax in PRODUCED:
            options.append(Choice(r.media, r.syntax, False, PRODUCED[r.syntax]))
        for choice in options:
            rank = -1 if choice.as_stored else PREFERENCE.index(choice.syntax)
            best = scored.get(choice)
            if best is None or (r.q, -rank) > best:
                scored[choice] = (r.q, -rank)
    return sorted(scored, key=lambda c: scored[c], reverse=True)
