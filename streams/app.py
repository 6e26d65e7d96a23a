"""The Faust app: built from the settings, with the topology declared once and its agents.

No I/O happens here at import time; ``build_worker_app`` is called by ``intake worker``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import faust

from infra.settings import Settings
from sinks.blobstore import BlobStore
from sinks.store import CaseStore
from streams.agents import register_agents
from streams.answers import AnswerDesk
from streams.classify.classifier import Classifier
from streams.deadletter import EventGuard
from streams.deadlines import WorkingCalendar
from streams.faust_fixes import apply_faust_fixes
from streams.faust_tuning import LeanMonitor, murmur2_partition, tune_faust
from streams.topics import Topics, declare_topics

__all__ = ["build_worker_app", "create_app", "mark_ready_on_rebalance", "ready_file"]

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured for at-least-once delivery against the configured Kafka (with
    ``streams.faust_fixes`` applied: faust 0.15 can drop events after a table's recovery; and
    ``streams.faust_tuning``'s patches, which make a hop cheaper)."""
    apply_faust_fixes()
    tune_faust()
    kafka = settings.kafka
    brokers = [
        f"kafka://{host.strip()}" for host in kafka.bootstrap_servers.split(",") if host.strip()
    ]
    options: dict[str, Any] = {}
    tls = kafka.ssl_context() if kafka.uses_tls else None
    if kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password:
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=tls,
        )
    elif tls is not None:
        options["broker_credentials"] = faust.SSLCredentials(tls)
    return faust.App(
        settings.worker.app_id,
        broker=brokers,
        broker_client_id=kafka.client_id,
        store="memory://",
        datadir=str(settings.faust_data_dir),
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=settings.worker.producer_linger_s,
        producer_max_batch_size=settings.worker.producer_max_batch_bytes,
        producer_partitioner=murmur2_partition,  # aiokafka's partitions, in half the time
        monitor=LeanMonitor(),  # no per-event statistics (see streams.faust_tuning)
        consumer_auto_offset_reset="earliest",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout_s / 3),
        broker_commit_interval=settings.worker.commit_interval_s,
        **options,
    )


def ready_file(settings: Settings) -> Path:
    """Written by the worker each time a rebalance completes: the worker owns its partitions."""
    return settings.faust_data_dir / "ready.json"


def build_worker_app(settings: Settings, store: CaseStore | None) -> tuple[faust.App, Topics]:
    """The app with its topics, agents and the ready signal."""
    app = create_app(settings)
    topics = declare_topics(app)

    async def send_deadletter(
        key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        await topics.deadletter.send(key=key, value=value, headers=headers)

    guard = EventGuard(
        send_deadletter,
        attempts=settings.worker.retry_attempts,
        backoff_s=settings.worker.retry_backoff_s,
    )
    calendar = WorkingCalendar(settings.deadlines)
    desk = (
        AnswerDesk(
            store,
            BlobStore(settings.blob_dir, settings.blobs.max_bytes),
            calendar,
            settings.collage,
        )
        if store is not None
        else None
    )
    register_agents(
        app,
        topics,
        guard,
        Classifier.load(settings.classifier),  # fails fast on a stale or missing model
        settings.cluster,
        calendar=calendar,
        desk=desk,
    )
    mark_ready_on_rebalance(app, settings)
    return app, topics


def mark_ready_on_rebalance(app: faust.App, settings: Settings) -> None:
    """Remove a stale ready file now; write it (pid, partitions) each time a rebalance
    completes, so a supervisor or the bench knows the worker owns its partitions."""
    marker = ready_file(settings)
    marker.unlink(missing_ok=True)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # the stub wants signal=
    async def _mark_ready(sender: faust.App, *_: Any, **__: Any) -> None:
        assigned = len(sender.consumer.assignment())
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": os.getpid(), "partitions": assigned}))
        log.info("worker ready: %d partitions assigned", assigned)
