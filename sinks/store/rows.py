"""Conversions between the store's values (``CaseRecord``, ``CaseEvent``) and table rows.

Kept apart from the SQL so both directions sit side by side and stay symmetrical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from schemas.case import CaseEvent, MessageType, Responsible, Urgency
from schemas.common import AttachmentRef, Channel, CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from sinks.store.records import (
    AnsweredRecord,
    CaseOutcome,
    CaseRecord,
    CaseReport,
    CaseStatus,
)

__all__ = [
    "answer_from_row",
    "answer_values",
    "case_values",
    "event_values",
    "outcome_from_row",
    "record_from_row",
    "report_from_row",
    "report_values",
]


def case_values(record: CaseRecord) -> dict[str, Any]:
    """The ``cases`` row of a case record (enums as their codes, contracts as JSON)."""
    return {
        "case_id": record.case_id,
        "tracking_number": record.tracking_number,
        "channel": record.channel.value,
        "source": record.source,
        "unit": record.unit,
        "type": record.type.value if record.type else None,
        "urgency": record.urgency.value if record.urgency else None,
        "district": record.district,
        "responsible": record.responsible.value if record.responsible else None,
        "status": record.status.value,
        "received_at": record.received_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "due": record.due,
        "subject": record.subject,
        "text": record.text,
        "citizen": record.citizen.model_dump(mode="json"),
        "location": record.location.model_dump(mode="json") if record.location else None,
        "attachments": [ref.model_dump(mode="json") for ref in record.attachments],
    }


def record_from_row(row: Mapping[Any, Any]) -> CaseRecord:
    """A case record from a ``cases`` row, the inverse of :func:`case_values`."""
    return CaseRecord(
        case_id=row["case_id"],
        tracking_number=row["tracking_number"],
        channel=Channel(row["channel"]),
        source=row["source"],
        unit=row["unit"],
        type=MessageType(row["type"]) if row["type"] else None,
        urgency=Urgency(row["urgency"]) if row["urgency"] else None,
        district=row["district"],
        responsible=Responsible(row["responsible"]) if row["responsible"] else None,
        status=CaseStatus(row["status"]),
        received_at=row["received_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        due=row["due"],
        subject=row["subject"],
        text=row["text"],
        citizen=CitizenContact.model_validate(row["citizen"]),
        location=GeoPoint.model_validate(row["location"]) if row["location"] else None,
        attachments=tuple(AttachmentRef.model_validate(ref) for ref in row["attachments"]),
    )


def event_values(event: CaseEvent, *, recorded_at: datetime) -> dict[str, Any]:
    """The ``case_events`` row of an event; the payload is the whole event as JSON."""
    return {
        "event_id": event.event_id,
        "case_id": event.case_id,
        "kind": event.kind.value,
        "at": event.at,
        "payload": event.model_dump(mode="json"),
        "recorded_at": recorded_at,
    }


def report_values(case_id: str, message: CitizenMessage) -> dict[str, Any]:
    """The ``case_reports`` row of a citizen message that belongs to a case."""
    return {
        "message_id": message.message_id,
        "case_id": case_id,
        "tracking_number": message.tracking_number,
        "channel": message.channel.value,
        "received_at": message.received_at,
        "citizen": message.citizen.model_dump(mode="json"),
        "subject": message.subject,
    }


def report_from_row(row: Mapping[Any, Any]) -> CaseReport:
    """A citizen report from a ``case_reports`` row, the inverse of :func:`report_values`."""
    return CaseReport(
        message_id=row["message_id"],
        case_id=row["case_id"],
        tracking_number=row["tracking_number"],
        channel=Channel(row["channel"]),
        received_at=row["received_at"],
        subject=row["subject"],
        citizen=CitizenContact.model_validate(row["citizen"]),
    )


def answer_values(answer: AnsweredRecord) -> dict[str, Any]:
    """The ``answered_cases`` row of an answered-case record."""
    values = {field.name: getattr(answer, field.name) for field in fields(AnsweredRecord)}
    values["channel"] = answer.channel.value
    values["type"] = answer.type.value if answer.type else None
    return values


def answer_from_row(row: Mapping[Any, Any]) -> AnsweredRecord:
    """An answered-case record from its row, the inverse of :func:`answer_values`."""
    values = {field.name: row[field.name] for field in fields(AnsweredRecord)}
    values["channel"] = Channel(row["channel"])
    values["type"] = MessageType(row["type"]) if row["type"] else None
    return AnsweredRecord(**values)


def outcome_from_row(row: Mapping[Any, Any]) -> CaseOutcome:
    """A report's view of a case from a ``cases`` row joined with ``answered_cases``."""
    return CaseOutcome(
        case_id=row["case_id"],
        unit=row["unit"],
        channel=Channel(row["channel"]),
        type=MessageType(row["type"]) if row["type"] else None,
        status=CaseStatus(row["status"]),
        received_at=row["received_at"],
        due=row["due"],
        answered_at=row["answered_at"],
        on_time=row["on_time"],
    )
