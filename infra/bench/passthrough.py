"""The benchmark's baseline: a plain aiokafka consume → produce loop, as lean as Kafka allows.

``python -m infra.bench.passthrough --input T --output U --group G --ready FILE`` copies every
record (key, value, headers) from ``T`` to the same partition of ``U`` in batches
(``getmany`` + ``send_batch``), with the same delivery guarantee as the pipeline: the producer
waits for all in-sync replicas, and offsets are committed only after the copies were
acknowledged, at most every ``worker.commit_interval_s`` (as the Faust worker does). Settings
(broker address, credentials) come from the environment like every ``intake`` process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition

from infra.settings import Settings, load_settings

__all__ = ["copy_records", "main", "run_passthrough"]

_MAX_RECORDS = 2000


class _Ready(ConsumerRebalanceListener):  # type: ignore[misc]
    """Writes the ready file once partitions are assigned (like the worker's ready file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": os.getpid(), "partitions": len(assigned)}))


async def copy_records(
    producer: AIOKafkaProducer,
    output: str,
    batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
) -> int:
    """Send every record to the same partition of ``output``; wait for the acknowledgements."""
    futures = []
    for tp, records in batches.items():
        batch = producer.create_batch()
        for record in records:
            headers = list(record.headers)
            if batch.append(key=record.key, value=record.value, timestamp=None, headers=headers):
                continue
            futures.append(await producer.send_batch(batch, output, partition=tp.partition))
            batch = producer.create_batch()
            batch.append(key=record.key, value=record.value, timestamp=None, headers=headers)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, output, partition=tp.partition))
    await asyncio.gather(*futures)
    return sum(len(records) for records in batches.values())


async def run_passthrough(
    settings: Settings, input_topic: str, output: str, group: str, ready: Path, stop: asyncio.Event
) -> None:
    """Copy until ``stop`` is set, then commit what was copied and leave the group."""
    options: dict[str, Any] = dict(settings.kafka.client_options())
    session_ms = int(settings.worker.session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 3),
        max_poll_records=_MAX_RECORDS,
        **options,
    )
    producer = AIOKafkaProducer(acks="all", linger_ms=0, **options)  # as Faust
    await producer.start()
    try:
        consumer.subscribe([input_topic], listener=_Ready(ready))
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            last_commit = loop.time()
            pending = False
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=_MAX_RECORDS)
                if batches:
                    await copy_records(producer, output, batches)
                    pending = True
                if pending and loop.time() - last_commit >= settings.worker.commit_interval_s:
                    await consumer.commit()
                    last_commit, pending = loop.time(), False
            if pending:
                await consumer.commit()
        finally:
            await consumer.stop()
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m infra.bench.passthrough``."""
    parser = argparse.ArgumentParser(prog="python -m infra.bench.passthrough")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--ready", required=True, type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_passthrough(settings, args.input, args.output, args.group, args.ready, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
