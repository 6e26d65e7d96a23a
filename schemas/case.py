"""Stage 3: the history of a case (``intake.cases``), one event per step."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AnyHttpUrl, Field

from schemas.common import (
    AttachmentRef,
    BodyCode,
    Contract,
    DistrictCode,
    UnitCode,
    UtcDateTime,
)
from schemas.message import CitizenMessage

__all__ = [
    "CaseEvent",
    "CaseEventKind",
    "Classification",
    "MessageType",
    "Responsible",
    "Route",
    "TargetKind",
    "UnitResponse",
    "Urgency",
]


class CaseEventKind(StrEnum):
    """What happened to a case."""

    CREATED = "created"
    ATTACHED = "attached"  # another report of the same problem joined the case
    ROUTED = "routed"
    REROUTED = "rerouted"
    EXTENDED = "extended"
    REMINDED = "reminded"
    ESCALATED = "escalated"
    ANSWERED = "answered"
    REPLIED = "replied"
    REPLY_FAILED = "reply-failed"  # a reply could not be delivered: visible, for a person
    CLOSED = "closed"


class MessageType(StrEnum):
    """The kind of message (Turkish terms: they are the domain's own)."""

    SIKAYET = "sikayet"
    TALEP = "talep"
    ONERI = "oneri"
    IHBAR = "ihbar"
    BILGI_EDINME = "bilgi-edinme"
    TESEKKUR = "tesekkur"


class Urgency(StrEnum):
    """How fast a case must move: ``acil`` goes to 112, ``alo-183`` to the social-services line."""

    NORMAL = "normal"
    ACIL = "acil"
    ALO_183 = "alo-183"


class Responsible(StrEnum):
    """Who is in charge under Law 5216."""

    METROPOLITAN = "buyuksehir"
    DISTRICT = "ilce"
    EXTERNAL = "dis-kurum"


class Classification(Contract):
    """The classifier's verdict on a message."""

    unit: UnitCode
    type: MessageType = MessageType.SIKAYET
    urgency: Urgency = Urgency.NORMAL
    district: DistrictCode | None = None
    responsible: Responsible = Responsible.METROPOLITAN
    external_body: BodyCode | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    method: str = Field(description="what produced it, e.g. 'keyword-rule-v0'")


class TargetKind(StrEnum):
    """The kind of topic a case was sent to."""

    UNIT = "unit"
    DISTRICT = "district"
    EXTERNAL = "external"
    REVIEW = "review"
    EMERGENCY = "emergency"


class Route(Contract):
    """Where a case was sent."""

    kind: TargetKind
    target: str
    topic: str


class UnitResponse(Contract):
    """A unit's answer to a case (``units.responses``). Key: ``case_id``."""

    schema_version: Literal[1] = 1
    case_id: str
    unit: UnitCode
    status: Literal["in-progress", "extended", "resolved", "rejected", "not-ours"] = Field(
        description=(
            "'extended': the unit needs the longer legal period (Law 4982: 30 working days) and "
            "'answer' gives the reason the applicant is told; 'not-ours': the case goes back "
            "to the social-media team's review to be routed again"
        )
    )
    answer: str = Field(min_length=1, max_length=20_000)
    after_photos: tuple[AttachmentRef | AnyHttpUrl, ...] = ()
    responded_at: UtcDateTime
    responder: str | None = Field(default=None, max_length=255)


class CaseEvent(Contract):
    """One step in a case's life. Key on the topic: ``case_id``.

    ``event_id`` is stable (derived from the case and the step), so a replayed event
    overwrites itself in the case store instead of adding a second row.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=8, max_length=64)
    case_id: str
    tracking_number: str
    kind: CaseEventKind
    at: UtcDateTime
    message: CitizenMessage | None = Field(
        default=None, description="the report, on 'created' and 'attached'"
    )
    classification: Classification | None = None
    route: Route | None = None
    due: UtcDateTime | None = None
    note: str | None = None
    response: UnitResponse | None = Field(
        default=None, description="the unit's answer, on 'answered' and 'extended'"
    )
