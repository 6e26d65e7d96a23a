"""Every topic the worker reads or writes, declared once. Values are raw bytes: the agents
decode them with the schemas so that a bad payload reaches the dead-letter path."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from schemas.common import Channel
from schemas.registry import (
    ALARMS_TOPIC,
    CLUSTER_TOPIC,
    DEADLETTER_TOPIC,
    raw_topic,
    unit_topic,
)
from schemas.taxonomy import taxonomy

__all__ = ["Topics", "declare_topics"]


@dataclass(frozen=True)
class Topics:
    """Handles on the worker's topics."""

    raw: TopicT  # all intake.raw.<channel> topics as one channel
    messages: TopicT
    cluster: TopicT
    cases: TopicT
    deadletter: TopicT
    review: TopicT
    emergency: TopicT
    replies: TopicT
    responses: TopicT
    units: dict[str, TopicT]
    districts: dict[str, TopicT]
    external: dict[str, TopicT]
    alarms: TopicT

    def named(self, name: str) -> TopicT:
        """The declared topic called ``name`` (``KeyError`` for a topic not declared)."""
        fixed = {
            "intake.messages": self.messages,
            CLUSTER_TOPIC: self.cluster,
            "intake.cases": self.cases,
            "intake.review": self.review,
            "intake.emergency": self.emergency,
            "intake.replies": self.replies,
            "units.responses": self.responses,
        }
        if name in fixed:
            return fixed[name]
        family, _, code = name.partition(".")
        families = {"units": self.units, "districts": self.districts, "external": self.external}
        return families[family][code]


def declare_topics(app: faust.App) -> Topics:
    """Declare the topics on ``app`` (no I/O: Faust connects when the worker starts)."""

    def topic(*names: str) -> TopicT:
        return app.topic(*names, key_serializer="raw", value_serializer="raw")

    tax = taxonomy()
    return Topics(
        raw=topic(*(raw_topic(channel) for channel in Channel)),
        messages=topic("intake.messages"),
        cluster=topic(CLUSTER_TOPIC),
        cases=topic("intake.cases"),
        deadletter=topic(DEADLETTER_TOPIC),
        review=topic("intake.review"),
        emergency=topic("intake.emergency"),
        replies=topic("intake.replies"),
        responses=topic("units.responses"),
        units={code: topic(unit_topic(code)) for code in tax.units},
        districts={code: topic(f"districts.{code}") for code in tax.districts},
        external={code: topic(f"external.{code}") for code in tax.bodies},
        alarms=topic(ALARMS_TOPIC),
    )
