"""The faust tuning: a fetched batch is delivered under one ``wait_first`` with faust's guarantees
kept (the fetch and the commits are never cancelled by a rebalance, a rebalance abandons the rest
of the batch), held-back partitions are polled again soon, and the cheaper partitioner, producer
lookup and raw send behave exactly as faust's own."""

from __future__ import annotations

import asyncio
import gc
import os
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from faust.topics import Topic
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from mode import Service
from mode.utils.locks import Event

from infra.settings import Settings
from streams import faust_tuning
from streams.app import create_app
from streams.faust_tuning import murmur2, murmur2_partition, send_raw, tune_faust, tune_gc

TP0 = TP("intake.raw.api", 0)
TP1 = TP("intake.raw.api", 1)

Item = tuple[TP, Any]


def _message(tp: TP, offset: int) -> Any:
    return SimpleNamespace(topic=tp.topic, offset=offset, key=b"k", value=b"v")


async def _batch(
    items: list[Item],
    fetch: Callable[[], Awaitable[None]] | None = None,
    flow_active: Callable[[], bool] = lambda: True,
) -> Any:
    """What faust's ``getmany`` is: the fetch on the first step, then the messages as long as
    the flow is active (``Consumer.stop_flow`` suspends it when a rebalance begins)."""
    if fetch is not None:
        await fetch()
    for item in items:
        if not flow_active():
            break
        yield item


class FakeConsumer(Service):
    """What ``_drain_messages`` and ``_deliver_batch`` use of faust's Consumer; the rest of a real
    Service (``wait_first``, ``sleep``, stop and crash events) is mode's own."""

    consumer_stopped_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, commit_every: int | None = None) -> None:
        super().__init__()
        self.delivered: list[int] = []
        self.gaps: list[tuple[TP, int, int]] = []
        self.commits: list[list[int]] = []
        self.blocked_at: int | None = None  # the callback waits here (a full stream buffer)
        self.commit_gate: asyncio.Event | None = None  # the commit waits for this
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._commit_every = commit_every
        self._n_acked = 0
        self._buffered_partitions: set[TP] = set()
        self.suspend_flow = Event()
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
        self.transport = SimpleNamespace(app=SimpleNamespace(should_stop=False))

    async def callback(self, message: Any) -> None:
        if message.offset == self.blocked_at:
            await asyncio.Event().wait()
        self.delivered.append(message.offset)
        self._n_acked += 1

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))

    async def commit(self) -> None:
        if self.commit_gate is not None:
            await self.commit_gate.wait()
        self.commits.append(list(self.delivered))


async def _deliver(consumer: FakeConsumer, batch: AsyncIterator[Item]) -> None:
    await faust_tuning._deliver_batch(consumer, batch)  # type: ignore[arg-type]


async def test_a_batch_is_delivered_in_order_under_one_wait_first() -> None:
    consumer = FakeConsumer()
    waits = 0
    wait_first = consumer.wait_first

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal waits
        waits += 1
        return await wait_first(*args, **kwargs)

    consumer.wait_first = counting  # type: ignore[method-assign]
    items = [(TP0, _message(TP0, o)) for o in range(5)] + [(TP1, _message(TP1, 9))]
    await _deliver(consumer, _batch(items))
    assert consumer.delivered == [0, 1, 2, 3, 4, 9]
    assert consumer._read_offset[TP0] == 4 and consumer._read_offset[TP1] == 9
    assert waits == 1  # faust: one per message, each starting four tasks


async def test_gaps_are_recorded_and_messages_already_read_are_dropped() -> None:
    consumer = FakeConsumer()
    consumer._read_offset[TP0] = 3
    items = [(TP0, _message(TP0, o)) for o in (2, 4, 8)]
    await _deliver(consumer, _batch(items))
    assert consumer.delivered == [4, 8]  # offset 2 was read before
    assert consumer.gaps == [(TP0, 5, 8)]


async def test_a_rebalance_abandons_the_rest_of_the_batch() -> None:
    consumer = FakeConsumer()
    consumer.blocked_at = 2
    items = [(TP0, _message(TP0, o)) for o in range(5)]
    delivery = asyncio.ensure_future(_deliver(consumer, _batch(items)))
    for _ in range(5):
        await asyncio.sleep(0)
    consumer.suspend_flow.set()  # the rebalance begins while offset 2 waits for the buffer
    await asyncio.wait_for(delivery, 1.0)
    assert consumer.delivered == [0, 1]
    assert consumer._read_offset[TP0] == 1  # 2 was never delivered: not marked read


async def test_a_rebalance_during_the_fetch_does_not_cancel_it() -> None:
    # aiokafka moves its position when it hands records over: a fetch cancelled then would
    # drop them, and a partition without a committed offset would never see them again.
    consumer = FakeConsumer()
    gate = asyncio.Event()
    fetched = False

    async def fetch() -> None:
        nonlocal fetched
        await gate.wait()
        fetched = True

    delivery = asyncio.ensure_future(_deliver(consumer, _batch([], fetch)))
    await asyncio.sleep(0)
    consumer.suspend_flow.set()
    for _ in range(5):  # time enough for a wait_first to cancel what it watches
        await asyncio.sleep(0)
    assert not delivery.done()
    gate.set()
    await asyncio.wait_for(delivery, 1.0)
    assert fetched


async def test_a_due_commit_runs_before_the_message_and_is_not_cancelled_by_a_rebalance() -> None:
    consumer = FakeConsumer(commit_every=3)
    consumer.commit_gate = asyncio.Event()
    items = [(TP0, _message(TP0, o)) for o in range(5)]
    batch = _batch(items, flow_active=lambda: not consumer.suspend_flow.is_set())
    delivery = asyncio.ensure_future(_deliver(consumer, batch))
    for _ in range(5):
        await asyncio.sleep(0)
    assert consumer.delivered == [0, 1, 2]  # the commit is due before offset 3
    consumer.suspend_flow.set()
    for _ in range(5):  # time enough for a wait_first to cancel what it watches
        await asyncio.sleep(0)
    consumer.commit_gate.set()
    await asyncio.wait_for(delivery, 1.0)
    assert consumer.commits == [[0, 1, 2]]  # finished despite the rebalance
    # At most the message at hand goes on (faust's own race: its wait_first starts the
    # delivery too); the rest of the batch is abandoned.
    assert consumer.delivered[:3] == [0, 1, 2] and 4 not in consumer.delivered


async def test_commits_come_every_commit_every_acknowledgements() -> None:
    consumer = FakeConsumer(commit_every=2)
    items = [(TP0, _message(TP0, o)) for o in range(5)]
    await _deliver(consumer, _batch(items))
    assert consumer.commits == [[0, 1], [0, 1, 2, 3]]
    assert consumer.delivered == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("held_back", "timeout"), [(set(), 1.0), ({TP1}, 0.05)])
async def test_the_poll_is_short_while_partitions_are_held_back(
    held_back: set[TP], timeout: float
) -> None:
    consumer = FakeConsumer()
    consumer._buffered_partitions = held_back
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    timeouts: list[float] = []

    def getmany(timeout: float) -> Any:
        timeouts.append(timeout)
        fetcher._stopped.set()
        return _batch([(TP0, _message(TP0, 7))])

    consumer.getmany = getmany  # type: ignore[attr-defined]
    await faust_tuning._drain_messages(consumer, fetcher)  # type: ignore[arg-type]
    assert timeouts == [timeout]
    assert consumer.delivered == [7]


def test_murmur2_is_kafkas() -> None:
    rng = random.Random(153)
    for length in range(64):
        for _ in range(20):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), data
    # Kafka's own test vectors (org.apache.kafka.common.utils.UtilsTest#testMurmur2)
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == -985981536 & 0xFFFFFFFF
    assert murmur2(b"abc") == 479470107


def test_the_partitioner_places_keys_as_aiokafka_does() -> None:
    everyone, available = list(range(12)), [1, 5, 7]
    for _ in range(500):
        key = os.urandom(random.randrange(1, 40))
        assert murmur2_partition(key, everyone, available) == DefaultPartitioner()(
            key, everyone, available
        )
    assert {murmur2_partition(None, everyone, available) for _ in range(200)} <= set(available)
    assert murmur2_partition(None, [3], []) == 3


def test_tune_gc_freezes_what_exists_and_collects_less_often() -> None:
    threshold = gc.get_threshold()
    built: list[list[int]] = [[], []]  # stands for the app: alive when the worker starts
    try:
        tune_gc()
        assert gc.get_threshold() == (faust_tuning.GC_THRESHOLD, *threshold[1:])
        assert gc.get_freeze_count() > 0
        assert not any(obj is built[1] for obj in gc.get_objects())  # frozen, never scanned
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _app() -> faust.App:
    return faust.App("tuning-test", broker="kafka://127.0.0.1:1", web_enabled=False)


async def test_the_consumer_waits_at_most_a_tenth_of_a_second_for_idle_partitions() -> None:
    app = _app()
    thread = app.consumer._thread  # type: ignore[attr-defined]
    transport: Any = app.transport
    created = faust_tuning._faust_create_worker_consumer(thread, transport)
    assert created._fetch_max_wait_ms == 1500  # faust's value, on aiokafka's attribute
    await created.stop()
    consumer = faust_tuning._create_worker_consumer(thread, transport)
    assert consumer._fetch_max_wait_ms == 100
    await consumer.stop()


class FakeProducer:
    def __init__(self, started: bool) -> None:
        self._started = asyncio.Event()
        if started:
            self._started.set()
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> str:
        self.sent.append(args)
        return "future"


def _topic_on(producer: FakeProducer) -> tuple[Any, list[str]]:
    starts: list[str] = []

    async def maybe_start_producer() -> FakeProducer:
        starts.append("start")
        producer._started.set()
        return producer

    app = SimpleNamespace(
        producer=producer, in_transaction=False, maybe_start_producer=maybe_start_producer
    )
    return SimpleNamespace(app=app, get_topic_name=lambda: "units.zabita"), starts


@pytest.mark.parametrize("started", [True, False])
async def test_topics_get_the_producer_started_once(started: bool) -> None:
    producer = FakeProducer(started)
    topic, starts = _topic_on(producer)
    assert await faust_tuning._get_producer(topic) is producer
    assert starts == ([] if started else ["start"])


@pytest.mark.parametrize("started", [True, False])
async def test_send_raw_hands_the_record_to_the_apps_producer(started: bool) -> None:
    producer = FakeProducer(started)
    topic, starts = _topic_on(producer)
    headers = {"content-type": b"application/json"}
    assert await send_raw(topic, b"153-1", b"{}", headers) == "future"
    assert producer.sent == [("units.zabita", b"153-1", b"{}", None, None, headers)]
    assert starts == ([] if started else ["start"])


def test_the_worker_app_is_tuned() -> None:
    app = create_app(Settings(_env_file=None))
    assert app.conf.producer_partitioner is murmur2_partition
    assert Consumer._drain_messages is faust_tuning._drain_messages


def test_tune_patches_faust_once() -> None:
    assert tune_faust() and tune_faust()
    assert Consumer._drain_messages is faust_tuning._drain_messages
    assert Topic._get_producer is faust_tuning._get_producer
    assert AIOKafkaConsumerThread._create_worker_consumer is faust_tuning._create_worker_consumer


def test_another_faust_runs_untuned(monkeypatch: pytest.MonkeyPatch) -> None:
    async def faust_own(self: Any, fetcher: Any) -> None:
        return None

    monkeypatch.setattr(faust_tuning, "_tuned", False)
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    monkeypatch.setattr(Consumer, "_drain_messages", faust_own)
    assert tune_faust() is False
    assert Consumer._drain_messages is faust_own
