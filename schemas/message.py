"""Stage 2: a normalized citizen message (``intake.messages``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import AttachmentRef, Channel, CitizenContact, Contract, GeoPoint, UtcDateTime

__all__ = ["CitizenMessage"]


class CitizenMessage(Contract):
    """What a citizen said, on which channel, from where, in one shape for every channel.

    Key on the topic: ``message_id`` (``<channel>:<provider id>``).
    """

    schema_version: Literal[1] = 1
    message_id: str = Field(min_length=3, max_length=600)
    tracking_number: str
    channel: Channel
    source: str | None = Field(default=None, description="sub-channel, e.g. alo153, saha, cimer")
    received_at: UtcDateTime
    subject: str | None = None
    text: str = Field(description="the text as the citizen wrote it")
    text_folded: str = Field(
        description="Turkish-casefolded, whitespace-collapsed text for matching"
    )
    citizen: CitizenContact = CitizenContact()
    location: GeoPoint | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    public: bool = Field(default=False, description="a public post (e.g. a mention on X)")
    external_ref: str | None = None
