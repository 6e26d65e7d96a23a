"""Operational events for the on-call engineer (``intake.alarms``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.common import Channel, Contract, UtcDateTime

__all__ = ["AlarmKind", "ChannelAlarm"]


class AlarmKind(StrEnum):
    """What is wrong with a channel."""

    SILENT = "silent"  # no message for longer than the setting
    AUTH_FAILED = "auth-failed"  # the provider refused our credentials; the connector stopped
    UNAVAILABLE = "unavailable"  # the source keeps failing; the connector keeps retrying
    OUTBOX_BACKLOG = "outbox-backlog"  # Kafka unreachable; records wait in the local outbox


class ChannelAlarm(Contract):
    """A channel needs a person. Key on the topic: ``connector``."""

    schema_version: Literal[1] = 1
    alarm_id: str
    connector: str
    channel: Channel
    kind: AlarmKind
    message: str = Field(description="Turkish, for the operators")
    last_success_at: UtcDateTime | None = None
    last_message_at: UtcDateTime | None = None
    raised_at: UtcDateTime
