"""The case store: every case event recorded once, every case's state derived from them.

SQLite by default, PostgreSQL in production; the schema comes from the Alembic revisions in
``infra/migrations`` (:meth:`CaseStore.migrate`). Besides cases it keeps the answered-case
records, the reply log and the feedback operators' callbacks. No Faust here: agents and
commands call these objects.
"""

from sinks.store.callbacks import Callback, CallbackStatus, UnknownCallback, format_callbacks
from sinks.store.engine import migrations_dir
from sinks.store.records import (
    AnsweredRecord,
    CaseOutcome,
    CaseRecord,
    CaseReport,
    CaseStatus,
    derive_answer,
    derive_case,
    event_order,
)
from sinks.store.replies import ReplyLogEntry, ReplyStatus, mask_recipient
from sinks.store.store import CaseStore

__all__ = [
    "AnsweredRecord",
    "Callback",
    "CallbackStatus",
    "CaseOutcome",
    "CaseRecord",
    "CaseReport",
    "CaseStatus",
    "CaseStore",
    "ReplyLogEntry",
    "ReplyStatus",
    "UnknownCallback",
    "derive_answer",
    "derive_case",
    "event_order",
    "format_callbacks",
    "mask_recipient",
    "migrations_dir",
]
