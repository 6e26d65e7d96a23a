"""What the case store knows about a case, derived from its events by a plain function.

The row in ``cases`` is never edited field by field: it is recomputed from every recorded
event of the case, in a fixed order. The result therefore does not depend on the order or
the number of times the events arrived, which is what makes the store safe to replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.case import CaseEvent, CaseEventKind, MessageType, Responsible, Urgency
from schemas.common import AttachmentRef, Channel, CitizenContact, GeoPoint
from schemas.message import CitizenMessage

__all__ = ["CaseRecord", "CaseStatus", "derive_case", "event_order"]


class CaseStatus(StrEnum):
    """Where a case stands; it only moves forward (open → answered → closed)."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


_STATUS_RANK = {CaseStatus.OPEN: 0, CaseStatus.ANSWERED: 1, CaseStatus.CLOSED: 2}
_KIND_STATUS = {
    CaseEventKind.ANSWERED: CaseStatus.ANSWERED,
    CaseEventKind.REPLIED: CaseStatus.ANSWERED,  # a reply is only sent for an answered case
    CaseEventKind.CLOSED: CaseStatus.CLOSED,
}
_KIND_RANK = {kind: rank for rank, kind in enumerate(CaseEventKind)}


def event_order(event: CaseEvent) -> tuple[datetime, int, str]:
    """Sort key of a case's history: time, then the life-cycle order of kinds, then id."""
    return (event.at, _KIND_RANK[event.kind], event.event_id)


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case as the store keeps it (a plain value, detached from any database session).

    Classification fields are ``None`` until an event carrying a classification arrives.
    ``citizen`` is personal data: it is here so that a reply can be sent later.
    """

    case_id: str
    tracking_number: str
    channel: Channel
    source: str | None
    unit: str | None
    type: MessageType | None
    urgency: Urgency | None
    district: str | None
    responsible: Responsible | None
    status: CaseStatus
    received_at: datetime
    created_at: datetime
    updated_at: datetime
    due: datetime | None
    subject: str | None
    text: str
    citizen: CitizenContact
    location: GeoPoint | None
    attachments: tuple[AttachmentRef, ...]


def _first_report(events: list[CaseEvent]) -> tuple[CaseEvent, CitizenMessage] | None:
    """The event whose message founds the case: the ``created`` one, else the earliest
    ``attached`` one (a stand-in until the ``created`` event is recorded)."""
    for kind in (CaseEventKind.CREATED, CaseEventKind.ATTACHED):
        for event in events:
            if event.kind is kind and event.message is not None:
                return event, event.message
    return None


def derive_case(events: Iterable[CaseEvent]) -> CaseRecord | None:
    """The state of one case from all of its events, in any order, duplicates allowed.

    Rule for incomplete histories: a case exists only once an event carrying the citizen's
    message (``created``, or failing that ``attached``) is known, because the case row needs
    the message's channel, text and contact. Without one the result is ``None``. Otherwise
    the latest classification and due date win (by :func:`event_order`), and the status is
    the furthest one any event reached, so an old replayed event never reopens a case.
    """
    ordered = sorted({event.event_id: event for event in events}.values(), key=event_order)
    if not ordered:
        return None
    case_ids = {event.case_id for event in ordered}
    if len(case_ids) != 1:
        raise ValueError(f"events of several cases given together: {sorted(case_ids)}")
    founding = _first_report(ordered)
    if founding is None:
        return None
    founder, message = founding
    classification = next(
        (e.classification for e in reversed(ordered) if e.classification is not None), None
    )
    due = next((e.due for e in reversed(ordered) if e.due is not None), None)
    status = max(
        (_KIND_STATUS.get(e.kind, CaseStatus.OPEN) for e in ordered), key=_STATUS_RANK.__getitem__
    )
    return CaseRecord(
        case_id=founder.case_id,
        tracking_number=founder.tracking_number,
        channel=message.channel,
        source=message.source,
        unit=classification.unit if classification else None,
        type=classification.type if classification else None,
        urgency=classification.urgency if classification else None,
        district=classification.district if classification else None,
        responsible=classification.responsible if classification else None,
        status=status,
        received_at=message.received_at,
        created_at=ordered[0].at,
        updated_at=ordered[-1].at,
        due=due,
        subject=message.subject,
        text=message.text,
        citizen=message.citizen,
        location=message.location,
        attachments=message.attachments,
    )
