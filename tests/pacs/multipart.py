"""The parts of a multipart/related body, as DICOMweb answers frames and instances."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import HTTP


def parts(body: bytes, content_type: str) -> list[bytes]:
    msg = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body,
                             policy=HTTP)
    return [p.get_payload(decode=True) for p in msg.iter_parts()]
