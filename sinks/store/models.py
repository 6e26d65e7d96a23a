"""The case store's tables, as typed SQLAlchemy 2 declarative models.

Three tables: ``cases`` (one row per case, derived from its events), ``case_events`` (the
events themselves, keyed by their stable ``event_id`` so a replay is a no-op) and
``case_reports`` (one row per citizen message that belongs to a case). The Alembic
revisions in ``infra/migrations`` create the same tables; keep the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "CaseEventRow", "CaseReportRow", "CaseRow", "JsonDocument", "UtcTimestamp"]

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
    received_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due: Mapped[datetime | None]
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
