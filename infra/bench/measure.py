"""How the benchmark measures: process CPU from ``/proc``, outputs read back, timing.

* **Throughput**: the system under test is paused (SIGSTOP) while the events are loaded into
  its input topic, then resumed; the clock runs from the resume until the system wrote the
  last expected output (that record's timestamp, on this machine's clock). CPU is the
  process's user + system time from the resume until its consumer group has committed
  everything it read (so work still queued behind the outputs is charged to the events that
  caused it). The pipeline's recorder (the case store's writer, a process of its own) is
  measured over the same span, until its group has committed all of ``intake.cases``, and
  reported apart. The outputs are read in batches (:data:`BATCHED_FETCH_MIN_BYTES`), so that
  the reading takes little of the broker; their timestamps keep the reader's fetch cadence
  out of the figure.
* **Latency**: a paced producer sends at a fixed rate; each event's latency is the time its
  output was read minus the time it was *scheduled* to be sent (a late send counts against
  the system, not in its favour). Both clocks are this process's monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition

from infra.bench import BenchError
from infra.bench.generate import GeneratedEvent

if TYPE_CHECKING:
    from infra.bench.runners import ManagedProcess

__all__ = [
    "SEQ_HEADER",
    "BrokerWarmUp",
    "Latency",
    "Subject",
    "Throughput",
    "Watcher",
    "measure_latency",
    "measure_throughput",
    "partitions_of",
    "percentile",
    "warm_broker",
    "warm_up",
]

Check = Callable[[], None]
SEQ_HEADER = "bench.seq"
SCHEDULED_HEADER = "bench.scheduled-ns"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), linearly interpolated between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def partitions_of(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh metadata."""
    described = await admin.describe_topics(list(topics))
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def _until(
    done: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: Callable[[], str],
    check: Check,
    every_s: float = 0.02,
) -> None:
    """Poll ``done`` (no fixed sleeps anywhere); ``check`` raises when a process died."""
    deadline = time.monotonic() + timeout_s
    while not await done():
        check()
        if time.monotonic() > deadline:
            raise BenchError(f"{what()} within {timeout_s:.0f}s")
        await asyncio.sleep(every_s)


TokenOf = Callable[[ConsumerRecord[Any, Any]], bytes | None]


#: How the reader fetches in a throughput run: it waits for this much data (or
#: :data:`BATCHED_FETCH_WAIT_MS`) per fetch. Read eagerly (a fetch returns as soon as any
#: output exists), a reader of the pipeline's hundred-odd output partitions sent about a
#: hundred fetches a second, each naming every partition, and the broker serving them took
#: CPU from the system under test on this 2-core machine (about 13 % fewer events/s).
BATCHED_FETCH_MIN_BYTES = 1024 * 1024
#: The longest a batched fetch waits (the run is timed by the outputs' timestamps, so
#: reading them late does not count against the system).
BATCHED_FETCH_WAIT_MS = 100


class Watcher:
    """Reads output topics from their end and notes when each expected token first arrives.

    Partitions are assigned directly (every topic whose name matches ``pattern``), so no
    consumer-group rebalance can stall the clock. The reader is *eager* (each output read
    as soon as it exists: latency runs, warm-up) or *batched* (throughput runs, see
    :data:`BATCHED_FETCH_MIN_BYTES`); :meth:`read` switches between them between runs.
    """

    def __init__(
        self,
        options: Mapping[str, Any],
        pattern: str,
        token_of: TokenOf,
        dead_letter_topic: str | None = None,
    ) -> None:
        self.pattern = re.compile(pattern)
        self.token_of = token_of
        self.dead_letter_topic = dead_letter_topic  # read too, counted apart from outputs
        self.options = dict(options)
        self.batched = False
        self.consumer = self._consumer()
        self._tps: list[TopicPartition] = []
        self._pending: set[bytes] = set()
        self._seen: dict[bytes, float] = {}
        self._written: dict[bytes, float] = {}
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.outputs = 0
        self.dead_letters = 0

    def _consumer(self) -> AIOKafkaConsumer:
        fetch = (
            {"fetch_min_bytes": BATCHED_FETCH_MIN_BYTES, "fetch_max_wait_ms": BATCHED_FETCH_WAIT_MS}
            if self.batched
            else {}
        )
        return AIOKafkaConsumer(enable_auto_commit=False, **fetch, **self.options)

    async def start(self, admin: AIOKafkaAdminClient) -> list[str]:
        """Assign the matching partitions at their current end; returns the topics."""
        topics = sorted(t for t in await admin.list_topics() if self.pattern.match(t))
        if not topics:
            raise BenchError(f"no topic matches {self.pattern.pattern!r}")
        if self.dead_letter_topic:
            topics.append(self.dead_letter_topic)
        self._tps = await partitions_of(admin, topics)
        await self._begin()
        return topics

    async def _begin(self) -> None:
        await self.consumer.start()
        self.consumer.assign(self._tps)
        await self.consumer.seek_to_end(*self._tps)
        for tp in self._tps:
            await self.consumer.position(tp)  # resolve now: nothing sent later may be missed
        self._task = asyncio.create_task(self._read())

    async def read(self, *, batched: bool) -> None:
        """Read eagerly or in batches from now on (between runs: what is unread is skipped)."""
        if batched == self.batched:
            return
        await self.stop()
        self.batched = batched
        self.consumer = self._consumer()
        await self._begin()

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for tp, records in batches.items():
                if tp.topic == self.dead_letter_topic:
                    self.dead_letters += len(records)
                    continue
                self.outputs += len(records)
                for record in records:
                    token = self.token_of(record)
                    if token in self._pending:
                        self._pending.discard(token)
                        self._seen[token] = now
                        self._written[token] = record.timestamp / 1000
            if not self._pending:
                self._done.set()

    def expect(self, tokens: Iterable[bytes]) -> None:
        """Forget earlier expectations; note the first arrival of these tokens from now on."""
        self._seen, self._written = {}, {}
        self._pending = set(tokens)
        self.outputs = self.dead_letters = 0
        self._done = asyncio.Event()

    @property
    def seen(self) -> dict[bytes, float]:
        """First-arrival time of each expected token that has arrived so far."""
        return dict(self._seen)

    @property
    def written(self) -> dict[bytes, float]:
        """When the system wrote each expected output that has arrived: the record's
        timestamp (the producer's or the broker's clock, this machine's), in epoch seconds."""
        return dict(self._written)

    def _healthy(self, check: Check) -> Check:
        def both() -> None:
            if self._task is not None and self._task.done():
                self._task.result()  # re-raise what stopped the reader
            check()

        return both

    async def wait_all(self, timeout_s: float, check: Check) -> dict[bytes, float]:
        """Wait until every expected token has arrived; ``check`` raises if a system died."""

        async def done() -> bool:
            return self._done.is_set()

        def what() -> str:
            return f"{len(self._pending)} of {len(self._pending) + len(self._seen)} outputs missing"

        await _until(done, timeout_s, what, self._healthy(check))
        return self.seen

    async def wait_first(self, timeout_s: float, check: Check) -> None:
        """Wait until at least one expected token has arrived (the system works end to end)."""

        async def done() -> bool:
            return bool(self._seen) or self._done.is_set()

        await _until(done, timeout_s, lambda: "no output arrived", self._healthy(check))

    async def wait_caught_up(self, timeout_s: float, check: Check) -> None:
        """Wait until this reader has read everything written to its topics so far."""
        tps = sorted(self.consumer.assignment())
        ends = await self.consumer.end_offsets(tps)

        async def done() -> bool:
            return all([await self.consumer.position(tp) >= ends[tp] for tp in tps])

        what = "the output reader did not catch up"
        await _until(done, timeout_s, lambda: what, self._healthy(check))

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets of any partitions (used to tell whether a group has caught up)."""
        return await self.consumer.end_offsets(tps)  # type: ignore[no-any-return]

    async def stop(self) -> None:
        """Stop reading and close the consumer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.consumer.stop()


@dataclass
class Subject:
    """One system under test, as the measurements see it."""

    name: str
    input_topic: str
    process: ManagedProcess
    watcher: Watcher
    #: token → index of the event it stands for (the events whose outputs are awaited)
    tokens: Callable[[Sequence[GeneratedEvent]], dict[bytes, int]]
    #: whether the system's consumer group has committed everything it read
    drained: Callable[[], Awaitable[bool]]
    #: every token must come out (a forwarder); False: the system may merge or drop events
    #: (the pipeline's deduplication), so "done" is its group having committed all it read
    require_all: bool
    #: a second process whose CPU is measured apart (the pipeline's ``intake record``)
    recorder: ManagedProcess | None = None

    def check_alive(self) -> None:
        """Raise with the log's tail when a process of this system has exited."""
        self.process.check_alive()
        if self.recorder is not None:
            self.recorder.check_alive()


@dataclass(frozen=True)
class Throughput:
    """One throughput measurement."""

    events: int
    elapsed_s: float
    events_per_s: float
    cpu_us_per_event: float
    drain_s: float
    outputs: int
    dead_letters: int
    #: CPU of the recorder over the same span (``None``: the system has none)
    recorder_cpu_us_per_event: float | None = None


@dataclass(frozen=True)
class Latency:
    """One latency measurement at a fixed offered rate."""

    samples: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    dead_letters: int


def _headers(event: GeneratedEvent, scheduled_ns: int | None = None) -> list[tuple[str, bytes]]:
    headers = [("content-type", b"application/json"), (SEQ_HEADER, str(event.seq).encode())]
    if scheduled_ns is not None:
        headers.append((SCHEDULED_HEADER, str(scheduled_ns).encode()))
    return headers


async def _load(producer: AIOKafkaProducer, topic: str, events: Sequence[GeneratedEvent]) -> None:
    futures = [
        await producer.send(topic, key=e.key, value=e.value, headers=_headers(e)) for e in events
    ]
    await asyncio.gather(*futures)


async def _wait_drained(subject: Subject, timeout_s: float) -> None:
    what = f"{subject.name} did not commit all its input"
    check = subject.check_alive
    await _until(subject.drained, timeout_s, lambda: what, check, every_s=0.1)


def _output_timeout(n: int) -> float:
    return 120.0 + n / 100  # generous: a wedged system fails, a slow one is still measured


async def _outputs(subject: Subject, timeout_s: float) -> dict[bytes, float]:
    """First-arrival times once everything sent has been processed and read back."""
    check = subject.check_alive
    if subject.require_all:
        return await subject.watcher.wait_all(timeout_s, check)
    await _wait_drained(subject, timeout_s)
    await subject.watcher.wait_caught_up(60.0, check)
    seen = subject.watcher.seen
    if not seen:
        raise BenchError(f"{subject.name} processed its input but wrote no output")
    return seen


async def warm_up(
    subject: Subject, producer: AIOKafkaProducer, batches: Sequence[Sequence[GeneratedEvent]]
) -> None:
    """Send small batches, each until it has come out and been committed (not timed).

    Two batches: after the first, every stage of a multi-stage worker has processed events
    and so has committed offsets that the "drained" check can see.
    """
    await subject.watcher.read(batched=False)
    for events in batches:
        subject.watcher.expect(subject.tokens(events))
        await _load(producer, subject.input_topic, events)
        await subject.watcher.wait_first(300.0, subject.check_alive)
        await _outputs(subject, _output_timeout(len(events)))
        await _wait_drained(subject, 120.0)


async def measure_throughput(
    subject: Subject, producer: AIOKafkaProducer, events: Sequence[GeneratedEvent]
) -> Throughput:
    """Load ``events`` while the system is paused, resume it, time until it wrote all outputs."""
    await subject.watcher.read(batched=True)
    subject.watcher.expect(subject.tokens(events))
    recorder = subject.recorder
    subject.process.pause()
    try:
        await _load(producer, subject.input_topic, events)
        cpu_before = subject.process.cpu_s()
        recorder_before = recorder.cpu_s() if recorder is not None else 0.0
    finally:
        started, started_wall = time.monotonic(), time.time()
        subject.process.resume()
    await _outputs(subject, _output_timeout(len(events)))
    # Timed to when the system wrote its last output, not to when the (batched) reader
    # read it: the reader's fetch cadence must not count for or against the system.
    elapsed = max(max(subject.watcher.written.values()) - started_wall, 1e-6)
    outputs = subject.watcher.outputs
    await _wait_drained(subject, 300.0)
    drain_s = time.monotonic() - (started + elapsed)
    cpu = subject.process.cpu_s() - cpu_before
    recorder_cpu = recorder.cpu_s() - recorder_before if recorder is not None else None
    return Throughput(
        events=len(events),
        elapsed_s=elapsed,
        events_per_s=len(events) / elapsed,
        cpu_us_per_event=cpu / len(events) * 1e6,
        drain_s=drain_s,
        outputs=outputs,
        dead_letters=subject.watcher.dead_letters,
        recorder_cpu_us_per_event=(
            recorder_cpu / len(events) * 1e6 if recorder_cpu is not None else None
        ),
    )


async def measure_latency(
    subject: Subject, producer: AIOKafkaProducer, events: Sequence[GeneratedEvent], rate: float
) -> Latency:
    """Send at ``rate`` events/s; latency = output read time − scheduled send time."""
    await subject.watcher.read(batched=False)
    tokens = subject.tokens(events)
    subject.watcher.expect(tokens)
    start = time.monotonic() + 0.05
    wall_start = time.time_ns() + 50_000_000
    futures = []
    for i, event in enumerate(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        scheduled_ns = wall_start + int(i / rate * 1e9)
        headers = _headers(event, scheduled_ns)
        futures.append(
            await producer.send(
                subject.input_topic, key=event.key, value=event.value, headers=headers
            )
        )
    await asyncio.gather(*futures)
    seen = await _outputs(subject, 60.0)
    millis = [(seen[t] - (start + i / rate)) * 1000 for t, i in tokens.items() if t in seen]
    await _wait_drained(subject, 120.0)
    return Latency(
        samples=len(millis),
        rate=rate,
        p50_ms=percentile(millis, 50),
        p99_ms=percentile(millis, 99),
        max_ms=max(millis),
        dead_letters=subject.watcher.dead_letters,
    )


@dataclass(frozen=True)
class BrokerWarmUp:
    """How the broker was warmed: passes run, seconds taken, and the share of a core its JIT
    compilers used over the last pass (None: they could not be read)."""

    passes: int
    seconds: float
    jit_share: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the JSON summary."""
        share = None if self.jit_share is None else round(self.jit_share, 3)
        return {"passes": self.passes, "seconds": round(self.seconds, 1), "jit_share": share}


async def warm_broker(
    one_pass: Callable[[], Awaitable[None]],
    jit_s: Callable[[], float | None],
    *,
    budget_s: float,
    quiet_share: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
) -> BrokerWarmUp:
    """Run ``one_pass`` (untimed load) until the broker's JIT compilers used less than
    ``quiet_share`` of a core over a pass, or ``budget_s`` is spent.

    A broker started for the run compiles its hot paths for minutes under load: measured
    cold, its compiler took about a fifth of a core on this 2-core machine, CPU the system
    under test lacked (the pipeline ran about 8 % slower than against a warm broker). A
    broker that runs for days has long finished, so the figures are taken after this.
    """
    started = clock()
    passes, share = 0, None
    while True:
        before, at = jit_s(), clock()
        await one_pass()
        passes += 1
        after, now = jit_s(), clock()
        if before is None or after is None:
            return BrokerWarmUp(passes, now - started, None)  # cannot tell: one pass only
        share = (after - before) / max(now - at, 1e-9)
        if share < quiet_share or now - started >= budget_s:
            return BrokerWarmUp(passes, now - started, share)
