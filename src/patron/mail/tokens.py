"""Compact signed tokens for the addresses and links of outgoing mail.

A token carries a few non-negative integers (workspace, delivery, contact ...)
packed as varints, followed by the first 10 bytes of an HMAC-SHA256 of them,
all in base64url without padding: a bounce address for workspace 3 and
delivery 1,234,567 is 19 characters long. Each kind of token ("verp",
"unsub", "view", "reply") has its own key derived from ``SECRET_KEY``, so a
token made for one use is refused for any other. Tokens do not expire: a
bounce or an unsubscribe may arrive years after the mail was sent.

``unsign`` never raises: anything tampered with, cut short, of another kind or
not a token at all gives ``None``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from django.conf import settings

MAC_BYTES = 10
# 64-bit values at most: ten varint bytes.
_MAX_VARINT_BYTES = 10
_MAX_TOKEN_CHARS = 200

_keys: dict[tuple[str, str], bytes] = {}


def _key(kind: str) -> bytes:
    secret = settings.SECRET_KEY
    key = _keys.get((kind, secret))
    if key is None:
        key = hashlib.sha256(f"patron.mail.tokens.{kind}\x00{secret}".encode()).digest()
        _keys[(kind, secret)] = key
    return key


def _pack(values: tuple[int, ...]) -> bytes:
    out = bytearray()
    for value in values:
        if not isinstance(value, int) or value < 0 or value >= 1 << 64:
            raise ValueError(f"token values are integers from 0 to 2**64-1, got {value!r}")
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _unpack(payload: bytes) -> tuple[int, ...] | None:
    values: list[int] = []
    value = shift = length = 0
    for byte in payload:
        value |= (byte & 0x7F) << shift
        shift += 7
        length += 1
        if length > _MAX_VARINT_BYTES:
            return None
        if byte < 0x80:
            if byte == 0 and length > 1:
                return None  # not the shortest encoding: only one token per values
            values.append(value)
            value = shift = length = 0
    if length:
        return None  # cut in the middle of a value
    return tuple(values)


def sign(kind: str, *values: int) -> str:
    """A URL-safe token for ``values`` that only ``unsign(kind, ...)`` accepts."""
    payload = _pack(values)
    mac = hmac.digest(_key(kind), payload, "sha256")[:MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


def unsign(kind: str, token: str) -> tuple[int, ...] | None:
    """The values ``sign(kind, ...)`` put in ``token``, or None if it is not one."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    if not token.isascii() or "=" in token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) <= MAC_BYTES:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    expected = hmac.digest(_key(kind), payload, "sha256")[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    # base64 accepts a few spellings of the same bytes (unused low bits):
    # only the one sign() writes is the token.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    return _unpack(payload)
