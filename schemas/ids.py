"""Stable identifiers: the same input always gives the same id, so a replay is recognisable.

A tracking number is what a citizen reads on the phone, so it is short, has no letters that
are confused when read aloud (Crockford base32: no I, L, O, U) and carries a check character.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "case_event_id",
    "is_tracking_number",
    "message_id",
    "tracking_number",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TRACKING_RE = re.compile(
    r"^153-([0-9A-HJKMNP-TV-Z]{5})-([0-9A-HJKMNP-TV-Z]{5})([0-9A-HJKMNP-TV-Z])$"
)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def message_id(channel: str, provider_id: str) -> str:
    """Id of one citizen message: the channel plus the provider's own message id."""
    if not provider_id:
        raise ValueError("provider message id must not be empty")
    return f"{channel}:{provider_id}"


def _check_char(body: str) -> str:
    return _CROCKFORD[sum((i + 1) * _CROCKFORD.index(c) for i, c in enumerate(body)) % 32]


def tracking_number(msg_id: str) -> str:
    """The citizen-facing tracking number of a message, e.g. ``153-7K2MX-9QXD4T``.

    50 bits of SHA-256 of the message id (a collision among a million messages is about
    one in two thousand) and one weighted check character against misreading.
    """
    value = int.from_bytes(_digest("tracking", msg_id)[:7], "big") >> 6  # 50 bits
    body = "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(10)))
    return f"153-{body[:5]}-{body[5:]}{_check_char(body)}"


def is_tracking_number(text: str) -> bool:
    """Whether ``text`` is a well-formed tracking number with a correct check character."""
    match = _TRACKING_RE.match(text.strip().upper())
    if not match:
        return False
    body = match.group(1) + match.group(2)
    return _check_char(body) == match.group(3)


def case_event_id(case_id: str, kind: str, discriminator: str = "") -> str:
    """Stable id of one event in a case's history (so the store can upsert it)."""
    return hashlib.sha256(f"{case_id}\x1f{kind}\x1f{discriminator}".encode()).hexdigest()[:32]
