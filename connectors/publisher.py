"""Publishing records to Kafka: the contract, the aiokafka implementation and its in-memory twin.

``publish`` returns only once the broker acknowledged the record (``acks=all``), so a caller
that answers a citizen or saves a cursor after it never claims more than Kafka holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from connectors.errors import ConnectorError, PublishFailed, PublishTimeout
from connectors.state import OutRecord
from infra.settings import KafkaSettings
from schemas.raw import RawEvent
from schemas.registry import raw_topic

__all__ = [
    "JSON_HEADERS",
    "KafkaPublisher",
    "MemoryPublisher",
    "PublishedRecord",
    "Publisher",
    "publish_raw_event",
]

log = logging.getLogger(__name__)

#: Headers of every JSON record the connectors write.
JSON_HEADERS: tuple[tuple[str, bytes], ...] = (("content-type", b"application/json"),)


class Publisher(Protocol):
    """Writes records to topics; ``publish`` returns after the broker acknowledged the record."""

    @property
    def started(self) -> bool:
        """Whether ``start`` has completed and ``stop`` has not been called since."""
        ...

    async def start(self) -> None:
        """Connect; raises ``PublishFailed`` when the broker cannot be reached."""
        ...

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        ...

    async def publish_many(self, records: Sequence[OutRecord]) -> None:
        """Send records and return only after the broker acknowledged every one of them."""
        ...

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Write one record; ``PublishFailed``/``PublishTimeout`` when it was not acknowledged."""
        ...


async def publish_raw_event(publisher: Publisher, event: RawEvent) -> None:
    """Publish a raw event to ``intake.raw.<channel>``, keyed by its provider id."""
    await publisher.publish(
        raw_topic(event.channel), event.provider_id, event.to_bytes(), JSON_HEADERS
    )


class KafkaPublisher:
    """An idempotent aiokafka producer that waits for every in-sync replica (``acks=all``).

    The producer is created in ``start`` because aiokafka binds it to the running event loop.
    """

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = 15.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    def _producer_options(self) -> dict[str, object]:
        options = self._settings.client_options()  # with a TLS context under SSL
        options.update(acks="all", enable_idempotence=True, linger_ms=5)
        return options

    async def start(self) -> None:
        """Connect to the bootstrap servers (idempotent)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**self._producer_options())
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise PublishFailed(
                f"cannot connect to Kafka at {self._settings.bootstrap_servers}: "
                f"{type(exc).__name__}"
            ) from exc
        self._producer = producer
        log.info(
            "kafka publisher started (servers=%s, client_id=%s)",
            self._settings.bootstrap_servers,
            self._settings.client_id,
        )

    async def stop(self) -> None:
        """Flush pending records and disconnect (idempotent)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
            log.info("kafka publisher stopped")

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Send one record and wait for the acknowledgement, at most ``timeout_s``."""
        await self.publish_many([OutRecord(topic, key, value, tuple(headers))])

    async def publish_many(self, records: Sequence[OutRecord]) -> None:
        """Send all records at once (batched by the producer), then wait for every ack."""
        producer = self._producer
        if producer is None:
            raise PublishFailed("publisher is not started")
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [
                    await producer.send(
                        r.topic,
                        value=r.value,
                        key=r.key.encode("utf-8") if r.key is not None else None,
                        headers=list(r.headers),
                    )
                    for r in records
                ]
                await asyncio.gather(*futures)
        except KafkaTimeoutError as exc:
            raise PublishTimeout(f"Kafka did not acknowledge {_what(records)}") from exc
        except KafkaError as exc:
            raise PublishFailed(f"Kafka refused {_what(records)}: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise PublishTimeout(
                f"no acknowledgement for {_what(records)} within {self._timeout_s:g} s"
            ) from exc


def _what(records: Sequence[OutRecord]) -> str:
    """How an error names the records: their count and topics."""
    topics = ", ".join(sorted({r.topic for r in records}))
    return f"{len(records)} record(s) on {topics}"


class PublishedRecord(NamedTuple):
    """One record the in-memory publisher accepted."""

    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class MemoryPublisher:
    """The in-memory twin of ``KafkaPublisher`` for unit tests: keeps what was published.

    Like the real one it refuses to publish before ``start``; ``fail_next`` makes the next
    publishes raise, to exercise the callers' failure paths.
    """

    def __init__(self) -> None:
        self.records: list[PublishedRecord] = []
        self._started = False
        self._failures: list[type[ConnectorError]] = []

    @property
    def started(self) -> bool:
        """Whether ``start`` was called (and ``stop`` not since)."""
        return self._started

    async def start(self) -> None:
        """Mark the publisher started."""
        self._started = True

    async def stop(self) -> None:
        """Mark the publisher stopped."""
        self._started = False

    def fail_next(self, count: int = 1, error: type[ConnectorError] = PublishFailed) -> None:
        """Make the next ``count`` publishes raise ``error`` (``PublishFailed`` by default)."""
        self._failures.extend([error] * count)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Record the message, or raise the next queued failure."""
        if not self._started:
            raise PublishFailed("publisher is not started")
        if self._failures:
            raise self._failures.pop(0)("simulated broker failure")
        self.records.append(PublishedRecord(topic, key, bytes(value), tuple(headers)))

    async def publish_many(self, records: Sequence[OutRecord]) -> None:
        """Record the messages (all or none), or raise the next queued failure."""
        if not self._started:
            raise PublishFailed("publisher is not started")
        if self._failures:
            raise self._failures.pop(0)("simulated broker failure")
        for r in records:
            self.records.append(PublishedRecord(r.topic, r.key or "", bytes(r.value), r.headers))

    def on(self, topic: str) -> list[PublishedRecord]:
        """The records published to one topic, in order."""
        return [record for record in self.records if record.topic == topic]
