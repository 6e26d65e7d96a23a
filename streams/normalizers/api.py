"""Messages entered by an operator, the field team or the CİMER / information desk."""

from __future__ import annotations

from schemas.message import CitizenMessage
from schemas.raw import ApiSubmission, RawEvent
from streams.normalizers.common import build_message

__all__ = ["normalize"]


def normalize(raw: RawEvent) -> CitizenMessage:
    """An ``ApiSubmission`` payload as a citizen message."""
    sub = ApiSubmission.model_validate(raw.payload)
    return build_message(
        raw,
        text=sub.text,
        subject=sub.subject,
        source=sub.source.value,
        received_at=sub.occurred_at or raw.received_at,
        citizen=sub.citizen,
        location=sub.location,
        external_ref=sub.external_ref,
    )
