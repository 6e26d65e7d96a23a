"""Alo 153 call records (``intake.raw.calls``): what the operator wrote down during a call.

The payload is the operator's record with the column names made canonical (``call_id``,
``caller``, ``start``, ``end``, ``operator``, ``queue``, ``category``, ``notes``, ``address``,
``resolved``; other columns keep their own name), every value the text as read, plus ``cdr``
(the Asterisk CDR fields ``start``, ``answer``, ``end``, ``duration``, ``billsec``,
``disposition``) when the call was found in ``Master.csv``.

``parse_call_time`` and ``parse_flag`` are also what the connector validates with, so a record
the connector publishes is one this normalizer can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.common import CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.normalizers.common import build_message
from streams.text import turkish_casefold

__all__ = ["CALL_CENTRE_TZ", "SOURCE", "normalize", "parse_call_time", "parse_flag"]

#: The call centre's clock: times without an offset (operator exports, Asterisk CDRs) are local.
CALL_CENTRE_TZ = ZoneInfo("Europe/Istanbul")
#: ``CitizenMessage.source`` of every call record.
SOURCE = "alo153"

_TRUE = frozenset({"evet", "e", "true", "t", "1", "yes", "y", "doğru"})
_FALSE = frozenset({"hayır", "hayir", "h", "false", "f", "0", "no", "n", "yanlış", ""})
# Turkish exports write day first; ISO 8601 (with or without an offset) is tried before these.
_LOCAL_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
)


def parse_flag(text: str) -> bool:
    """``evet``/``hayır``, ``true``/``false``, ``1``/``0`` (any case); ``ValueError`` otherwise."""
    folded = turkish_casefold(text.strip())
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError("must be evet/hayır, true/false or 1/0")


def parse_call_time(text: str) -> datetime:
    """A call-centre time as aware UTC; a time without an offset is Europe/Istanbul local time.

    Accepts ISO 8601 (``2026-03-02 09:14:05``, ``2026-03-02T06:14:05Z``) and the Turkish
    day-first forms (``02.03.2026 09:14``, ``02/03/2026 09:14:05``); ``ValueError`` otherwise.
    """
    value = text.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for layout in _LOCAL_FORMATS:
            try:
                parsed = datetime.strptime(value, layout)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError("is not a date and time (expected e.g. 2026-03-02 09:14:05)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CALL_CENTRE_TZ)
    return parsed.astimezone(UTC)


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalize(raw: RawEvent) -> CitizenMessage:
    """A call record as a citizen message: the notes as text, the category as subject, the
    caller's number as contact, the address as location, the call's start as ``received_at``
    and the operator's "resolved on the line" flag."""
    payload = raw.payload
    notes, category = _text(payload, "notes"), _text(payload, "category")
    cdr = payload.get("cdr")
    start = _text(payload, "start") or (_text(cdr, "start") if isinstance(cdr, Mapping) else None)
    caller, address = _text(payload, "caller"), _text(payload, "address")
    resolved = _text(payload, "resolved")
    return build_message(
        raw,
        text=notes or category or "",
        subject=category if notes else None,
        source=SOURCE,
        received_at=parse_call_time(start) if start else raw.received_at,
        citizen=CitizenContact(phone=caller),
        location=GeoPoint(address=address) if address else None,
        resolved_on_line=parse_flag(resolved) if resolved else False,
    )
