"""Per-event error handling: retry what is retriable, dead-letter the rest, keep the loop alive.

Faust acknowledges an event and restarts the agent when the agent raises, so the event would
be lost; every agent therefore runs its handler through ``EventGuard``. A dead-lettered record
keeps the original key, value and headers, and adds headers (modelled on Kafka Connect's
``__connect.errors.*``) naming where it came from and what went wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from schemas.common import utc_now
from schemas.deadletter import HEADER_PREFIX, error_headers
from streams.errors import is_retriable
from streams.pii import mask_personal_data

__all__ = ["HEADER_PREFIX", "EventGuard", "SourceRecord", "deadletter_headers"]

log = logging.getLogger(__name__)


class SourceRecord(Protocol):
    """What the guard needs of a consumed record (a Faust ``Message`` has these)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


def deadletter_headers(
    record: SourceRecord, stage: str, exc: BaseException, attempts: int, at: datetime
) -> list[tuple[str, bytes]]:
    """The headers that say where a dead-lettered record came from and why it failed."""
    return error_headers(
        stage=stage,
        exc=exc,
        message=mask_personal_data(str(exc)),
        at=at,
        retriable=is_retriable(exc),
        attempts=attempts,
        source={"topic": record.topic, "partition": record.partition, "offset": record.offset},
    )


def _original_headers(record: SourceRecord) -> list[tuple[str, bytes]]:
    headers = record.headers or []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(str(k), bytes(v or b"")) for k, v in items if not str(k).startswith(HEADER_PREFIX)]


SendFn = Callable[[bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[Any]]


class EventGuard:
    """Runs a stage's handler for one event with retries and a dead-letter fallback."""

    def __init__(self, send_deadletter: SendFn, attempts: int, backoff_s: float) -> None:
        self._send = send_deadletter
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.dead_lettered = 0

    async def run(
        self, stage: str, record: SourceRecord, handler: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Run ``handler``; True when it succeeded, False when the record was dead-lettered."""
        failure = await self._attempt(stage, record, handler)
        if failure is None:
            return True
        exc, attempts = failure
        await self.dead_letter(stage, record, exc, attempts)
        return False

    async def run_batch(
        self,
        stage: str,
        records: Sequence[SourceRecord],
        batch_handler: Callable[[], Awaitable[Any]],
        single_handler: Callable[[int], Awaitable[Any]],
    ) -> None:
        """Handle a batch at once; if it fails for good, handle each record alone to isolate it."""
        if not records:
            return
        failure = await self._attempt(stage, records[0], batch_handler)
        if failure is None:
            return
        log.warning(
            "%s: batch of %d failed (%s); record by record",
            stage,
            len(records),
            type(failure[0]).__name__,
        )
        for index, record in enumerate(records):
            await self.run(stage, record, lambda i=index: single_handler(i))  # type: ignore[misc]

    async def _attempt(
        self, stage: str, record: SourceRecord, handler: Callable[[], Awaitable[Any]]
    ) -> tuple[Exception, int] | None:
        """Call ``handler``, retrying retriable errors with backoff; the last error or None."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler()
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not (is_retriable(exc) and attempt <= self.attempts):
                    return exc, attempt
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "%s: retriable %s at %s[%d]@%d, attempt %d, retrying in %.1fs",
                    stage,
                    type(exc).__name__,
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    async def dead_letter(
        self, stage: str, record: SourceRecord, exc: BaseException, attempts: int
    ) -> None:
        """Send the record, untouched, to the dead-letter topic with the error headers."""
        headers = _original_headers(record) + deadletter_headers(
            record, stage, exc, attempts, utc_now()
        )
        await self._send(record.key, record.value, headers)
        self.dead_lettered += 1
        log.error(
            "%s: dead-lettered %s[%d]@%d: %s: %s",
            stage,
            record.topic,
            record.partition,
            record.offset,
            type(exc).__name__,
            mask_personal_data(str(exc))[:300],
        )
