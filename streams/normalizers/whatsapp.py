"""WhatsApp messages received through Twilio's webhook (the form as Twilio sent it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from schemas.common import CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.normalizers.common import build_message

__all__ = ["PLACEHOLDERS", "normalize"]

#: The text of a message without words, by what it carried instead.
PLACEHOLDERS = {
    "image": "(fotoğraf)",
    "video": "(video)",
    "audio": "(ses kaydı)",
    "file": "(dosya)",
    "location": "(konum)",
}
_PREFIX = "whatsapp:"
_PHONE_MAX = 32  # CitizenContact.phone


def _text(form: Mapping[str, Any], key: str, limit: int | None = None) -> str | None:
    value = form.get(key)
    if isinstance(value, list):  # a repeated parameter: the first value
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return (text[:limit] if limit else text) or None


def _coordinate(form: Mapping[str, Any], key: str, bound: float) -> float | None:
    try:
        value = float(_text(form, key) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) and -bound <= value <= bound else None


def _phone(form: Mapping[str, Any]) -> str | None:
    wa_id = _text(form, "WaId")
    if wa_id:
        phone = wa_id if wa_id.startswith("+") else f"+{wa_id}"
    else:
        phone = _text(form, "From") or ""
        if phone.lower().startswith(_PREFIX):
            phone = phone[len(_PREFIX) :].strip()
    return phone if 0 < len(phone) <= _PHONE_MAX else None


def _location(form: Mapping[str, Any]) -> GeoPoint | None:
    lat = _coordinate(form, "Latitude", 90)
    lon = _coordinate(form, "Longitude", 180)
    if lat is None or lon is None:
        lat = lon = None
    address = _text(form, "Address", 1000)
    label = _text(form, "Label", 255)
    if lat is None and address is None and label is None:
        return None
    return GeoPoint(lat=lat, lon=lon, address=address, label=label)


def _media_types(raw: RawEvent) -> list[str]:
    kinds = [ref.content_type for ref in raw.attachments]
    try:
        count = int(_text(raw.payload, "NumMedia") or "0")
    except ValueError:
        count = 0
    for index in range(count):  # media that could not be stored still say what was sent
        kinds.append(_text(raw.payload, f"MediaContentType{index}") or "")
    return kinds


def _placeholder(raw: RawEvent, location: GeoPoint | None) -> str:
    kinds = _media_types(raw)
    if kinds:
        major = kinds[0].split("/")[0]
        return PLACEHOLDERS.get(major, PLACEHOLDERS["file"])
    return PLACEHOLDERS["location"] if location is not None else ""


def normalize(raw: RawEvent) -> CitizenMessage:
    """A Twilio WhatsApp form as a citizen message; a message without words gets a placeholder
    saying what it carried (``(fotoğraf)``, ``(konum)`` …)."""
    form = raw.payload
    location = _location(form)
    text = _text(form, "Body") or _placeholder(raw, location)
    citizen = CitizenContact(name=_text(form, "ProfileName", 255), phone=_phone(form))
    return build_message(
        raw,
        text=text,
        source="whatsapp",
        received_at=raw.received_at,
        citizen=citizen,
        location=location,
        attachments=raw.attachments,
    )
