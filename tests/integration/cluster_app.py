"""A minimal Faust app for the cluster-restart test: one agent runs ``ClusterWindow.step``.

Run as ``python -m tests.integration.cluster_app worker -l info`` with ``CLUSTER_APP_*``
variables naming the broker, app id, topics and data directory. Its source topic carries
``created`` case events keyed by the partition key; it writes each decision, as JSON keyed by
the message id, to the decisions topic, and a ready file each time a rebalance completes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import faust

from schemas.case import CaseEvent
from schemas.common import utc_now
from streams.cluster.logic import ClusterSettings, Decision, fingerprints
from streams.cluster.state import ClusterWindow, declare_cluster_table, source_of

__all__ = ["build_app", "main"]

PARTITIONS = 3


def build_app(env: Mapping[str, str]) -> faust.App:
    """The app, its topics, the window table and the agent (no I/O until the worker starts)."""
    data_dir = Path(env["CLUSTER_APP_DATA_DIR"])
    app = faust.App(
        env["CLUSTER_APP_ID"],
        broker=f"kafka://{env['CLUSTER_APP_BROKER']}",
        store="memory://",
        datadir=str(data_dir / "faust"),
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        broker_session_timeout=8.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
    )
    source = app.topic(env["CLUSTER_APP_SOURCE"], key_serializer="raw", value_serializer="raw")
    decisions = app.topic(
        env["CLUSTER_APP_DECISIONS"], key_serializer="raw", value_serializer="raw"
    )
    settings = ClusterSettings(salt="integration-test-salt")
    window = ClusterWindow(declare_cluster_table(app, partitions=PARTITIONS), settings)

    async def publish(message_id: str, decision: Decision) -> None:
        body = {
            "message_id": message_id,
            "kind": decision.kind.value,
            "case_id": decision.case_id,
            "reason": decision.reason,
            "score": decision.score,
        }
        # Not awaited to the broker's acknowledgement, as in the product: a replay of the
        # source record after a crash is given its recorded verdict again.
        await decisions.send(key=message_id.encode(), value=json.dumps(body).encode())

    @app.agent(source, name="cluster", concurrency=1)
    async def cluster(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            created = CaseEvent.from_bytes(event.value)
            assert created.message is not None and created.classification is not None
            candidate = fingerprints([(created.message, created.classification)], settings)[0]
            emit = partial(publish, created.message.message_id)
            source = source_of(event.message)
            await window.step(event.key.decode(), candidate, utc_now(), emit, source)

    ready = data_dir / "ready.json"

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _mark_ready(sender: faust.App, *_: Any, **__: Any) -> None:
        assigned = len(sender.consumer.assignment())
        ready.write_text(json.dumps({"pid": os.getpid(), "partitions": assigned}))

    return app


def main() -> None:
    """Entry point: Faust's command line (``worker -l info``)."""
    build_app(os.environ).main()


if __name__ == "__main__":
    main()
