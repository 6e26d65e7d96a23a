"""The case store: cases, case_events, case_reports.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Self-contained on purpose (no import of ``sinks.store.models``): a revision must keep
creating the schema of its time even after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("urgency", sa.String(16), nullable=True),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("responsible", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _timestamp("received_at"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("due", nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("citizen", JSON_DOCUMENT, nullable=False),
        sa.Column("location", JSON_DOCUMENT, nullable=True),
        sa.Column("attachments", JSON_DOCUMENT, nullable=False),
        sa.UniqueConstraint("tracking_number", name="uq_cases_tracking_number"),
    )
    op.create_table(
        "case_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column(
            "case_id",
            sa.String(128),
            sa.ForeignKey("cases.case_id", name="fk_case_events_case_id"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        _timestamp("at"),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        _timestamp("recorded_at"),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_table(
        "case_reports",
        sa.Column("message_id", sa.String(600), primary_key=True),
        sa.Column(
            "case_id",
            sa.String(128),
            sa.ForeignKey("cases.case_id", name="fk_case_reports_case_id"),
            nullable=False,
        ),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        _timestamp("received_at"),
        sa.Column("citizen", JSON_DOCUMENT, nullable=False),
    )
    op.create_index("ix_case_reports_case_id", "case_reports", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_reports_case_id", table_name="case_reports")
    op.drop_table("case_reports")
    op.drop_index("ix_case_events_case_id", table_name="case_events")
    op.drop_table("case_events")
    op.drop_table("cases")
