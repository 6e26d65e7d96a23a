"""The recorder's loop on a real SQLite case store: a scripted ``getmany`` stands in for Kafka.

Everything but the consumer is the code ``intake record`` runs: ``consume`` and ``Recorder``,
the real ``CaseStore``, the dead-letter headers, and the in-memory twin of the publisher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, TopicPartition

from connectors.publisher import MemoryPublisher
from infra.settings import RecorderSettings, Settings
from schemas.deadletter import HEADER_PREFIX
from sinks.recorder import CASES_TOPIC, Recorder, consume, group_id, ready_file
from sinks.store import CaseStore
from tests.sinks.test_store import T0, Case

SETTINGS = RecorderSettings(max_records=50, backoff_initial_s=0.01, backoff_max_s=0.05)
Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


def tp(partition: int) -> TopicPartition:
    return TopicPartition(CASES_TOPIC, partition)


def record(
    value: bytes,
    offset: int,
    partition: int = 0,
    key: bytes = b"153-AB12C-D34E5F",
    headers: Sequence[tuple[str, bytes]] = (("content-type", b"application/json"),),
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        topic=CASES_TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=list(headers),
    )


class ScriptedConsumer:
    """Hands out the scripted batches, then sets ``stop``; notes each commit and how many
    events the store held at that moment."""

    def __init__(self, batches: list[Batch], stop: asyncio.Event, store: CaseStore) -> None:
        self.batches = list(batches)
        self.stop = stop
        self.store = store
        self.asked: list[int | None] = []
        self.commits: list[tuple[dict[TopicPartition, int], int]] = []
        self.refuse_commits = 0

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Batch:
        self.asked.append(max_records)
        if not self.batches:
            self.stop.set()
            return {}
        return self.batches.pop(0)

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self.refuse_commits:
            self.refuse_commits -= 1
            raise CommitFailedError("the group rebalanced")
        assert offsets is not None
        self.commits.append((dict(offsets), self.store.count_events()))


async def _run(
    store: CaseStore, batches: list[Batch], publisher: MemoryPublisher | None = None
) -> tuple[ScriptedConsumer, MemoryPublisher]:
    publisher = publisher or MemoryPublisher()
    await publisher.start()
    stop = asyncio.Event()
    consumer = ScriptedConsumer(batches, stop, store)
    recorder = Recorder(store, publisher, SETTINGS, stop)
    await asyncio.wait_for(consume(consumer, recorder, SETTINGS, stop), 30)
    return consumer, publisher


def _errors(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {k[len(HEADER_PREFIX) :]: v.decode() for k, v in headers if k.startswith(HEADER_PREFIX)}


async def test_a_batch_is_stored_and_committed_after_the_store(store: CaseStore) -> None:
    first, second = Case("wamid.first"), Case("wamid.second")
    later = T0 + timedelta(minutes=2)
    batch = {
        tp(0): [record(first.created().to_bytes(), 7), record(first.routed(later).to_bytes(), 8)],
        tp(2): [record(second.created().to_bytes(), 3), record(second.routed(later).to_bytes(), 4)],
    }

    consumer, publisher = await _run(store, [batch])

    assert (store.count_cases(), store.count_events()) == (2, 4)
    assert [e.kind.value for e in store.history(first.case_id)] == ["created", "routed"]
    # One commit, past the last record of each partition, made when all 4 events were stored.
    assert consumer.commits == [({tp(0): 9, tp(2): 5}, 4)]
    assert consumer.asked[0] == SETTINGS.max_records
    assert publisher.records == []


async def test_a_batch_delivered_again_writes_nothing_new(store: CaseStore) -> None:
    case = Case()
    events = [case.created(), case.routed(T0 + timedelta(minutes=1))]
    again = {tp(1): [record(e.to_bytes(), 20 + i, 1) for i, e in enumerate(events)]}
    first = {tp(1): [record(e.to_bytes(), 10 + i, 1) for i, e in enumerate(events)]}

    consumer, publisher = await _run(store, [first, again])

    assert (store.count_cases(), store.count_events()) == (1, 2)
    assert [offsets for offsets, _ in consumer.commits] == [{tp(1): 12}, {tp(1): 22}]
    assert publisher.records == []


async def test_bad_bytes_are_dead_lettered_with_the_reason_and_the_rest_is_stored(
    store: CaseStore,
) -> None:
    case = Case()
    garbage = b'{"event_id": "x", "kind": "created", \xff'
    batch = {
        tp(1): [
            record(case.created().to_bytes(), 40, 1),
            record(garbage, 41, 1, key=b"bozuk-1", headers=[("trace-id", b"t-153")]),
            record(case.routed(T0 + timedelta(minutes=1)).to_bytes(), 42, 1),
        ]
    }

    consumer, publisher = await _run(store, [batch])

    assert store.count_events() == 2
    (dead,) = publisher.on("intake.deadletter")
    assert dead.value == garbage and dead.key == "bozuk-1"
    assert ("trace-id", b"t-153") in dead.headers  # the original headers travel with it
    errors = _errors(dead.headers)
    assert errors["stage"] == "record"
    assert (errors["topic"], errors["partition"], errors["offset"]) == (CASES_TOPIC, "1", "41")
    assert errors["exception.class"].endswith("ValidationError")
    assert errors["retriable"] == "false" and errors["attempts"] == "1"
    assert consumer.commits == [({tp(1): 43}, 2)]


async def test_a_refused_batch_is_retried_event_by_event(store: CaseStore) -> None:
    known, orphan = Case("wamid.known"), Case("wamid.orphan")
    orphan_routed = orphan.routed(T0 + timedelta(minutes=3))  # its 'created' never came
    batch = {
        tp(0): [
            record(known.created().to_bytes(), 0),
            record(orphan_routed.to_bytes(), 1, key=orphan.case_id.encode()),
            record(known.routed(T0 + timedelta(minutes=1)).to_bytes(), 2),
        ]
    }

    consumer, publisher = await _run(store, [batch])

    # The store refuses the whole batch (UnknownCase writes nothing); alone, the known
    # case's events are stored and only the orphan is dead-lettered.
    assert [e.kind.value for e in store.history(known.case_id)] == ["created", "routed"]
    assert store.get_case(orphan.case_id) is None
    (dead,) = publisher.on("intake.deadletter")
    assert dead.value == orphan_routed.to_bytes() and dead.key == orphan.case_id
    errors = _errors(dead.headers)
    assert errors["exception.class"] == "sinks.errors.UnknownCase"
    assert orphan.case_id in errors["exception.message"]
    assert (errors["offset"], errors["attempts"], errors["stage"]) == ("1", "2", "record")
    assert consumer.commits == [({tp(0): 3}, 2)]


async def _until_logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    async with asyncio.timeout(10):
        while text not in caplog.text:
            await asyncio.sleep(0.01)


@pytest.fixture
def movable(tmp_path: Path) -> tuple[CaseStore, Path]:
    """A migrated store whose directory a test can take away (the database goes down)."""
    directory = tmp_path / "db"
    store = CaseStore(f"sqlite:///{directory}/cases.sqlite3")
    store.migrate()
    store.close()  # no pooled connection: the next call must open the file again
    return store, directory


async def test_an_unreachable_store_is_waited_for_not_dead_lettered(
    movable: tuple[CaseStore, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, directory = movable
    case = Case()
    batch = {tp(0): [record(case.created().to_bytes(), 5)]}
    directory.rename(tmp_path / "away")  # SQLite: "unable to open database file"
    caplog.set_level(logging.WARNING, logger="sinks.recorder")
    publisher = MemoryPublisher()
    await publisher.start()
    stop = asyncio.Event()
    consumer = ScriptedConsumer([batch], stop, store)
    task = asyncio.create_task(
        consume(consumer, Recorder(store, publisher, SETTINGS, stop), SETTINGS, stop)
    )
    try:
        await _until_logged(caplog, "the case store is unreachable (StoreUnavailable")
        await asyncio.sleep(0.1)  # a few more attempts while it is down
        assert consumer.commits == [] and publisher.records == []
        (tmp_path / "away").rename(directory)
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        store.close()
    assert store.count_events() == 1
    assert consumer.commits == [({tp(0): 6}, 1)]
    assert publisher.records == []  # an outage is not the event's fault


async def test_stopping_during_an_outage_commits_nothing(
    movable: tuple[CaseStore, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, directory = movable
    batch = {tp(0): [record(Case().created().to_bytes(), 5)]}
    directory.rename(tmp_path / "away")
    caplog.set_level(logging.WARNING, logger="sinks.recorder")
    publisher = MemoryPublisher()
    await publisher.start()
    stop = asyncio.Event()
    consumer = ScriptedConsumer([batch, batch], stop, store)
    task = asyncio.create_task(
        consume(consumer, Recorder(store, publisher, SETTINGS, stop), SETTINGS, stop)
    )
    await _until_logged(caplog, "unreachable")
    stop.set()  # SIGTERM while the database is down
    await asyncio.wait_for(task, 5)
    assert consumer.commits == [] and publisher.records == []
    assert len(consumer.batches) == 1  # it did not fetch on after stopping
    (tmp_path / "away").rename(directory)
    assert store.count_events() == 0


async def test_a_broker_outage_while_dead_lettering_is_waited_for(store: CaseStore) -> None:
    publisher = MemoryPublisher()
    await publisher.start()
    publisher.fail_next(2)  # the dead-letter topic is unreachable twice
    batch = {tp(0): [record(b"not json", 0), record(Case().created().to_bytes(), 1)]}

    consumer, publisher = await _run(store, [batch], publisher)

    (dead,) = publisher.on("intake.deadletter")
    assert dead.value == b"not json"
    assert consumer.commits == [({tp(0): 2}, 1)]


async def test_a_failed_commit_does_not_stop_the_loop(store: CaseStore) -> None:
    first, second = Case("wamid.a"), Case("wamid.b")
    batches = [
        {tp(0): [record(first.created().to_bytes(), 0)]},
        {tp(0): [record(second.created().to_bytes(), 1)]},
    ]
    publisher = MemoryPublisher()
    await publisher.start()
    stop = asyncio.Event()
    consumer = ScriptedConsumer(batches, stop, store)
    consumer.refuse_commits = 1
    await asyncio.wait_for(
        consume(consumer, Recorder(store, publisher, SETTINGS, stop), SETTINGS, stop), 10
    )
    assert store.count_cases() == 2
    assert consumer.commits == [({tp(0): 2}, 2)]


def test_group_and_ready_file_follow_the_settings(tmp_path: Path) -> None:
    plain = Settings(_env_file=None, data_dir=tmp_path)
    assert group_id(plain) == "alo153-intake-recorder"  # beside outbound's "<app id>-replies"
    named = Settings(_env_file=None, worker={"app_id": "adana"}, recorder={"group_id": "kayit"})
    assert group_id(named) == "kayit"
    assert group_id(Settings(_env_file=None, worker={"app_id": "adana"})) == "adana-recorder"
    assert ready_file(plain) == tmp_path.resolve() / "recorder" / "ready.json"
