"""Stage 1: raw events as received from a channel (``intake.raw.<channel>``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from schemas.common import AttachmentRef, Channel, CitizenContact, Contract, GeoPoint, UtcDateTime

__all__ = ["ApiSource", "ApiSubmission", "RawEvent"]


class RawEvent(Contract):
    """One message exactly as a connector received it, plus references to its attachments.

    ``payload`` is the provider's own shape (a Twilio form, a tweet, a parsed mail, an
    operator record); the normalizer knows each one. Key on the topic: ``provider_id``.
    """

    schema_version: Literal[1] = 1
    channel: Channel
    provider_id: str = Field(min_length=1, max_length=512)
    received_at: UtcDateTime
    payload: dict[str, Any]
    attachments: tuple[AttachmentRef, ...] = ()


class ApiSource(StrEnum):
    """Who entered a message through the intake API."""

    OPERATOR = "alo153"  # call-centre operator typing a call
    FIELD = "saha"  # field team on site
    CIMER = "cimer"  # CİMER application copied in by the desk
    BILGI_EDINME = "bilgi-edinme"  # right-to-information desk
    DESK = "masa"  # walk-in desk


class ApiSubmission(Contract):
    """The ``payload`` of a raw event on ``intake.raw.api`` (``POST /api/v1/intake``)."""

    source: ApiSource
    text: str = Field(min_length=1, max_length=20_000)
    subject: str | None = Field(default=None, max_length=500)
    citizen: CitizenContact = CitizenContact()
    location: GeoPoint | None = None
    external_ref: str | None = Field(
        default=None, max_length=128, description="CİMER application number (opaque) or similar"
    )
    submitted_by: str | None = Field(default=None, max_length=128, description="staff id")
    occurred_at: UtcDateTime | None = None
