"""The case store's tables, as typed SQLAlchemy 2 declarative models.

``cases`` (one row per case, derived from its events), ``case_events`` (the events
themselves, keyed by their stable ``event_id`` so a replay is a no-op), ``case_reports``
(one row per citizen message that belongs to a case) and ``answered_cases`` (one row per
answered case, derived from the same events) are written together by ``CaseStore.apply``.
``case_replies`` logs every reply sent (or not) to a citizen, keyed by ``reply_id``, and
``callbacks`` holds the phone calls the feedback operators owe citizens. The Alembic
revisions in ``infra/migrations`` create the same tables; keep the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AnsweredCaseRow",
    "Base",
    "CallbackRow",
    "CaseEventRow",
    "CaseReplyRow",
    "CaseReportRow",
    "CaseRow",
    "JsonDocument",
    "UtcTimestamp",
]

#: JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere (SQLite).
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcTimestamp(TypeDecorator[datetime]):
    """A timestamp that is written and read back as an aware UTC datetime on every dialect.

    PostgreSQL's ``timestamptz`` keeps the instant but answers in the session's time zone;
    SQLite keeps no zone at all. Values are converted to UTC on the way in and marked UTC
    on the way out, so callers always get what the schemas promise.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: the case store keeps aware UTC times")
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock text only: store UTC without the (implied) zone.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the case store's tables (constraint names as in the revisions)."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcTimestamp(),
        dict[str, Any]: JsonDocument,
    }


class CaseRow(Base):
    """One case: its current state, recomputed from its events on every change."""

    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(255))
    unit: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(32))
    urgency: Mapped[str | None] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(64))
    responsible: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)  # the monthly report's range
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due: Mapped[datetime | None] = mapped_column(index=True)  # open cases by deadline
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    citizen: Mapped[dict[str, Any]]
    location: Mapped[dict[str, Any] | None]
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)


class CaseEventRow(Base):
    """One recorded event; ``payload`` is the whole ``CaseEvent`` as JSON."""

    __tablename__ = "case_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), ForeignKey("cases.case_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class CaseReportRow(Base):
    """One citizen message attached to a case (the first report, then duplicates)."""

    __tablename__ = "case_reports"

    message_id: Mapped[str] = mapped_column(String(600), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), ForeignKey("cases.case_id"), index=True)
    tracking_number: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    citizen: Mapped[dict[str, Any]]
    subject: Mapped[str | None] = mapped_column(Text)


class AnsweredCaseRow(Base):
    """One answered case: the latest answer and the case facts a report needs, side by side."""

    __tablename__ = "answered_cases"

    case_id: Mapped[str] = mapped_column(String(128), ForeignKey("cases.case_id"), primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]
    due: Mapped[datetime | None]
    answered_at: Mapped[datetime]
    answer_event_id: Mapped[str] = mapped_column(String(64))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[str | None] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    responder: Mapped[str | None] = mapped_column(String(255))
    after_photos: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    reporters: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class CaseReplyRow(Base):
    """One reply to a citizen and how it went; the recipient is kept masked only.

    No foreign key to ``cases``: replies are sent by another agent than the one that
    records the case, so a reply may be logged before its case reaches the store.
    """

    __tablename__ = "case_replies"

    reply_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    recipient_masked: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CallbackRow(Base):
    """A phone call a feedback operator owes a citizen. ``phone`` is personal data, on purpose."""

    __tablename__ = "callbacks"

    callback_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(64))
    citizen_name: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    operator: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
