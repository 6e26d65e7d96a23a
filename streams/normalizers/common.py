"""What every channel's normalizer shares: ids and the folded text for matching."""

from __future__ import annotations

from typing import Any

from schemas.ids import message_id, tracking_number
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.text import collapse_whitespace, turkish_casefold

__all__ = ["build_message"]


def build_message(
    raw: RawEvent, *, text: str, subject: str | None = None, **fields: Any
) -> CitizenMessage:
    """A ``CitizenMessage`` for ``raw`` with its stable ids and matching text filled in.

    ``fields`` are the other ``CitizenMessage`` fields (citizen, location, public …);
    ``received_at`` and ``attachments`` default to the raw event's own.
    """
    mid = message_id(raw.channel, raw.provider_id)
    text = text.strip()
    fields.setdefault("received_at", raw.received_at)
    fields.setdefault("attachments", raw.attachments)
    return CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel=raw.channel,
        subject=subject,
        text=text,
        text_folded=turkish_casefold(collapse_whitespace(" ".join(filter(None, [subject, text])))),
        **fields,
    )
