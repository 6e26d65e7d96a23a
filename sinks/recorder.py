"""``intake record``: the case store's writer, a process of its own on ``intake.cases``.

A plain aiokafka loop (no Faust) in its own consumer group (:func:`group_id`): ``getmany``
batches; each record is decoded as a ``CaseEvent`` (bad bytes go to ``intake.deadletter``,
stage ``record``, with the original key, value and headers and the reason); the batch is
written with one ``CaseStore.apply`` in a thread; the offsets are committed only after the
store committed. Delivery is at-least-once and ``apply`` ignores events it already holds,
so a batch delivered again writes nothing.

A batch the store refuses is tried again event by event, and an event that still fails is
dead-lettered with the reason. A store that cannot be reached (``StoreUnavailable``: a lost
connection, a locked SQLite file) is not the events' fault: nothing is dead-lettered and
nothing committed, the same events are tried again with backoff until the store answers or
the process is told to stop. The same holds for the dead-letter topic itself.

It runs apart from the Faust worker so that writing the store (SQL, JSON, the driver) does
not compete with the stream stages for the worker's GIL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from connectors.publisher import KafkaPublisher, Publisher
from connectors.state import OutRecord
from infra.settings import RecorderSettings, Settings
from schemas.case import CaseEvent
from schemas.registry import DEADLETTER_TOPIC
from sinks.store import CaseStore
from streams.deadletter import EventGuard
from streams.errors import is_retriable
from streams.pii import mask_personal_data

__all__ = [
    "CASES_TOPIC",
    "STAGE",
    "BatchConsumer",
    "Recorder",
    "consume",
    "group_id",
    "ready_file",
    "run",
]

log = logging.getLogger(__name__)

CASES_TOPIC = "intake.cases"
#: The stage named in the dead-letter headers (the worker's ``record`` agent used it too).
STAGE = "record"

Batches = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
T = TypeVar("T")


def group_id(settings: Settings) -> str:
    """The recorder's consumer group: the setting, else ``<worker.app_id>-recorder``."""
    return settings.recorder.group_id or f"{settings.worker.app_id}-recorder"


def ready_file(settings: Settings) -> Path:
    """Written each time the recorder is given partitions (pid and count), like the worker's."""
    return (settings.data_dir / "recorder" / "ready.json").resolve()


class BatchConsumer(Protocol):
    """What :func:`consume` needs of a consumer (``AIOKafkaConsumer`` has it)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Batches:
        """Fetched records per partition, at most ``max_records`` in all."""
        ...

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit the next offset to read of each partition."""
        ...


class _Stopped(Exception):
    """Told to stop while waiting for the store or the broker: leave the batch uncommitted."""


class Recorder:
    """Stores batches of ``intake.cases`` records (no Kafka consumer in here: see :func:`run`)."""

    def __init__(
        self,
        store: CaseStore,
        publisher: Publisher,
        settings: RecorderSettings,
        stop: asyncio.Event,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self._stop = stop
        self._guard = EventGuard(self._send_dead_letter, attempts=0, backoff_s=0.0)
        self.stored = 0

    @property
    def dead_lettered(self) -> int:
        """How many records this recorder sent to the dead-letter topic."""
        return self._guard.dead_lettered

    async def settle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> bool:
        """Store or dead-letter every record, in order.

        True when all are settled (their offsets may be committed); False when ``stop`` was
        set while the store or the broker was unreachable (commit nothing of this batch).
        """
        before, stored_before = self.dead_lettered, self.stored
        try:
            await self._settle(records)
        except _Stopped:
            log.info("record: stopped while waiting; %d records left uncommitted", len(records))
            return False
        log.debug(
            "record: batch of %d, %d new events, %d dead-lettered",
            len(records),
            self.stored - stored_before,
            self.dead_lettered - before,
        )
        return True

    async def _settle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        decoded: list[tuple[ConsumerRecord[Any, Any], CaseEvent]] = []
        for record in records:
            try:
                decoded.append((record, CaseEvent.from_bytes(record.value or b"")))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                await self._dead_letter(record, exc, attempts=1)
        if not decoded:
            return
        try:
            self.stored += await self._apply([event for _, event in decoded])
            return
        except _Stopped:
            raise
        except Exception as exc:  # the store refuses something in the batch: find what
            log.warning(
                "record: batch of %d refused (%s); event by event", len(decoded), type(exc).__name__
            )
        for record, event in decoded:
            try:
                self.stored += await self._apply([event])
            except _Stopped:
                raise
            except Exception as exc:
                await self._dead_letter(record, exc, attempts=2)  # in the batch, then alone

    async def _apply(self, events: list[CaseEvent]) -> int:
        return await self._patiently(
            "the case store", lambda: asyncio.to_thread(self.store.apply, events)
        )

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], exc: Exception, attempts: int
    ) -> None:
        await self._patiently(
            "the dead-letter topic", lambda: self._guard.dead_letter(STAGE, record, exc, attempts)
        )

    async def _send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        text_key = key.decode("utf-8", "replace") if key else None
        await self.publisher.publish_many(
            [OutRecord(DEADLETTER_TOPIC, text_key, value or b"", tuple(headers))]
        )

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again and again with backoff while it fails with a retriable error."""
        delay = self.settings.backoff_initial_s
        while True:
            try:
                return await call()
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                log.warning(
                    "record: %s is unreachable (%s: %s); trying again in %.1fs, nothing committed",
                    what,
                    type(exc).__name__,
                    mask_personal_data(str(exc))[:200],
                    delay,
                )
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, self.settings.backoff_max_s)
                continue
            raise _Stopped


async def consume(
    consumer: BatchConsumer, recorder: Recorder, settings: RecorderSettings, stop: asyncio.Event
) -> None:
    """Until ``stop`` is set: fetch a batch, settle it, then (only then) commit its offsets."""
    timeout_ms = int(settings.poll_timeout_s * 1000)
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=settings.max_records)
        records = [record for part in batches.values() for record in part]
        if not records:
            continue
        if not await recorder.settle(records):
            return  # stopped while the store was down: these records come again next time
        offsets = {tp: part[-1].offset + 1 for tp, part in batches.items() if part}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # e.g. a rebalance took the partitions away meanwhile
            log.warning(
                "record: commit of %d records failed (%s); they will be delivered again and "
                "the store ignores repeats",
                len(records),
                type(exc).__name__,
            )


class _Ready(ConsumerRebalanceListener):  # type: ignore[misc]
    """Writes :func:`ready_file` once partitions are assigned."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": os.getpid(), "partitions": len(assigned)}))
        log.info("recorder ready: %d partitions assigned", len(assigned))


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """Migrate the store, then record ``intake.cases`` until ``stop`` is set."""
    r = settings.recorder
    store = CaseStore(settings.database_url, echo=settings.db.echo)
    await asyncio.to_thread(store.migrate)
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    await publisher.start()
    session_ms = int(settings.worker.session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        **settings.kafka.client_options(),  # type: ignore[arg-type]
        group_id=group_id(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=r.max_records,
        fetch_min_bytes=r.fetch_min_bytes,
        fetch_max_wait_ms=int(r.fetch_wait_s * 1000),
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 3),
    )
    ready = ready_file(settings)
    ready.unlink(missing_ok=True)
    consumer.subscribe([CASES_TOPIC], listener=_Ready(ready))
    recorder = Recorder(store, publisher, r, stop)
    log.info("recorder starting: %s → case store (group %s)", CASES_TOPIC, group_id(settings))
    try:
        await consumer.start()
        try:
            await consume(consumer, recorder, r, stop)
        finally:
            await consumer.stop()
    finally:
        ready.unlink(missing_ok=True)
        await publisher.stop()
        store.close()
        log.info(
            "recorder stopped: %d events stored, %d dead-lettered",
            recorder.stored,
            recorder.dead_lettered,
        )
    return 0
