"""Raw event → ``CitizenMessage``: one shape for every channel (pure functions)."""

from __future__ import annotations

from collections.abc import Callable

from schemas.common import Channel
from schemas.ids import message_id, tracking_number
from schemas.message import CitizenMessage
from schemas.raw import ApiSubmission, RawEvent
from streams.errors import UnsupportedChannel
from streams.text import collapse_whitespace, turkish_casefold

__all__ = ["normalize", "normalize_api"]


def normalize_api(raw: RawEvent) -> CitizenMessage:
    """A message entered by an operator, the field team or the CİMER / information desk."""
    sub = ApiSubmission.model_validate(raw.payload)
    mid = message_id(raw.channel, raw.provider_id)
    text = sub.text.strip()
    return CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel=raw.channel,
        source=sub.source.value,
        received_at=sub.occurred_at or raw.received_at,
        subject=sub.subject,
        text=text,
        text_folded=turkish_casefold(
            collapse_whitespace(" ".join(filter(None, [sub.subject, text])))
        ),
        citizen=sub.citizen,
        location=sub.location,
        attachments=raw.attachments,
        public=False,
        external_ref=sub.external_ref,
    )


_NORMALIZERS: dict[Channel, Callable[[RawEvent], CitizenMessage]] = {
    Channel.API: normalize_api,
}


def normalize(raw: RawEvent) -> CitizenMessage:
    """Normalize a raw event of any channel that has a normalizer."""
    try:
        normalizer = _NORMALIZERS[raw.channel]
    except KeyError:
        raise UnsupportedChannel(f"no normalizer for channel {raw.channel.value!r} yet") from None
    return normalizer(raw)
