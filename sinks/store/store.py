"""``CaseStore``: the SQL sink of ``intake.cases``, safe to replay.

Delivery is at-least-once, so :meth:`CaseStore.apply` must turn duplicates and reordering
into no-ops: events are keyed by their stable ``event_id`` and the case row is recomputed
from all recorded events of the case (see :func:`sinks.store.records.derive_case`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    exc,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

import infra.migrations
from schemas.case import CaseEvent, CaseEventKind
from schemas.common import utc_now
from sinks.errors import StoreUnavailable, UnknownCase
from sinks.store.models import Base
from sinks.store.records import CaseRecord, derive_case, event_order
from sinks.store.rows import case_values, event_values, record_from_row, report_values

__all__ = ["CaseStore", "migrations_dir"]

logger = logging.getLogger(__name__)

_CASES: Table = Base.metadata.tables["cases"]
_EVENTS: Table = Base.metadata.tables["case_events"]
_REPORTS: Table = Base.metadata.tables["case_reports"]
_REPORT_KINDS = (CaseEventKind.CREATED, CaseEventKind.ATTACHED)
_IN_CHUNK = 500  # ids per IN (...) clause, well under SQLite's bound-parameter limit
_SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "intake_write"  # execution option: this transaction will write
_MIGRATION_LOCK_ID = 153_0001  # PostgreSQL advisory lock serialising concurrent migrations
# SQLite reports schema mistakes as OperationalError too; those are bugs, not outages.
_SQLITE_SCHEMA_ERRORS = ("no such table", "no such column", "has no column", "syntax error")


def migrations_dir() -> Path:
    """The Alembic environment shipped in the ``infra.migrations`` package."""
    return Path(infra.migrations.__file__).resolve().parent


def _sqlite_file(database: str | None) -> Path | None:
    """The file of a SQLite URL's database; ``None`` for in-memory and ``file:`` URIs."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _on_sqlite_begin); WAL lets readers work while a
    # worker writes, and the busy timeout makes writers queue instead of failing at once.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front so its reads and writes are one snapshot and
    # it cannot fail halfway when another writer got there first.
    writes = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _dialect_insert(dialect: str) -> Callable[[Table], Any]:
    if dialect == "sqlite":
        return sqlite.insert
    if dialect == "postgresql":
        return postgresql.insert
    raise ValueError(f"the case store supports SQLite and PostgreSQL, not {dialect!r}")


@contextmanager
def _unavailable_on_connection_errors() -> Iterator[None]:
    """Translate lost or refused connections into the retriable ``StoreUnavailable``."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as err:
        reason = str(err.orig).strip().splitlines()[0][:200] if err.orig else str(err)[:200]
        if reason.startswith(_SQLITE_SCHEMA_ERRORS):
            raise
        raise StoreUnavailable(f"case store unavailable: {reason}") from err
    except (exc.TimeoutError, exc.DisconnectionError) as err:
        raise StoreUnavailable(f"case store unavailable: {err}") from err


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


class CaseStore:
    """Cases, their events and their reports in SQLite (default) or PostgreSQL.

    One object per process; it owns a connection pool. Every method is one transaction.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we depend on
        backend = parsed.get_backend_name()
        self._insert = _dialect_insert(backend)
        if backend == "sqlite" and (path := _sqlite_file(parsed.database)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine = create_engine(parsed, echo=echo, pool_pre_ping=backend != "sqlite")
        if backend == "sqlite":
            event.listen(self._engine, "connect", _on_sqlite_connect)
            event.listen(self._engine, "begin", _on_sqlite_begin)
        self._writer = self._engine.execution_options(**{_WRITE_OPTION: True})

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``); idempotent."""
        config = Config()
        config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
        with _unavailable_on_connection_errors(), self._writer.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = conn
            config.attributes["url"] = self._engine.url
            command.upgrade(config, "head")

    def apply(self, events: Sequence[CaseEvent]) -> int:
        """Record a batch of case events and update their cases; returns how many were new.

        Idempotent: events already recorded are ignored, so a replayed batch returns 0 and
        writes nothing. Events may come in any order. An event for a case that does not
        exist yet is recorded only if the case can be founded from the batch (an event with
        the citizen's message: ``created`` or ``attached``); otherwise ``UnknownCase`` is
        raised and nothing of the batch is written, so the caller can dead-letter just that
        event instead of losing it. Cases are keyed by id on the topic, so their events come
        in order and that only happens on bad input.
        """
        unique = list({event.event_id: event for event in events}.values())
        if not unique:
            return 0
        with _unavailable_on_connection_errors(), self._writer.begin() as conn:
            known = self._existing(conn, _EVENTS.c.event_id, [e.event_id for e in unique])
            fresh: dict[str, list[CaseEvent]] = defaultdict(list)
            for item in unique:
                if item.event_id not in known:
                    fresh[item.case_id].append(item)
            if not fresh:
                return 0
            existing_cases = self._existing(conn, _CASES.c.case_id, list(fresh))
            recorded = self._recorded_events(conn, list(fresh))
            cases, reports, rows = [], [], []
            now = utc_now()
            derived = {
                cid: derive_case([*recorded.get(cid, ()), *new]) for cid, new in fresh.items()
            }
            orphans = [
                cid for cid, rec in derived.items() if rec is None and cid not in existing_cases
            ]
            if orphans:
                raise UnknownCase(orphans)
            for case_id, new in fresh.items():
                record = derived[case_id]
                if record is not None:
                    cases.append(case_values(record))
                for item in new:
                    if item.kind in _REPORT_KINDS and item.message is not None:
                        reports.append(report_values(case_id, item.message))
                    rows.append(event_values(item, recorded_at=now))
            return self._write(conn, cases, reports, rows)

    def get_case(self, case_id: str) -> CaseRecord | None:
        """The case's current state, or ``None`` when the store has no such case."""
        with _unavailable_on_connection_errors(), self._engine.connect() as conn:
            row = conn.execute(select(_CASES).where(_CASES.c.case_id == case_id)).first()
        return record_from_row(row._mapping) if row is not None else None

    def history(self, case_id: str) -> list[CaseEvent]:
        """The case's recorded events, oldest first (ties: life-cycle order of kinds)."""
        with _unavailable_on_connection_errors(), self._engine.connect() as conn:
            return self._recorded_events(conn, [case_id]).get(case_id, [])

    def count_cases(self) -> int:
        """How many cases the store holds."""
        return self._count(_CASES)

    def count_events(self) -> int:
        """How many case events the store has recorded."""
        return self._count(_EVENTS)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _count(self, table: Table) -> int:
        with _unavailable_on_connection_errors(), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def _existing(
        self, conn: Connection, column: ColumnElement[str], values: Sequence[str]
    ) -> set[str]:
        """Which of ``values`` are already in ``column`` (queried in chunks)."""
        found: set[str] = set()
        for chunk in _chunks(values):
            found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    def _recorded_events(
        self, conn: Connection, case_ids: Sequence[str]
    ) -> dict[str, list[CaseEvent]]:
        found: dict[str, list[CaseEvent]] = defaultdict(list)
        for chunk in _chunks(case_ids):
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
        reports: Sequence[dict[str, Any]],
        rows: Sequence[dict[str, Any]],
    ) -> int:
        # Parents first: reports and events reference their case.
        if cases:
            upsert = self._insert(_CASES)
            changed = {c.name: upsert.excluded[c.name] for c in _CASES.c if c.name != "case_id"}
            conn.execute(
                upsert.on_conflict_do_update(index_elements=["case_id"], set_=changed), cases
            )
        if reports:
            conn.execute(self._insert(_REPORTS).on_conflict_do_nothing(), reports)
        if not rows:
            return 0
        insert = self._insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.event_id)
        return len(conn.execute(insert, rows).scalars().all())
