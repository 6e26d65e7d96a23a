"""The benchmark's Faust baselines: Faust workers built like the product's, without its logic.

``python -m infra.bench.forward worker --input T --output U`` runs a worker whose only agent
sends each event's key, value and headers on to ``U``.

``python -m infra.bench.forward skeleton --input T --output U`` runs the pipeline's Kafka
traffic without its logic (:func:`build_skeleton_app`): the same two hops, the same records
per report at the sizes the real ones have, the same window table. What it costs an event
is what Faust and aiokafka cost the pipeline, whatever its logic: the pipeline's ceiling.

Both are built with ``streams.app.create_app`` (same delivery guarantee, acks, linger, commit
interval, session timeout and patches) and send through ``streams.faust_tuning.send_raw``,
as the product's agents do. The app id and data directory come from the environment
(``INTAKE_WORKER__APP_ID``, ``INTAKE_DATA_DIR``); the worker writes the same ready file as
``intake worker``.
"""

from __future__ import annotations

import argparse
import re
import sys
import zlib
from collections import defaultdict, deque
from typing import Any

import faust

from infra.settings import Settings, load_settings
from streams.agents import FINGERPRINT_HEADER
from streams.app import create_app, mark_ready_on_rebalance
from streams.faust_tuning import header_pairs, send_raw

__all__ = [
    "SKELETON_KEYS",
    "SKELETON_SIZES",
    "build_forward_app",
    "build_skeleton_app",
    "main",
    "skeleton_topics",
    "skeleton_work_pattern",
]

#: Bytes of each record the pipeline writes per report: the means over 2,000 bench events
#: (measured 2026-12-07); the fingerprint travels as a header of the cluster record and is
#: the table entry's value.
SKELETON_SIZES = {
    "message": 880,
    "created": 1330,
    "fingerprint": 320,
    "work item": 600,
    "routed": 770,
    "notice": 600,
    "review": 700,
}
#: Partition keys of the clustering hop: about as many as the bench's reports spread over
#: (unit × district).
SKELETON_KEYS = 160
#: Topics a work item may go to: the output and as many more as the pipeline has unit,
#: district and outside-body topics besides one (spreading records over a hundred-odd
#: partitions costs the producer more than sending them to a few).
SKELETON_WORK_TOPICS = 35
#: Every n-th report also writes a notice (about half are forwarded) and a review item.
_NOTICE_EVERY, _REVIEW_EVERY = 2, 50
_JSON = {"content-type": b"application/json"}


def build_forward_app(settings: Settings, input_topic: str, output_topic: str) -> faust.App:
    """A Faust app with one forwarding agent and the ready signal."""
    app = create_app(settings)
    source = app.topic(input_topic, key_serializer="raw", value_serializer="raw")
    sink = app.topic(output_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="forward")
    async def forward(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await send_raw(sink, event.key, event.value, event.headers)

    mark_ready_on_rebalance(app, settings)
    return app


def skeleton_topics(output: str) -> dict[str, str]:
    """The skeleton's topics besides its input and output (named after the output): those of
    the pipeline's contract it writes, and ``w1``… the further work-item topics."""
    names = ["messages", "cluster", "cases", "replies", "review"]
    names += [f"w{i}" for i in range(1, SKELETON_WORK_TOPICS)]
    return {name: f"{output}.{name}" for name in names}


def skeleton_work_pattern(output: str) -> str:
    """The topics the skeleton's work items go to, as a regular expression."""
    return rf"^{re.escape(output)}(\.w\d+)?$"


def build_skeleton_app(settings: Settings, input_topic: str, output_topic: str) -> faust.App:
    """The pipeline's traffic per report, with filler bytes for payloads and no decisions.

    ``intake`` (batched as the pipeline's intake agent) writes the message and the record to
    cluster, keyed by one of :data:`SKELETON_KEYS` partition keys, with a fingerprint header;
    ``cluster`` (one event at a time) records the fingerprint in the window table (evicting
    the oldest past ``cluster.max_reports_per_key``), then writes the created event, the
    work item on ``U`` or one of its ``w`` topics (:func:`skeleton_work_pattern`; carrying the
    input's headers, so the bench recognises it), the routed event, and every so often a
    notice and a review item.
    """
    app = create_app(settings)
    named = skeleton_topics(output_topic)

    def raw(name: str) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw")

    source = raw(input_topic)
    messages, cluster, cases, replies, review = (
        raw(named[n]) for n in ("messages", "cluster", "cases", "replies", "review")
    )
    work = [raw(output_topic)]
    work += [raw(named[f"w{i}"]) for i in range(1, SKELETON_WORK_TOPICS)]
    fill = {name: b"x" * size for name, size in SKELETON_SIZES.items()}
    table = app.Table("skeleton-window", key_type=str, value_type=bytes)
    window: defaultdict[str, deque[str]] = defaultdict(deque)
    cap = settings.cluster.max_reports_per_key
    size, within = settings.classifier.batch_size, settings.classifier.batch_within_s

    @app.agent(source, name="skeleton-intake")
    async def intake(stream: faust.StreamT[Any]) -> None:
        async for events in stream.take_events(size, within=within):  # type: ignore[attr-defined]
            for event in events:
                key = event.key or b""
                await send_raw(messages, key, fill["message"], _JSON)
                part = b"k%d" % (zlib.crc32(key) % SKELETON_KEYS)
                headers = [
                    *header_pairs(event.headers),
                    (FINGERPRINT_HEADER, fill["fingerprint"]),
                ]
                await send_raw(cluster, part, fill["created"], headers)

    @app.agent(cluster, name="skeleton-cluster", concurrency=1)
    async def decide(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            part, offset = (event.key or b"").decode(), event.message.offset
            entries = window[part]
            entries.append(f"{part}#{event.message.partition}:{offset}")
            table[entries[-1]] = fill["fingerprint"]
            while len(entries) > cap:
                del table[entries.popleft()]
            case = b"case-%d-%d" % (event.message.partition, offset)
            passed = [(k, v) for k, v in header_pairs(event.headers) if k != FINGERPRINT_HEADER]
            await send_raw(cases, case, event.value, _JSON)
            await send_raw(work[zlib.crc32(case) % len(work)], case, fill["work item"], passed)
            await send_raw(cases, case, fill["routed"], _JSON)
            if offset % _NOTICE_EVERY == 0:
                await send_raw(replies, case, fill["notice"], _JSON)
            if offset % _REVIEW_EVERY == 0:
                await send_raw(review, case, fill["review"], _JSON)

    mark_ready_on_rebalance(app, settings)
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m infra.bench.forward worker``."""
    parser = argparse.ArgumentParser(prog="python -m infra.bench.forward")
    parser.add_argument("command", choices=["worker", "skeleton"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    from streams.faust_tuning import tune_gc, use_uvloop

    use_uvloop()  # as the worker does
    build = build_skeleton_app if args.command == "skeleton" else build_forward_app
    app = build(settings, args.input, args.output)
    tune_gc()  # the app and its modules are built: freeze them out of the collector
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
