"""``intake bench --stages``: what the pipeline's own logic costs, stage by stage, no Kafka.

The broker bench gives the worker's whole CPU per event; this gives the share of it that is
the product's code. It runs the plain functions the worker's two agents call
(:mod:`streams.agents`), in the same order and batches, on the bench's generated events, and
times each stage with the process's CPU clock:

* the intake agent, per batch of ``classifier.batch_size``: decode and normalize, classify,
  open the case, fingerprint the reports to cluster, encode its records (``intake.messages``,
  ``intake.cluster`` with the fingerprint header, or ``intake.cases`` for what skips
  clustering);
* the cluster agent, per report: decode the record and its header, the window step (the
  decision and the table entry it writes, over a dict in place of the Faust table), and
  for a new case routing and the encoding of everything routing writes.

What is not here is what the worker spends in Faust and aiokafka: consuming, producing,
committing, the table's changelog (``intake bench``'s skeleton system measures that alone).
The worker CPU per event of ``intake bench`` minus this total is that, and what the two
cost each other in one process. Before the measured events, as many again (other ids, same
mix) go through the same window, so the decisions are taken against windows about as full
as the broker bench's, which loads the worker before it measures.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from infra.bench import BenchError
from infra.bench.generate import GeneratedEvent, generate
from infra.settings import Settings
from schemas.case import CaseEvent, CaseEventKind
from schemas.common import utc_now
from schemas.raw import RawEvent
from streams.classify.classifier import Classifier
from streams.cluster.logic import (
    Decision,
    case_event_for,
    cluster_key,
    fingerprints,
    needs_clustering,
)
from streams.cluster.state import ClusterWindow, decode_fingerprint, encode_fingerprint
from streams.deadlines import WorkingCalendar
from streams.normalize import normalize
from streams.routing import open_case, route_case

__all__ = ["STAGES", "StageReport", "measure_stages", "render_stages"]

#: The stages, in the order the agents run them.
STAGES = (
    "normalize",
    "classify",
    "open case",
    "fingerprints",
    "encode intake records",
    "decode cluster record",
    "cluster decision",
    "routing",
    "encode routed records",
)


@dataclass
class StageReport:
    """CPU per measured event of each stage, and what the pipeline did with the events."""

    events: int
    warm_up: int
    batch_size: int
    cpu_us: dict[str, float]  # stage → µs per event
    records_per_event: float  # records the worker would write (changelog not counted)
    decisions: dict[str, int] = field(default_factory=dict)  # cluster verdicts by kind
    window_reports: int = 0  # reports in the windows at the end

    @property
    def total_us(self) -> float:
        """CPU per event of all stages."""
        return sum(self.cpu_us.values())

    def as_json(self) -> dict[str, Any]:
        """The report as ``--json`` prints it."""
        return {
            "events": self.events,
            "warm_up": self.warm_up,
            "batch_size": self.batch_size,
            "cpu_us_per_event": {**self.cpu_us, "total": self.total_us},
            "records_per_event": self.records_per_event,
            "decisions": self.decisions,
            "window_reports": self.window_reports,
        }


class _Clock:
    """CPU nanoseconds per stage, accumulated while ``counting``."""

    def __init__(self) -> None:
        self.ns: Counter[str] = Counter()
        self.counting = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.process_time_ns()
        try:
            yield
        finally:
            if self.counting:
                self.ns[name] += time.process_time_ns() - start


class _Pipeline:
    """The agents' calls without their sends: the records are encoded and counted."""

    def __init__(self, settings: Settings, clock: _Clock) -> None:
        self.classifier = Classifier.load(settings.classifier)
        self.cluster = settings.cluster
        self.calendar = WorkingCalendar(settings.deadlines)
        self.window = ClusterWindow({}, self.cluster)  # type: ignore[arg-type]  # a dict table
        self.clock = clock
        self.records = 0
        self.decisions: Counter[str] = Counter()

    def intake(self, batch: Sequence[GeneratedEvent]) -> list[tuple[str, bytes, bytes]]:
        """The intake agent on one batch; returns the ``intake.cluster`` records."""
        stage = self.clock.stage
        with stage("normalize"):
            msgs = [normalize(RawEvent.from_bytes(event.value)) for event in batch]
        with stage("classify"):
            classes = self.classifier.classify_messages(msgs)
        with stage("open case"):
            opened = [open_case(m, c) for m, c in zip(msgs, classes, strict=True)]
        with stage("fingerprints"):
            clustered = [i for i, created in enumerate(opened) if needs_clustering(created)]
            reports = [(msgs[i], classes[i]) for i in clustered]
            prints = dict(zip(clustered, fingerprints(reports, self.cluster), strict=True))
        out: list[tuple[str, bytes, bytes]] = []
        with stage("encode intake records"):
            for i, (msg, created) in enumerate(zip(msgs, opened, strict=True)):
                msg.to_bytes()
                fp = prints.get(i)
                key = cluster_key(msg, classes[i], self.cluster) if fp is not None else ""
                value = created.to_bytes()
                self.records += 2
                if fp is not None:
                    out.append((key, value, encode_fingerprint(fp)))
        for i, created in enumerate(opened):
            if i not in prints:
                self.route(created)  # as the intake agent does for what skips clustering
        return out

    def route(self, created: CaseEvent) -> None:
        """What ``send_case`` does after writing a created event: route it, encode it all."""
        if created.kind is not CaseEventKind.CREATED:
            return
        with self.clock.stage("routing"):
            threshold = self.classifier.settings.review_threshold
            routing = route_case(created, utc_now(), threshold, self.calendar)
        with self.clock.stage("encode routed records"):
            items: list[Any] = [item for _, item in routing.work_items]
            items += [x for x in (routing.emergency, routing.review) if x is not None]
            items += [*routing.notices, *routing.events]
            for item in items:
                item.to_bytes()
            self.records += len(items)

    async def cluster_step(self, key: str, value: bytes, header: bytes, source: int) -> None:
        """The cluster agent on one record (``source``: its offset, partition 0)."""
        with self.clock.stage("decode cluster record"):
            created = CaseEvent.from_bytes(value)
            candidate = decode_fingerprint(header)
        emitted: list[CaseEvent] = []

        async def emit(decision: Decision) -> None:
            step = case_event_for(created, decision)
            if step is not None:
                if step is not created:
                    step.to_bytes()
                emitted.append(step)

        with self.clock.stage("cluster decision"):
            decision = await self.window.step(key, candidate, utc_now(), emit, (0, source))
        self.decisions[decision.kind.value] += 1
        for step in emitted:
            self.records += 1
            self.route(step)


def measure_stages(
    settings: Settings,
    events: int,
    *,
    exact_share: float = 0.05,
    near_share: float = 0.10,
    warm_up: int | None = None,
) -> StageReport:
    """Run ``warm_up`` (default: ``events``) then ``events`` generated events through the
    pipeline's logic; CPU per measured event of each stage."""
    warm_up = events if warm_up is None else warm_up
    if events < 1 or warm_up < 0:
        raise BenchError(f"need events ≥ 1 and warm-up ≥ 0, not {events} and {warm_up}")

    def events_of(run_id: str, n: int) -> list[GeneratedEvent]:
        return generate(n, run_id=run_id, exact_share=exact_share, near_share=near_share)

    # The worker's collector settings (streams.faust_tuning.tune_gc), so the two compare.
    from streams.faust_tuning import tune_gc

    clock = _Clock()
    pipeline = _Pipeline(settings, clock)
    size = pipeline.classifier.settings.batch_size
    threshold = gc.get_threshold()
    tune_gc()
    offset = 0

    async def run(loaded: list[GeneratedEvent]) -> None:
        nonlocal offset
        for start in range(0, len(loaded), size):
            for key, value, header in pipeline.intake(loaded[start : start + size]):
                await pipeline.cluster_step(key, value, header, offset)
                offset += 1

    try:
        if warm_up:
            asyncio.run(run(events_of("stages-warm", warm_up)))
        pipeline.records = 0
        pipeline.decisions.clear()
        measured = events_of("stages", events)
        clock.counting = True
        asyncio.run(run(measured))
    finally:
        clock.counting = False
        gc.unfreeze()
        gc.set_threshold(*threshold)
    return StageReport(
        events=events,
        warm_up=warm_up,
        batch_size=size,
        cpu_us={name: clock.ns[name] / 1000 / events for name in STAGES},
        records_per_event=pipeline.records / events,
        decisions=dict(pipeline.decisions),
        window_reports=pipeline.window.reports,
    )


def render_stages(report: StageReport) -> str:
    """The report as a table for a person."""
    total = report.total_us or 1.0
    lines = [
        f"intake bench --stages: {report.events:,} events after {report.warm_up:,} warm-up "
        f"events, classified in batches of {report.batch_size}; CPU per event, no Kafka",
        "",
        f"{'stage':<24}{'µs/event':>10}{'share':>8}",
    ]
    for name, us in report.cpu_us.items():
        lines.append(f"{name:<24}{us:>10.1f}{us / total:>8.1%}")
    lines += [
        f"{'total':<24}{report.total_us:>10.1f}",
        "",
        f"records written per event: {report.records_per_event:.2f} (without the table's "
        f"changelog); cluster verdicts: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(report.decisions.items())),
        f"reports in the cluster windows at the end: {report.window_reports:,}",
        "The rest of the worker's CPU per event (`intake bench`) is Faust's and aiokafka's "
        "(the skeleton system alone) and what the two cost each other in one process.",
    ]
    return "\n".join(lines)
