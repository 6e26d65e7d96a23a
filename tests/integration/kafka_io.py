"""Plain aiokafka producers and consumers for tests: they read the topics as a unit system would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

__all__ = ["produce", "read_until"]


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    headers: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Send records and wait until the broker acknowledged all of them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, headers=list(headers))
            for key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_until(
    bootstrap: str,
    topics: Sequence[str] | None,
    done: Callable[[list[ConsumerRecord[Any, Any]]], bool],
    timeout_s: float,
    pattern: str | None = None,
) -> list[ConsumerRecord[Any, Any]]:
    """Read from the beginning until ``done(records)`` holds; fail after ``timeout_s``."""
    consumer = AIOKafkaConsumer(
        *(topics or ()),
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    if pattern:
        consumer.subscribe(pattern=pattern)
    await consumer.start()
    seen: list[ConsumerRecord[Any, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while not done(seen):
            if loop.time() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s:.0f}s reading {topics or pattern}; "
                    f"{len(seen)} records seen"
                )
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                seen.extend(records)
    finally:
        await consumer.stop()
    return seen
