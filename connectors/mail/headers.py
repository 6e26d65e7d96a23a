"""Header fields of a mail: sender, addresses, ids, date, and the case a reply follows up.

Raw header values (as ``Message.raw_items`` gives them, whatever the parser's policy) are
decoded here with the charset fallback chain, so a header that the modern parser would
choke on is still read. Pure functions.
"""

from __future__ import annotations

import hashlib
import re
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from connectors.mail.charset import clean_text, decode_header_value, from_8bit, unfold
from schemas.ids import is_tracking_number

__all__ = [
    "MAX_ADDRESSES",
    "address",
    "addresses",
    "find_case_reference",
    "first",
    "mail_key",
    "message_ids",
    "parse_date",
    "provider_id",
    "raw_headers",
]

#: Most addresses kept per To/Cc header.
MAX_ADDRESSES = 50
_MSG_ID = re.compile(r"<([^<>\s]{1,500})>")
_CASE_ID = re.compile(r"case-(153-[0-9A-Z]{5}-[0-9A-Z]{6})@", re.IGNORECASE)
_TRACKING = re.compile(r"(?<![0-9A-Z-])153-[0-9A-Z]{5}-[0-9A-Z]{6}(?![0-9A-Z])", re.IGNORECASE)


def raw_headers(msg: Message) -> dict[str, list[str]]:
    """Every header field as received (lower-case name → values in order)."""
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


def first(headers: dict[str, list[str]], name: str) -> str | None:
    """The first value of a header field, if any."""
    values = headers.get(name)
    return values[0] if values else None


def address(raw: str | None) -> dict[str, str | None] | None:
    """``{"name", "address"}`` of a From/Reply-To value; the display name RFC 2047-decoded."""
    if not raw:
        return None
    name, addr = parseaddr(from_8bit(unfold(raw)))
    if not addr and not name:
        return None
    return {"name": decode_header_value(name) or None, "address": clean_text(addr) or None}


def addresses(values: list[str]) -> list[str]:
    """The addresses of To/Cc values (at most ``MAX_ADDRESSES``)."""
    pairs = getaddresses([from_8bit(unfold(v)) for v in values])
    return [clean_text(addr) for _, addr in pairs if addr][:MAX_ADDRESSES]


def message_ids(value: str | None) -> list[str]:
    """The ``<…>`` message ids in a Message-ID/In-Reply-To/References value, brackets off."""
    return _MSG_ID.findall(unfold(value)) if value else []


def provider_id(raw: bytes, message_id: str | None) -> str:
    """The event key: the Message-ID without its angle brackets, or, when it is missing or
    unusable, ``sha256:<hex>`` of the raw bytes (stable, so a re-read is recognised)."""
    ids = message_ids(message_id)
    candidate = ids[0] if ids else (message_id or "").strip()
    if candidate and len(candidate) <= 500 and not re.search(r"[\s\x00-\x1f\x7f]", candidate):
        return clean_text(candidate)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def mail_key(raw: bytes) -> str:
    """The event key of mail bytes, read from the headers alone: also for a mail that cannot
    be parsed, so that its dead-letter record carries the same key a good one would."""
    try:
        value = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Message-ID")
    except Exception:
        value = None
    return provider_id(raw, str(value) if value is not None else None)


def find_case_reference(
    in_reply_to: list[str], references: list[str], subject: str | None, body: str
) -> str | None:
    """The case a citizen's mail follows up: our ``<case-{tracking}@…>`` message ids in
    In-Reply-To/References, else a tracking number with a valid check character in the
    subject, else in the body (quoted parts included: our own reply carries the number)."""
    for message_id in [*in_reply_to, *references]:
        match = _CASE_ID.search(message_id)
        if match and is_tracking_number(match.group(1)):
            return match.group(1).upper()
    for text in (subject or "", body):
        for found in _TRACKING.findall(text):
            if is_tracking_number(found):
                return str(found).upper()
    return None


def parse_date(value: str | None) -> str | None:
    """The Date header as an ISO 8601 string with its offset (None when unreadable)."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(unfold(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return when.isoformat()
