"""The case store's database plumbing: engine, dialects, migrations, one transaction per call.

:class:`Database` is the base of :class:`sinks.store.CaseStore` and of the parts it is made
of (the reply log, the callbacks). It owns the connection pool and gives each public method
one transaction through :meth:`Database.reading` / :meth:`Database.writing`, both of which
turn lost or refused connections into the retriable ``StoreUnavailable``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

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
from sinks.errors import StoreUnavailable

__all__ = ["Database", "chunks", "migrations_dir"]

_IN_CHUNK = 500  # ids per IN (...) clause, well under SQLite's bound-parameter limit
_SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "intake_write"  # execution option: this transaction will write
_MIGRATION_LOCK_ID = 153_0001  # PostgreSQL advisory lock serialising concurrent migrations
# SQLite reports schema mistakes as OperationalError too; those are bugs, not outages.
_SQLITE_SCHEMA_ERRORS = ("no such table", "no such column", "has no column", "syntax error")


def migrations_dir() -> Path:
    """The Alembic environment shipped in the ``infra.migrations`` package."""
    return Path(infra.migrations.__file__).resolve().parent


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one ``IN (...)`` clause on every dialect."""
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


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
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL, waiting out other processes for up to the busy timeout.

    The switch reads the file, then needs it exclusively; when another process holds the
    write lock meanwhile (``intake worker`` and ``intake record`` both migrate a new store
    at start), SQLite refuses at once instead of calling the busy handler, which would
    deadlock. So: try again, briefly, until the other commits.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


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


class Database:
    """A connection pool on SQLite (default) or PostgreSQL; every public method is one transaction.

    One object per process.
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
        self.migrate_to("head")

    def migrate_to(self, revision: str) -> None:
        """Bring the schema to ``revision`` (e.g. ``"0001"``; tests of a data migration)."""
        config = Config()
        config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
        with self.writing() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = conn
            config.attributes["url"] = self._engine.url
            command.upgrade(config, revision)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction (connection errors become ``StoreUnavailable``)."""
        with _unavailable_on_connection_errors(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction, committed at the end (SQLite: the write lock taken at BEGIN)."""
        with _unavailable_on_connection_errors(), self._writer.begin() as conn:
            yield conn

    def _count(self, table: Table) -> int:
        with self.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def _existing(
        self, conn: Connection, column: ColumnElement[str], values: Sequence[str]
    ) -> set[str]:
        """Which of ``values`` are already in ``column`` (queried in chunks)."""
        found: set[str] = set()
        for chunk in chunks(values):
            found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return found
