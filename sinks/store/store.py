"""``CaseStore``: the SQL sink of ``intake.cases``, safe to replay, and its queries.

Delivery is at-least-once, so :meth:`CaseStore.apply` must turn duplicates and reordering
into no-ops: events are keyed by their stable ``event_id`` and the case row (and, once the
case is answered, its ``answered_cases`` row) is recomputed from all recorded events of the
case (see :func:`sinks.store.records.derive_case` and :func:`~sinks.store.records.derive_answer`).
The reply log and the callbacks live in the same database (:mod:`sinks.store.replies`,
:mod:`sinks.store.callbacks`); connection handling is in :mod:`sinks.store.engine`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from schemas.case import CaseEvent, CaseEventKind
from schemas.common import utc_now
from sinks.errors import UnknownCase
from sinks.store.callbacks import CallbackBook
from sinks.store.engine import chunks
from sinks.store.models import Base
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
from sinks.store.rows import (
    answer_from_row,
    answer_values,
    case_values,
    event_values,
    outcome_from_row,
    record_from_row,
    report_from_row,
    report_values,
)

__all__ = ["CaseStore"]

_CASES: Table = Base.metadata.tables["cases"]
_EVENTS: Table = Base.metadata.tables["case_events"]
_REPORTS: Table = Base.metadata.tables["case_reports"]
_ANSWERS: Table = Base.metadata.tables["answered_cases"]
_REPORT_KINDS = (CaseEventKind.CREATED, CaseEventKind.ATTACHED)


class CaseStore(CallbackBook):
    """Cases, their events, reports and answers, the reply log and the callbacks.

    SQLite (default) or PostgreSQL. One object per process; it owns a connection pool.
    Every method is one transaction; lost connections raise the retriable
    ``StoreUnavailable``.
    """

    def apply(self, events: Sequence[CaseEvent]) -> int:
        """Record a batch of case events and update their cases; returns how many were new.

        Idempotent: events already recorded are ignored, so a replayed batch returns 0 and
        writes nothing. Events may come in any order. An event for a case that does not
        exist yet is recorded only if the case can be founded from the batch (an event with
        the citizen's message: ``created`` or ``attached``); otherwise ``UnknownCase`` is
        raised and nothing of the batch is written, so the caller can dead-letter just that
        event instead of losing it. Cases are keyed by id on the topic, so their events come
        in order and that only happens on bad input. The ``answered_cases`` row of a case
        with an ``answered`` event is rewritten in the same transaction.
        """
        unique = list({event.event_id: event for event in events}.values())
        if not unique:
            return 0
        with self.writing() as conn:
            known = self._existing(conn, _EVENTS.c.event_id, [e.event_id for e in unique])
            fresh: dict[str, list[CaseEvent]] = defaultdict(list)
            for item in unique:
                if item.event_id not in known:
                    fresh[item.case_id].append(item)
            if not fresh:
                return 0
            existing_cases = self._existing(conn, _CASES.c.case_id, list(fresh))
            recorded = self._recorded_events(conn, list(fresh))
            histories = {cid: [*recorded.get(cid, ()), *new] for cid, new in fresh.items()}
            derived = {cid: derive_case(history) for cid, history in histories.items()}
            orphans = [
                cid for cid, rec in derived.items() if rec is None and cid not in existing_cases
            ]
            if orphans:
                raise UnknownCase(orphans)
            cases, answers, reports, rows = [], [], [], []
            now = utc_now()
            for case_id, new in fresh.items():
                record = derived[case_id]
                if record is not None:
                    cases.append(case_values(record))
                    answer = derive_answer(record, histories[case_id])
                    if answer is not None:
                        answers.append(answer_values(answer))
                for item in new:
                    if item.kind in _REPORT_KINDS and item.message is not None:
                        reports.append(report_values(case_id, item.message))
                    rows.append(event_values(item, recorded_at=now))
            return self._write(conn, cases, answers, reports, rows)

    def get_case(self, case_id: str) -> CaseRecord | None:
        """The case's current state, or ``None`` when the store has no such case."""
        with self.reading() as conn:
            row = conn.execute(select(_CASES).where(_CASES.c.case_id == case_id)).first()
        return record_from_row(row._mapping) if row is not None else None

    def get_answer(self, case_id: str) -> AnsweredRecord | None:
        """The case's answered-case record, or ``None`` while it is not answered."""
        with self.reading() as conn:
            row = conn.execute(select(_ANSWERS).where(_ANSWERS.c.case_id == case_id)).first()
        return answer_from_row(row._mapping) if row is not None else None

    def history(self, case_id: str) -> list[CaseEvent]:
        """The case's recorded events, oldest first (ties: life-cycle order of kinds)."""
        with self.reading() as conn:
            return self._recorded_events(conn, [case_id]).get(case_id, [])

    def kinds_recorded(self, case_id: str) -> set[CaseEventKind]:
        """Which kinds of event the case has (a chaser sees its reminders and escalations)."""
        query = select(_EVENTS.c.kind).where(_EVENTS.c.case_id == case_id).distinct()
        with self.reading() as conn:
            return {CaseEventKind(kind) for kind in conn.execute(query).scalars()}

    def event_ids_of(self, case_ids: Iterable[str]) -> dict[str, set[str]]:
        """The recorded event ids of each case (every asked case is a key, maybe empty)."""
        wanted = sorted(set(case_ids))
        found: dict[str, set[str]] = {case_id: set() for case_id in wanted}
        with self.reading() as conn:
            for chunk in chunks(wanted):
                query = select(_EVENTS.c.case_id, _EVENTS.c.event_id).where(
                    _EVENTS.c.case_id.in_(chunk)
                )
                for case_id, event_id in conn.execute(query):
                    found[case_id].add(event_id)
        return found

    def reports_of(self, case_id: str) -> list[CaseReport]:
        """Every citizen message on the case (the first report, then duplicates), oldest first."""
        query = (
            select(_REPORTS)
            .where(_REPORTS.c.case_id == case_id)
            .order_by(_REPORTS.c.received_at, _REPORTS.c.message_id)
        )
        with self.reading() as conn:
            return [report_from_row(row._mapping) for row in conn.execute(query)]

    def open_cases_with_due(self) -> list[CaseRecord]:
        """Open cases that have a due date, the most urgent first (what a chaser looks at)."""
        query = (
            select(_CASES)
            .where(_CASES.c.status == CaseStatus.OPEN.value, _CASES.c.due.is_not(None))
            .order_by(_CASES.c.due, _CASES.c.case_id)
        )
        with self.reading() as conn:
            return [record_from_row(row._mapping) for row in conn.execute(query)]

    def outcomes_received_between(self, start: datetime, end: datetime) -> list[CaseOutcome]:
        """The cases received in ``[start, end)`` with their answers, for the monthly report."""
        query = (
            select(
                _CASES.c.case_id,
                _CASES.c.unit,
                _CASES.c.channel,
                _CASES.c.type,
                _CASES.c.status,
                _CASES.c.received_at,
                _CASES.c.due,
                _ANSWERS.c.answered_at,
                _ANSWERS.c.on_time,
            )
            .select_from(_CASES.outerjoin(_ANSWERS, _ANSWERS.c.case_id == _CASES.c.case_id))
            .where(_CASES.c.received_at >= start, _CASES.c.received_at < end)
            .order_by(_CASES.c.received_at, _CASES.c.case_id)
        )
        with self.reading() as conn:
            return [outcome_from_row(row._mapping) for row in conn.execute(query)]

    def count_cases(self) -> int:
        """How many cases the store holds."""
        return self._count(_CASES)

    def count_events(self) -> int:
        """How many case events the store has recorded."""
        return self._count(_EVENTS)

    def _recorded_events(
        self, conn: Connection, case_ids: Sequence[str]
    ) -> dict[str, list[CaseEvent]]:
        found: dict[str, list[CaseEvent]] = defaultdict(list)
        for chunk in chunks(case_ids):
            query = select(_EVENTS.c.payload).where(_EVENTS.c.case_id.in_(chunk))
            for payload in conn.execute(query).scalars():
                item = CaseEvent.model_validate(payload)
                found[item.case_id].append(item)
        for items in found.values():
            items.sort(key=event_order)
        return found

    def _write(
        self,
        conn: Connection,
        cases: Sequence[dict[str, Any]],
        answers: Sequence[dict[str, Any]],
        reports: Sequence[dict[str, Any]],
        rows: Sequence[dict[str, Any]],
    ) -> int:
        # Parents first: answers, reports and events reference their case.
        for table, values in ((_CASES, cases), (_ANSWERS, answers)):
            if values:
                upsert = self._insert(table)
                changed = {c.name: upsert.excluded[c.name] for c in table.c if c.name != "case_id"}
                conn.execute(
                    upsert.on_conflict_do_update(index_elements=["case_id"], set_=changed), values
                )
        if reports:
            conn.execute(self._insert(_REPORTS).on_conflict_do_nothing(), reports)
        if not rows:
            return 0
        insert = self._insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.event_id)
        return len(conn.execute(insert, rows).scalars().all())
