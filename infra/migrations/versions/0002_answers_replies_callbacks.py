"""Answered-case records, the reply log, callbacks; report subject and lookup indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-01

Adds ``answered_cases``, ``case_replies`` and ``callbacks``, the ``subject`` of each report
in ``case_reports`` (filled for existing rows from the recorded events), and indexes on
``cases.received_at`` (the monthly report) and ``cases.due`` (open cases by deadline).
Self-contained like 0001: no import of ``sinks.store.models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BACKFILL_BATCH = 1000


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _backfill_report_subjects() -> None:
    """Copy each report's subject from the payload of the event that carried its message."""
    events = sa.table(
        "case_events", sa.column("kind", sa.String), sa.column("payload", JSON_DOCUMENT)
    )
    reports = sa.table(
        "case_reports", sa.column("message_id", sa.String), sa.column("subject", sa.Text)
    )
    bind = op.get_bind()
    query = sa.select(events.c.payload).where(events.c.kind.in_(("created", "attached")))
    update = (
        reports.update()
        .where(reports.c.message_id == sa.bindparam("m_id"))
        .values(subject=sa.bindparam("m_subject"))
    )
    batch: list[dict[str, Any]] = []
    for payload in bind.execute(query).scalars():
        message = payload.get("message") or {}
        if message.get("subject"):
            batch.append({"m_id": message["message_id"], "m_subject": message["subject"]})
        if len(batch) >= _BACKFILL_BATCH:
            bind.execute(update, batch)
            batch = []
    if batch:
        bind.execute(update, batch)


def upgrade() -> None:
    op.add_column("case_reports", sa.Column("subject", sa.Text(), nullable=True))
    _backfill_report_subjects()
    op.create_index("ix_cases_received_at", "cases", ["received_at"])
    op.create_index("ix_cases_due", "cases", ["due"])
    op.create_table(
        "answered_cases",
        sa.Column(
            "case_id",
            sa.String(128),
            sa.ForeignKey("cases.case_id", name="fk_answered_cases_case_id"),
            primary_key=True,
        ),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("district", sa.String(64), nullable=True),
        _timestamp("received_at"),
        _timestamp("due", nullable=True),
        _timestamp("answered_at"),
        sa.Column("answer_event_id", sa.String(64), nullable=False),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("response_status", sa.String(16), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("responder", sa.String(255), nullable=True),
        sa.Column("after_photos", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("reporters", sa.Integer(), nullable=False),
        _timestamp("updated_at"),
    )
    op.create_table(
        "case_replies",
        sa.Column("reply_id", sa.String(128), primary_key=True),
        sa.Column("case_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("recipient_masked", sa.String(320), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    op.create_index("ix_case_replies_case_id", "case_replies", ["case_id"])
    op.create_table(
        "callbacks",
        sa.Column("callback_id", sa.String(128), primary_key=True),
        sa.Column("case_id", sa.String(128), nullable=False),
        sa.Column("tracking_number", sa.String(64), nullable=True),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("citizen_name", sa.String(255), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _timestamp("created_at"),
        _timestamp("done_at", nullable=True),
        sa.Column("operator", sa.String(255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_callbacks_case_id", "callbacks", ["case_id"])
    op.create_index("ix_callbacks_status", "callbacks", ["status"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_status", table_name="callbacks")
    op.drop_index("ix_callbacks_case_id", table_name="callbacks")
    op.drop_table("callbacks")
    op.drop_index("ix_case_replies_case_id", table_name="case_replies")
    op.drop_table("case_replies")
    op.drop_table("answered_cases")
    op.drop_index("ix_cases_due", table_name="cases")
    op.drop_index("ix_cases_received_at", table_name="cases")
    with op.batch_alter_table("case_reports") as batch:  # SQLite: copy-and-move
        batch.drop_column("subject")
