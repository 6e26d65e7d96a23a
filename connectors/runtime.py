"""What every channel connector shares: delivery to Kafka (or the outbox), the fetch loop with
cursors and backoff, dead-lettering of bad messages and the silent-channel alarm.

A connector implements only *fetching* (``Connector``); the ``Runner`` owns the cursor, the
retries and the order of the steps, which is what makes a connector lossless:

1. ``fetch(cursor)`` reads a batch from the source, turning each message into a raw event
   (and each message it cannot parse into a dead-letter record with its raw bytes);
2. ``Delivery.deliver`` publishes the batch and waits for Kafka's acknowledgement, or, when
   Kafka is unreachable, stores it durably in the local outbox; only then is the cursor saved;
3. ``confirm(batch)`` tells the source the batch is processed (flag or move the mail, move
   the file). A crash before 3 re-reads the batch: downstream dedups on the provider id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from connectors.errors import AuthenticationFailed, ConnectorError, PublishFailed, PublishTimeout
from connectors.publisher import KafkaPublisher, Publisher
from connectors.state import ConnectorState, OutRecord
from infra.settings import ConnectorSettings, KafkaSettings, Settings
from schemas.common import Channel, utc_now
from schemas.deadletter import error_headers
from schemas.ops import AlarmKind, ChannelAlarm
from schemas.raw import RawEvent
from schemas.registry import ALARMS_TOPIC, DEADLETTER_TOPIC, raw_topic
from streams.pii import mask_personal_data

__all__ = [
    "EXIT_CONFIG",
    "Batch",
    "Connector",
    "Delivery",
    "Runner",
    "alarm_record",
    "dead_record",
    "raw_record",
    "run_connector",
    "silence_alarm",
    "start_publisher",
]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
#: Exit code of a connector whose settings are wrong: credentials refused or missing
#: (sysexits' EX_CONFIG). Restarting cannot help until a person fixes them, unlike a crash
#: (exit 1), which a restart may cure.
EXIT_CONFIG = 78
_JSON = (("content-type", b"application/json"),)


def _is_raw(record: OutRecord) -> bool:
    return record.topic.startswith("intake.raw.")


def raw_record(event: RawEvent) -> OutRecord:
    """The Kafka record of a raw event: ``intake.raw.<channel>``, keyed by the provider id."""
    return OutRecord(raw_topic(event.channel), event.provider_id, event.to_bytes(), _JSON)


def dead_record(
    connector: str,
    key: str | None,
    raw: bytes,
    exc: BaseException,
    at: datetime,
    **source: str | int,
) -> OutRecord:
    """A message the connector could not turn into a raw event: its bytes, kept as received."""
    headers = error_headers(
        stage=f"connector.{connector}",
        exc=exc,
        message=mask_personal_data(str(exc)),
        at=at,
        source={"source.connector": connector, **{f"source.{k}": v for k, v in source.items()}},
    )
    return OutRecord(DEADLETTER_TOPIC, key, raw, tuple(headers))


def alarm_record(alarm: ChannelAlarm) -> OutRecord:
    """The Kafka record of an alarm, keyed by connector."""
    return OutRecord(ALARMS_TOPIC, alarm.connector, alarm.to_bytes(), _JSON)


@dataclass
class Batch:
    """What one ``fetch`` produced."""

    records: list[OutRecord]
    #: The cursor after this batch (None: unchanged).
    cursor: str | None = None
    #: How many citizen messages the batch holds (for the silence alarm).
    messages: int = 0
    #: True when the source has more right away (do not wait before the next fetch).
    more: bool = False
    #: Whatever ``confirm`` needs (UIDs to flag, files to move).
    token: Any = None


class Connector(Protocol):
    """One outside channel. Implementations fetch; the runner does everything else."""

    name: str
    channel: Channel

    async def open(self) -> None:
        """Connect and log in; raise ``AuthenticationFailed`` when credentials are refused."""
        ...

    async def fetch(self, cursor: str | None) -> Batch:
        """The next batch after ``cursor``; an empty batch when nothing is new."""
        ...

    async def confirm(self, batch: Batch) -> None:
        """Tell the source that the batch is durably stored (flag, move, delete a file)."""
        ...

    async def wait(self) -> None:
        """Return when new messages may be there (IMAP IDLE, a poll interval, a new file)."""
        ...

    async def close(self) -> None:
        """Disconnect (safe to call when not open)."""
        ...


class Delivery:
    """Publish to Kafka and wait for the acknowledgement; when Kafka is unreachable, keep the
    records in the connector's durable outbox and publish them, in order, when it is back."""

    def __init__(
        self, name: str, publisher: Publisher, state: ConnectorState, clock: Clock = utc_now
    ) -> None:
        self.name = name
        self.publisher = publisher
        self.state = state
        self.clock = clock

    async def deliver(self, records: Sequence[OutRecord], cursor: str | None = None) -> str:
        """Make ``records`` durable, then save ``cursor``; returns ``"kafka"`` or ``"outbox"``.

        Raw events whose provider id was already published are dropped here, so a batch
        re-read after a crash (or a re-scan) adds nothing to the raw topic.
        """
        records = await self.fresh(records)
        published = [r.key for r in records if r.key is not None and _is_raw(r)]
        if not records:
            if cursor is not None:
                await asyncio.to_thread(self.state.save_cursor, self.name, cursor, self.clock())
            return "kafka"
        if self.state.pending_count() == 0:  # an older backlog must go first, in order
            try:
                await self.publisher.publish_many(records)
            except (PublishFailed, PublishTimeout) as exc:
                log.warning(
                    "%s: Kafka unreachable (%s); keeping records in the outbox", self.name, exc
                )
            else:
                await asyncio.to_thread(
                    self.state.save_cursor, self.name, cursor, self.clock(), published
                )
                return "kafka"
        saved = (self.name, cursor) if cursor is not None else None
        await asyncio.to_thread(self.state.enqueue, records, self.clock(), saved, published)
        return "outbox"

    async def fresh(self, records: Sequence[OutRecord]) -> list[OutRecord]:
        """``records`` without the raw events already published (and without repeats)."""
        keys = [r.key for r in records if r.key is not None and _is_raw(r)]
        seen = await asyncio.to_thread(self.state.already_published, keys) if keys else set()
        out: list[OutRecord] = []
        for record in records:
            if _is_raw(record) and record.key is not None:
                if record.key in seen:
                    continue
                seen.add(record.key)
            out.append(record)
        return out

    async def reconcile(self, kafka: KafkaSettings, topic: str, window: int = 10_000) -> int:
        """Learn the provider ids on the tail of ``topic`` (the last ``window`` records of each
        partition): they were acknowledged even if a crash came before the local save."""
        consumer = AIOKafkaConsumer(
            topic,
            **kafka.client_options(),  # type: ignore[arg-type]
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        keys: list[str] = []
        try:
            # Subscribed, so that start() fetches the topic's metadata (a consumer's bootstrap
            # metadata lists no topics on Kafka 4); then assigned by hand, so that a metadata
            # change cannot reassign the partitions while they are read.
            await consumer.start()
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.unsubscribe()
            consumer.assign(tps)
            if not tps:
                return 0
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            todo = {tp for tp in tps if ends[tp] > begins[tp]}
            for tp in todo:
                consumer.seek(tp, max(begins[tp], ends[tp] - window))
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=1000)
                for tp, messages in batch.items():
                    keys.extend(m.key.decode("utf-8", "replace") for m in messages if m.key)
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        todo.discard(tp)
                for tp in list(todo):
                    if await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)
        except KafkaError as exc:
            raise PublishFailed(f"cannot read {topic} to reconcile: {exc}") from exc
        finally:
            await consumer.stop()
        await asyncio.to_thread(self.state.remember, keys, self.clock())
        return len(keys)

    async def drain(self, batch_size: int = 500) -> int:
        """Publish what waits in the outbox, oldest first; returns how many went out."""
        sent = 0
        while True:
            pending = self.state.pending(batch_size)
            if not pending:
                return sent
            try:
                await self.publisher.publish_many([record for _, record in pending])
            except (PublishFailed, PublishTimeout):
                return sent
            await asyncio.to_thread(self.state.remove, [record_id for record_id, _ in pending])
            sent += len(pending)
            log.info("%s: published %d records from the outbox", self.name, len(pending))

    async def relay(self, interval_s: float, stop: asyncio.Event) -> None:
        """Drain the outbox every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            if self.state.pending_count():
                await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)


def silence_alarm(
    name: str,
    channel: Channel,
    state: ConnectorState,
    threshold: timedelta,
    now: datetime,
    started_at: datetime,
) -> ChannelAlarm | None:
    """An alarm when the channel has been silent longer than ``threshold`` (at most one per
    ``threshold``); ``started_at`` counts as the last message before the first one arrives."""
    health = state.health(name)
    last = max(filter(None, [health.last_message_at, started_at]))
    if now - last < threshold:
        return None
    if health.last_alarm_at is not None and now - health.last_alarm_at < threshold:
        return None
    hours = (now - last).total_seconds() / 3600
    return ChannelAlarm(
        alarm_id=f"{name}:{AlarmKind.SILENT.value}:{now.isoformat()}",
        connector=name,
        channel=channel,
        kind=AlarmKind.SILENT,
        message=f"{name} kanalından {hours:.1f} saattir mesaj gelmedi; bağlantıyı kontrol edin.",
        last_success_at=health.last_success_at,
        last_message_at=health.last_message_at,
        raised_at=now,
    )


@dataclass
class Runner:
    """Runs one connector until stopped: fetch, deliver, save the cursor, confirm, wait."""

    connector: Connector
    delivery: Delivery
    settings: ConnectorSettings
    #: When given, the raw topic's tail is read at start so that a batch acknowledged just
    #: before a crash is not published again.
    kafka: KafkaSettings | None = None
    silence_after: timedelta | None = None
    clock: Clock = utc_now
    _started_at: datetime = field(init=False)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set (0) or the credentials are refused (78)."""
        self._started_at = self.clock()
        if self.kafka is not None:
            topic = raw_topic(self.connector.channel)
            try:
                found = await self.delivery.reconcile(self.kafka, topic)
                log.info(
                    "%s: %d provider ids known from the tail of %s",
                    self.connector.name,
                    found,
                    topic,
                )
            except PublishFailed as exc:
                log.warning(
                    "%s: could not reconcile with Kafka (%s); continuing", self.connector.name, exc
                )
        relay = asyncio.create_task(self.delivery.relay(self.settings.relay_interval_s, stop))
        try:
            return await self._loop(stop)
        finally:
            stop.set()
            await relay
            await self.connector.close()

    async def _loop(self, stop: asyncio.Event) -> int:
        name = self.connector.name
        state = self.delivery.state
        backoff = self.settings.backoff_initial_s
        opened = False
        while not stop.is_set():
            try:
                if not opened:
                    await self.connector.open()
                    opened = True
                batch = await self.connector.fetch(state.cursor(name))
                await self.delivery.deliver(batch.records, batch.cursor)
                await self.connector.confirm(batch)
                now = self.clock()
                state.mark(name, success_at=now, message_at=now if batch.messages else None)
                backoff = self.settings.backoff_initial_s
                await self._watch_silence()
                if not batch.more:
                    await _until(self.connector.wait(), stop)
            except AuthenticationFailed as exc:
                log.error("%s: authentication failed, connector stopped: %s", name, exc)
                await self._raise(AlarmKind.AUTH_FAILED, f"{name}: kimlik doğrulama reddedildi")
                return EXIT_CONFIG
            except (ConnectorError, OSError, TimeoutError) as exc:
                if isinstance(exc, ConnectorError) and not exc.retriable:
                    raise
                log.warning("%s: %s: %s; retrying in %.0fs", name, type(exc).__name__, exc, backoff)
                with contextlib.suppress(Exception):
                    await self.connector.close()
                opened = False
                await _until(asyncio.sleep(backoff), stop)
                backoff = min(backoff * 2, self.settings.backoff_max_s)
        return 0

    async def _watch_silence(self) -> None:
        threshold = self.silence_after or timedelta(seconds=self.settings.silence_alarm_after_s)
        state = self.delivery.state
        now = self.clock()
        alarm = silence_alarm(
            self.connector.name, self.connector.channel, state, threshold, now, self._started_at
        )
        if alarm is not None:
            log.warning("%s", alarm.message)
            await self.delivery.deliver([alarm_record(alarm)])
            state.mark(self.connector.name, alarm_at=now)

    async def _raise(self, kind: AlarmKind, message: str) -> None:
        now = self.clock()
        health = self.delivery.state.health(self.connector.name)
        alarm = ChannelAlarm(
            alarm_id=f"{self.connector.name}:{kind.value}:{now.isoformat()}",
            connector=self.connector.name,
            channel=self.connector.channel,
            kind=kind,
            message=message,
            last_success_at=health.last_success_at,
            last_message_at=health.last_message_at,
            raised_at=now,
        )
        await self.delivery.deliver([alarm_record(alarm)])


async def _until(waiting: Any, stop: asyncio.Event) -> None:
    """Await ``waiting`` unless ``stop`` is set first."""
    task = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def start_publisher(
    publisher: Publisher, settings: ConnectorSettings, stop: asyncio.Event, name: str
) -> bool:
    """Connect the publisher, retrying with backoff until it works (True) or ``stop`` (False)."""
    backoff = settings.backoff_initial_s
    while not stop.is_set():
        try:
            await publisher.start()
            return True
        except (PublishFailed, PublishTimeout) as exc:
            log.warning("%s: %s; retrying in %.0f s", name, exc, backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        backoff = min(backoff * 2, settings.backoff_max_s)
    return False


async def run_connector(connector: Connector, settings: Settings, stop: asyncio.Event) -> int:
    """Run a polling connector with its Kafka publisher and its state file
    (``<state dir>/<name>.sqlite3``) until ``stop``; returns the process exit code."""
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    state = ConnectorState(settings.connector_state_dir / f"{connector.name}.sqlite3")
    delivery = Delivery(connector.name, publisher, state)
    runner = Runner(connector, delivery, settings.connectors, kafka=settings.kafka)
    try:
        if not await start_publisher(publisher, settings.connectors, stop, connector.name):
            return 0
        return await runner.run(stop)
    finally:
        await publisher.stop()
        state.close()
