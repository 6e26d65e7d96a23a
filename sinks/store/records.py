"""What the case store knows about a case, derived from its events by plain functions.

The rows in ``cases`` and ``answered_cases`` are never edited field by field: they are
recomputed from every recorded event of the case (:func:`derive_case`,
:func:`derive_answer`). The result therefore does not depend on the order or the number of
times the events arrived, which is what makes the store safe to replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.case import CaseEvent, CaseEventKind, MessageType, Responsible, Urgency
from schemas.common import AttachmentRef, Channel, CitizenContact, GeoPoint
from schemas.message import CitizenMessage

__all__ = [
    "AnsweredRecord",
    "CaseOutcome",
    "CaseRecord",
    "CaseReport",
    "CaseStatus",
    "derive_answer",
    "derive_case",
    "event_order",
]


class CaseStatus(StrEnum):
    """Where a case stands; it only moves forward (open → answered → closed)."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


_STATUS_RANK = {CaseStatus.OPEN: 0, CaseStatus.ANSWERED: 1, CaseStatus.CLOSED: 2}
_KIND_STATUS = {
    CaseEventKind.ANSWERED: CaseStatus.ANSWERED,
    # 'replied' changes nothing: notices (forwarded, extended) are replies to open cases.
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


@dataclass(frozen=True, slots=True)
class AnsweredRecord:
    """An answered case as ``answered_cases`` keeps it: the winning answer plus case facts.

    ``answered_at`` is the unit's ``responded_at`` (the event's time for an answer without a
    unit response, e.g. a call resolved on the line). ``on_time`` is ``answered_at <= due``,
    ``None`` when the case has no due date. ``reporters`` counts the citizen messages on the
    case (the first report and every duplicate attached to it). ``updated_at`` is the time of
    the case's latest event, not of the write, so replaying the events rewrites the same row.
    The case facts (unit, due …) are the case's current ones, as in ``cases``.
    """

    case_id: str
    tracking_number: str
    unit: str | None
    channel: Channel
    source: str | None
    type: MessageType | None
    district: str | None
    received_at: datetime
    due: datetime | None
    answered_at: datetime
    answer_event_id: str
    answered_by: str | None
    response_status: str | None
    answer: str | None
    responder: str | None
    after_photos: int
    on_time: bool | None
    reporters: int
    updated_at: datetime


def _answer_order(event: CaseEvent) -> tuple[datetime, datetime, str]:
    answered_at = event.response.responded_at if event.response is not None else event.at
    return (answered_at, event.at, event.event_id)


def derive_answer(record: CaseRecord, events: Iterable[CaseEvent]) -> AnsweredRecord | None:
    """The answered-case record of a case from its derived state and all of its events.

    ``None`` while no ``answered`` event is known. When a unit answers twice (it corrects its
    answer), the latest answer by ``responded_at`` wins; ties fall to the event's time and
    then its id, so the winner does not depend on the arrival order.
    """
    unique = {event.event_id: event for event in events}.values()
    answers = [e for e in unique if e.kind is CaseEventKind.ANSWERED]
    if not answers:
        return None
    latest = max(answers, key=_answer_order)
    answered_at = _answer_order(latest)[0]
    response = latest.response
    reports = {
        e.message.message_id
        for e in unique
        if e.kind in (CaseEventKind.CREATED, CaseEventKind.ATTACHED) and e.message is not None
    }
    return AnsweredRecord(
        case_id=record.case_id,
        tracking_number=record.tracking_number,
        unit=record.unit or (response.unit if response else None),
        channel=record.channel,
        source=record.source,
        type=record.type,
        district=record.district,
        received_at=record.received_at,
        due=record.due,
        answered_at=answered_at,
        answer_event_id=latest.event_id,
        answered_by=response.unit if response else None,
        response_status=response.status if response else None,
        answer=response.answer if response else latest.note,
        responder=response.responder if response else None,
        after_photos=len(response.after_photos) if response else 0,
        on_time=answered_at <= record.due if record.due is not None else None,
        reporters=len(reports),
        updated_at=record.updated_at,
    )


@dataclass(frozen=True, slots=True)
class CaseReport:
    """One citizen message on a case (``case_reports``); ``citizen`` is personal data."""

    message_id: str
    case_id: str
    tracking_number: str
    channel: Channel
    received_at: datetime
    subject: str | None
    citizen: CitizenContact


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """The few facts of a case the monthly report counts (no text, no personal data)."""

    case_id: str
    unit: str | None
    channel: Channel
    type: MessageType | None
    status: CaseStatus
    received_at: datetime
    due: datetime | None
    answered_at: datetime | None
    on_time: bool | None
