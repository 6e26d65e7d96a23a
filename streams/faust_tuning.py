"""What makes a Faust hop cheaper: settings, uvloop, a lean monitor, GC and faust patches.

Measured with the bench's forwarding agent (one consume → produce hop) on the 2-core dev
machine. About 190 µs CPU an event as first configured; about 100 µs and 5,700 events/s with
producer linger (``worker.producer_linger_s``: without it about one produce request an
event), uvloop (:func:`use_uvloop`) and :class:`LeanMonitor`; about 45–50 µs and
16,000–18,000 events/s with :func:`tune_faust`, :func:`tune_gc`, :func:`murmur2_partition`
and :func:`send_raw` as well. Most of the events/s came from two stalls, not from CPU (see
:func:`tune_faust`). (These were read with an earlier bench, whose cold broker and eager
reader held the raw aiokafka passthrough back to about 25,000 events/s; against a warm
broker the passthrough copies 45,000–70,000 a second, and the README has today's figures.)

The patches replace private methods of faust-streaming, so they are applied only to the
release they were written against (:data:`TUNED_VERSION`); on another one the worker runs
untuned (slower, not wrong).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import struct
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import faust
from faust.sensors.monitor import Monitor
from faust.topics import Topic
from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP, HeadersArg, Message, RecordMetadata, TopicT
from faust.types.transports import ProducerT

__all__ = [
    "FETCH_MAX_WAIT_S",
    "GC_THRESHOLD",
    "HELD_BACK_POLL_S",
    "TUNED_VERSION",
    "LeanMonitor",
    "header_pairs",
    "murmur2_partition",
    "send_raw",
    "tune_faust",
    "tune_gc",
    "use_uvloop",
]

log = logging.getLogger(__name__)

#: The faust-streaming release whose internals :func:`tune_faust` replaces.
TUNED_VERSION = "0.15.3"
#: How long the broker may hold a fetch that finds no data (faust hard-codes 1.5 s).
FETCH_MAX_WAIT_S = 0.1
#: How long a fetch waits while partitions are held back for a full stream buffer (faust: 1 s).
HELD_BACK_POLL_S = 0.05
#: faust's fetch timeout otherwise.
_POLL_S = 1.0
#: Allocations between two collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000
_YIELD_EVERY = 100
_tuned = False
_faust_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer

Item = tuple[TP, Message]
_WORDS = struct.Struct("<I")
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


class LeanMonitor(Monitor):
    """Faust's Monitor without its per-message and per-send statistics.

    Keeps what the consumer needs (end offsets, commits, rebalances); the dropped numbers
    are only shown by Faust's web views, which the worker does not run.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Not tracked."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Not tracked."""

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """Not tracked."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Not tracked."""

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        """Not tracked."""

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Not tracked."""

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """Not tracked."""


def use_uvloop() -> bool:
    """Make new event loops uvloop loops (call before the app is built); False without it."""
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed; the worker runs on the slower asyncio loop")
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def tune_gc() -> None:
    """Make the collector cheaper for a worker (call once the app is built, before it runs).

    Every event allocates a few dozen objects; at Python's default threshold (700) the
    collector ran every few events. :data:`GC_THRESHOLD` and freezing what exists by then (the
    app, modules, models: never garbage, yet scanned by every full collection) cut a hop's CPU
    by about 15% (51 → 44 µs an event).
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, middle, old)


def murmur2_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (Kafka's murmur2, as the Java client) in half its time:
    the same partition for every key, so other producers agree (``producer_partitioner``)."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``)."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in _WORDS.iter_unpack(memoryview(data)[:whole]):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length - whole
    if rest:
        if rest >= 3:
            h ^= data[whole + 2] << 16
        if rest >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def tune_faust() -> bool:
    """Patch faust once per process; False (and a warning) on a release other than 0.15.3.

    * ``Consumer._drain_messages`` delivers a fetched batch under one ``wait_first`` (faust
      starts four tasks per message to watch for a rebalance) and polls every 50 ms instead
      of every second while partitions are held back for a full stream buffer (their records
      are already fetched, and nothing wakes a fetch that does not ask for them);
    * ``Topic._get_producer`` returns the started producer (faust's stampede guard turns the
      event loop three times per send);
    * the consumer's ``fetch_max_wait_ms`` is 100 ms instead of 1.5 s: a fetch for idle
      partitions alone (sent while the others still hold unread records) occupies the
      broker connection that long, and every other partition waits for it.
    """
    global _tuned
    if _tuned:
        return True
    if faust.__version__ != TUNED_VERSION:
        log.warning(
            "faust-streaming %s is not %s: the worker runs without streams.faust_tuning's patches",
            faust.__version__,
            TUNED_VERSION,
        )
        return False
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    Topic._get_producer = _get_producer  # type: ignore[method-assign]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    _tuned = True
    return True


def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    """faust's aiokafka consumer with :data:`FETCH_MAX_WAIT_S` (read by aiokafka on start)."""
    consumer = _faust_create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = int(FETCH_MAX_WAIT_S * 1000)
    return consumer


async def _get_producer(self: Topic) -> ProducerT:
    """``Topic._get_producer``: the producer once started; until then faust's guarded start."""
    return await _started_producer(self.app)


async def _started_producer(app: Any) -> ProducerT:
    producer = app.producer
    if not app.in_transaction and cast(Any, producer)._started.is_set():
        return cast(ProducerT, producer)
    return cast(ProducerT, await app.maybe_start_producer())


def header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    """A Faust message's or event's headers (a mapping, pairs, or None) as a list of pairs."""
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or ())


async def send_raw(
    topic: TopicT, key: bytes | None, value: bytes | None, headers: HeadersArg | None = None
) -> Awaitable[RecordMetadata]:
    """``topic.send(key=key, value=value, headers=headers)`` for bytes on a topic of raw bytes,
    straight to the app's producer: about 11 µs an event less than ``Topic.send``, which wraps
    each send in a FutureMessage, its sensors and a completion callback.

    The delivery guarantee is the same: both put the record in the producer's batch and return
    before the broker acknowledged it, and the consumer flushes that producer before it commits
    an offset. The returned future resolves to aiokafka's ``RecordMetadata`` (or its error).
    """
    app = topic.app
    if app.in_transaction:  # exactly-once: only Topic.send knows the transaction
        return await topic.send(key=key, value=value, headers=headers)
    producer = await _started_producer(app)
    return await producer.send(topic.get_topic_name(), key, value, None, None, headers)


async def _drain_messages(self: Consumer, fetcher: Any) -> None:
    """faust 0.15.3's ``Consumer._drain_messages`` with one ``wait_first`` per fetched batch
    (:func:`_deliver_batch`) and a short poll while partitions are held back."""
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            timeout = HELD_BACK_POLL_S if self._buffered_partitions else _POLL_S
            batch = cast(AsyncIterator[Item], self.getmany(timeout=timeout))
            await self.sleep(0)  # as faust: getmany may return at once, again and again
            if not self.should_stop:
                await _deliver_batch(self, batch)
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


async def _deliver_batch(self: Consumer, batch: AsyncIterator[Item]) -> None:
    """Deliver what one ``getmany`` fetched, as faust does message by message, under one
    ``wait_first`` with the flow suspension (a rebalance), the consumer's stop and crash.

    What stays out of the cancellable part, as in faust: the fetch itself (the first step of
    ``getmany``; cancelling it could drop records aiokafka has already handed over) and the
    commits due every ``broker_commit_every`` acknowledgements. A suspension abandons the
    rest of the batch, as faust's ``getmany`` stops yielding once the flow is suspended; those
    messages were not acknowledged, and the seek after the rebalance fetches them again.
    """
    item = await anext(batch, None)
    while item is not None:
        delivery = _deliver(self, item, batch)
        outcome = await self.wait_first(delivery, self.suspend_flow.wait())
        if outcome.stopped or delivery not in outcome.done:
            return
        item = outcome.results[outcome.done.index(delivery)]
        if item is not None:  # a commit is due before this message
            self._n_acked = 0
            await self.commit()


async def _deliver(self: Consumer, item: Item | None, batch: AsyncIterator[Item]) -> Item | None:
    """faust's per-message body (gaps, delivery, read offset) from ``item`` to the end of the
    batch (None), or up to a message before which a commit is due (that message)."""
    callback = self.callback
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    acks_enabled_for = self.app.topics.acks_enabled_for
    commit_every = self._commit_every
    since_yield = 0
    while item is not None:
        tp, message = item
        since_yield += 1
        if since_yield > _YIELD_EVERY:  # let other tasks (e.g. health checks) run
            await asyncio.sleep(0)
            since_yield = 0
        offset = message.offset
        read_offset = get_read_offset(tp)
        if read_offset is None or offset >= read_offset:
            if offset - (read_offset or 0) > 1 and read_offset and acks_enabled_for(message.topic):
                await self._add_gap(tp, read_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                return item
            await callback(message)
            set_read_offset(tp, offset)
        else:
            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
        item = await anext(batch, None)
    return None
