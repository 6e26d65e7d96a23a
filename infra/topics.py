"""Create every topic of the contract, idempotently; partitions and replication from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.errors import TopicError
from infra.settings import KafkaSettings
from schemas.registry import CLUSTER_TOPIC, DEADLETTER_TOPIC, all_topic_names

__all__ = ["TopicPlan", "create_topics", "list_topics", "topic_plan"]

_DAY_MS = 24 * 60 * 60 * 1000

#: Retention per topic family: raw input and the dead-letter topic are kept long enough for an
#: operator to replay them after a holiday weekend; the case history longer still.
_RETENTION_MS = {
    "intake.raw.": 30 * _DAY_MS,
    DEADLETTER_TOPIC: 90 * _DAY_MS,
    "intake.cases": 400 * _DAY_MS,
    # Internal repartition topic: consumed within seconds; a week covers a long outage.
    CLUSTER_TOPIC: 7 * _DAY_MS,
}


@dataclass(frozen=True)
class TopicPlan:
    """One topic to create."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def topic_plan(kafka: KafkaSettings) -> list[TopicPlan]:
    """Every topic with its settings (pure: no I/O)."""
    plans = []
    for name in all_topic_names():
        configs: dict[str, str] = {}
        for prefix, retention in _RETENTION_MS.items():
            if name.startswith(prefix):
                configs["retention.ms"] = str(retention)
        plans.append(TopicPlan(name, kafka.partitions, kafka.replication_factor, configs))
    return plans


async def list_topics(kafka: KafkaSettings) -> set[str]:
    """Names of the topics that exist on the cluster."""
    admin = AIOKafkaAdminClient(**kafka.client_options())  # type: ignore[arg-type]
    try:
        await admin.start()
        return set(await admin.list_topics())
    except KafkaError as exc:
        raise TopicError(f"cannot list topics at {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()


async def create_topics(kafka: KafkaSettings) -> dict[str, str]:
    """Create the missing topics; returns ``{topic: "created" | "exists"}``. Safe to repeat."""
    admin = AIOKafkaAdminClient(**kafka.client_options())  # type: ignore[arg-type]
    result: dict[str, str] = {}
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = []
        for plan in topic_plan(kafka):
            if plan.name in existing:
                result[plan.name] = "exists"
            else:
                missing.append(
                    NewTopic(
                        plan.name,
                        plan.partitions,
                        plan.replication_factor,
                        topic_configs=plan.configs,
                    )
                )
        if missing:
            response = await admin.create_topics(missing)
            for topic, code, message in _topic_errors(response):
                if code == 0:
                    result[topic] = "created"
                elif code == TopicAlreadyExistsError.errno:
                    result[topic] = "exists"
                else:
                    raise TopicError(f"cannot create {topic}: error {code} {message}")
        await _wait_visible(admin, set(result))
    except KafkaError as exc:
        raise TopicError(f"cannot create topics at {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()
    return result


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    errors = getattr(response, "topic_errors", [])
    return [(e[0], e[1], e[2] if len(e) > 2 else None) for e in errors]


async def _wait_visible(admin: AIOKafkaAdminClient, names: set[str], timeout_s: float = 30) -> None:
    """Wait until the new topics show up in the metadata (creation is asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if names <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.2)
    raise TopicError(f"topics not visible after {timeout_s}s: {sorted(names)}")
