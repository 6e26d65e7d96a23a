"""A connector's durable local state: its cursor, its outbox and its health, in one SQLite file.

One file per connector, so that a cursor and the records it covers can be committed in the
same transaction: when Kafka is unreachable the records go to the outbox together with the
cursor that follows them, and nothing is acknowledged to the outside world before that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["ConnectorState", "Health", "OutRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    queued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    name TEXT PRIMARY KEY,
    last_success_at TEXT,
    last_message_at TEXT,
    last_alarm_at TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    provider_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutRecord:
    """One Kafka record a connector wants published."""

    topic: str
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Health:
    """When the connector last worked, last saw a message, and last raised a silence alarm."""

    last_success_at: datetime | None
    last_message_at: datetime | None
    last_alarm_at: datetime | None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ConnectorState:
    """Cursor, outbox, seen ids and health of one connector (thread-safe, durable)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # the outbox must survive a power cut
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- cursor ------------------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        """The saved cursor, or None before the first acknowledged batch."""
        with self._lock:
            row = self._db.execute("SELECT value FROM cursor WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def save_cursor(
        self, name: str, value: str | None, at: datetime, published: Sequence[str] = ()
    ) -> None:
        """Save the cursor and the provider ids Kafka acknowledged, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert_seen(published, at)
                if value is not None:
                    self._upsert_cursor(name, value, at)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert_seen(self, provider_ids: Sequence[str], at: datetime) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (provider_id, seen_at) VALUES (?, ?)",
            [(pid, at.isoformat()) for pid in provider_ids],
        )

    def _upsert_cursor(self, name: str, value: str, at: datetime) -> None:
        self._db.execute(
            "INSERT INTO cursor (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (name, value, at.isoformat()),
        )

    # -- outbox ------------------------------------------------------------------------

    def enqueue(
        self,
        records: Sequence[OutRecord],
        at: datetime,
        cursor: tuple[str, str] | None = None,
        published: Sequence[str] = (),
    ) -> None:
        """Store records, the cursor after them and their provider ids, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert_seen(published, at)
                self._db.executemany(
                    "INSERT INTO outbox (topic, key, value, headers, queued_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            r.topic,
                            r.key,
                            r.value,
                            json.dumps([(k, v.hex()) for k, v in r.headers]),
                            at.isoformat(),
                        )
                        for r in records
                    ],
                )
                if cursor is not None:
                    self._upsert_cursor(cursor[0], cursor[1], at)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self, limit: int = 500) -> list[tuple[int, OutRecord]]:
        """The oldest records still waiting for Kafka, in the order they came."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [
            (
                row[0],
                OutRecord(
                    row[1],
                    row[2],
                    bytes(row[3]),
                    tuple((k, bytes.fromhex(v)) for k, v in json.loads(row[4])),
                ),
            )
            for row in rows
        ]

    def remove(self, ids: Sequence[int]) -> None:
        """Forget records Kafka has acknowledged."""
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def pending_count(self) -> int:
        """How many records wait in the outbox."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # -- seen provider ids (for push channels whose provider retries) ---------------------

    def first_sight(self, provider_id: str, at: datetime) -> bool:
        """Record ``provider_id``; True the first time it is seen, False on a repeat."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO seen (provider_id, seen_at) VALUES (?, ?)",
                (provider_id, at.isoformat()),
            )
            return cur.rowcount == 1

    def already_published(self, provider_ids: Sequence[str]) -> set[str]:
        """Which of ``provider_ids`` were published (or queued) before."""
        found: set[str] = set()
        ids = list(provider_ids)
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT provider_id FROM seen WHERE provider_id IN ({marks})",
                    chunk,
                ).fetchall()
                found.update(row[0] for row in rows)
        return found

    def remember(self, provider_ids: Sequence[str], at: datetime) -> None:
        """Record provider ids found on the raw topic (start-up reconciliation)."""
        with self._lock:
            self._insert_seen(provider_ids, at)

    def forget_sight(self, provider_id: str) -> None:
        """Undo ``first_sight`` when the message could not be stored after all."""
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE provider_id = ?", (provider_id,))

    # -- health ------------------------------------------------------------------------

    def health(self, name: str) -> Health:
        """The connector's health record."""
        with self._lock:
            row = self._db.execute(
                "SELECT last_success_at, last_message_at, last_alarm_at FROM health WHERE name = ?",
                (name,),
            ).fetchone()
        if not row:
            return Health(None, None, None)
        return Health(_time(row[0]), _time(row[1]), _time(row[2]))

    def mark(
        self,
        name: str,
        *,
        success_at: datetime | None = None,
        message_at: datetime | None = None,
        alarm_at: datetime | None = None,
    ) -> None:
        """Update the health times that are given."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO health (name) VALUES (?)", (name,))
            for column, value in (
                ("last_success_at", success_at),
                ("last_message_at", message_at),
                ("last_alarm_at", alarm_at),
            ):
                if value is not None:
                    self._db.execute(
                        f"UPDATE health SET {column} = ? WHERE name = ?",
                        (value.isoformat(), name),
                    )
