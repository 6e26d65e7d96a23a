"""Stage 4: what leaves the pipeline for units, other bodies, the console and the reply senders."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.case import Classification, MessageType, TargetKind, UnitResponse, Urgency
from schemas.common import (
    AttachmentRef,
    Channel,
    Contract,
    DistrictCode,
    GeoPoint,
    UnitCode,
    UtcDateTime,
)

__all__ = [
    "EmergencyItem",
    "ForwardedWorkItem",
    "ReplyRequest",
    "ReviewItem",
    "UnitResponse",
    "UnitWorkItem",
]


class _WorkItemBase(Contract):
    """What a body needs to act on a case, and nothing about who the citizen is."""

    schema_version: Literal[1] = 1
    case_id: str
    tracking_number: str
    type: MessageType
    urgency: Urgency
    district: DistrictCode | None = None
    subject: str | None = None
    problem: str = Field(description="the citizen's text with personal data masked")
    location: GeoPoint | None = None
    photos: tuple[AttachmentRef, ...] = ()
    channel: Channel
    received_at: UtcDateTime
    due: UtcDateTime | None = None


class UnitWorkItem(_WorkItemBase):
    """A case for a municipal unit (``units.<unit>``). Key: ``case_id``."""

    unit: UnitCode


class ForwardedWorkItem(_WorkItemBase):
    """A case forwarded to a district municipality or an outside body. Key: ``case_id``."""

    target_kind: Literal[TargetKind.DISTRICT, TargetKind.EXTERNAL]
    target: str
    reason: str


class ReviewItem(Contract):
    """An item for the social-media team's console (``intake.review``). Key: ``case_id``."""

    schema_version: Literal[1] = 1
    case_id: str
    tracking_number: str
    reason: Literal["public-post", "low-confidence", "manual"]
    channel: Channel
    text_masked: str
    classification: Classification
    received_at: UtcDateTime


class EmergencyItem(Contract):
    """An urgent hand-off (``intake.emergency``). Key: ``case_id``.

    Carries the callback number: an emergency service needs it to act.
    """

    schema_version: Literal[1] = 1
    case_id: str
    tracking_number: str
    handoff: Literal["112", "ALO 183"]
    reason: str
    text: str
    location: GeoPoint | None = None
    callback_phone: str | None = None
    channel: Channel
    received_at: UtcDateTime


class ReplyRequest(Contract):
    """A reply to send to a citizen on a channel (``intake.replies``). Key: ``reply_id``."""

    schema_version: Literal[1] = 1
    reply_id: str
    case_id: str
    channel: Channel
    recipient: str = Field(description="address on that channel: phone, e-mail, handle")
    text: str = Field(min_length=1)
    attachments: tuple[AttachmentRef, ...] = ()
    in_reply_to: str | None = Field(
        default=None, description="provider id of the citizen's message"
    )
    template_id: str | None = None
    tracking_number: str | None = None
    subject: str | None = Field(
        default=None, description="subject of the citizen's message, for an e-mail reply"
    )
    last_inbound_at: UtcDateTime | None = Field(
        default=None,
        description="when the citizen last wrote on this channel (WhatsApp's 24-hour window)",
    )
    kind: Literal["notice", "answer"] = Field(
        default="notice", description="'answer': the unit's answer to the case"
    )
