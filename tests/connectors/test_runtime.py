"""The connector runtime with the in-memory publisher: delivery, outbox, dedup, runner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.errors import AuthenticationFailed, SourceUnavailable
from connectors.publisher import MemoryPublisher
from connectors.runtime import (
    EXIT_CONFIG,
    Batch,
    Delivery,
    Runner,
    dead_record,
    raw_record,
    silence_alarm,
)
from connectors.state import ConnectorState, OutRecord
from infra.settings import ConnectorSettings
from schemas.common import Channel
from schemas.ops import ChannelAlarm
from schemas.raw import RawEvent

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _raw(pid: str) -> OutRecord:
    event = RawEvent(channel="email", provider_id=pid, received_at=T0, payload={"n": pid})
    return raw_record(event)


@pytest.fixture
def state(tmp_path: Path) -> ConnectorState:
    return ConnectorState(tmp_path / "c.sqlite3")


@pytest.fixture
async def publisher() -> MemoryPublisher:
    pub = MemoryPublisher()
    await pub.start()
    return pub


async def test_deliver_publishes_then_saves_cursor(state, publisher) -> None:
    delivery = Delivery("imap", publisher, state, clock=lambda: T0)
    assert await delivery.deliver([_raw("a"), _raw("b")], cursor="INBOX:1:2") == "kafka"
    assert [r.key for r in publisher.on("intake.raw.email")] == ["a", "b"]
    assert state.cursor("imap") == "INBOX:1:2"


async def test_broker_down_keeps_records_and_cursor_in_outbox_then_drains_in_order(
    state, publisher
) -> None:
    delivery = Delivery("imap", publisher, state, clock=lambda: T0)
    publisher.fail_next(1)
    assert await delivery.deliver([_raw("a"), _raw("b")], cursor="c1") == "outbox"
    assert state.cursor("imap") == "c1"  # durable in the outbox: safe to move on
    assert state.pending_count() == 2 and publisher.records == []
    # while a backlog waits, new records queue behind it, never overtaking it
    assert await delivery.deliver([_raw("c")], cursor="c2") == "outbox"
    assert await delivery.drain() == 3
    assert [r.key for r in publisher.records] == ["a", "b", "c"]
    assert state.pending_count() == 0


async def test_outbox_survives_a_restart(tmp_path: Path, publisher) -> None:
    first = ConnectorState(tmp_path / "c.sqlite3")
    publisher.fail_next(1)
    await Delivery("imap", publisher, first).deliver([_raw("a")], cursor="c1")
    first.close()
    again = ConnectorState(tmp_path / "c.sqlite3")
    assert await Delivery("imap", publisher, again).drain() == 1
    assert publisher.records[0].key == "a"
    record = publisher.records[0]
    assert RawEvent.from_bytes(record.value).provider_id == "a"
    assert dict(record.headers)["content-type"] == b"application/json"


async def test_already_published_provider_ids_are_not_published_again(state, publisher) -> None:
    delivery = Delivery("imap", publisher, state)
    await delivery.deliver([_raw("a"), _raw("b")], cursor="c1")
    await delivery.deliver([_raw("b"), _raw("c"), _raw("c")], cursor="c2")  # a re-read batch
    assert [r.key for r in publisher.records] == ["a", "b", "c"]


async def test_dead_letter_records_keep_raw_bytes_and_say_where(state, publisher) -> None:
    record = dead_record("imap", "<x@y>", b"\xff\xfe broken", ValueError("bad MIME"), T0, uid=7)
    await Delivery("imap", publisher, state).deliver([record])
    (sent,) = publisher.on("intake.deadletter")
    headers = dict(sent.headers)
    assert sent.value == b"\xff\xfe broken"
    assert headers["__intake.errors.stage"] == b"connector.imap"
    assert headers["__intake.errors.source.uid"] == b"7"
    assert headers["__intake.errors.exception.class"] == b"builtins.ValueError"


class FakeConnector:
    """A scripted source: each fetch returns the next step (a Batch or an exception)."""

    name = "fake"
    channel = Channel.EMAIL

    def __init__(self, steps: list[Batch | Exception], stop: asyncio.Event) -> None:
        self.steps = steps
        self.stop = stop
        self.cursors: list[str | None] = []
        self.confirmed: list[Batch] = []
        self.opened = 0
        self.closed = 0

    async def open(self) -> None:
        self.opened += 1

    async def fetch(self, cursor: str | None) -> Batch:
        self.cursors.append(cursor)
        if not self.steps:
            self.stop.set()
            return Batch([])
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def confirm(self, batch: Batch) -> None:
        self.confirmed.append(batch)

    async def wait(self) -> None:
        await asyncio.sleep(0)

    async def close(self) -> None:
        self.closed += 1


def _settings() -> ConnectorSettings:
    return ConnectorSettings(backoff_initial_s=0.01, backoff_max_s=0.02, relay_interval_s=0.01)


async def test_runner_fetch_deliver_cursor_confirm_and_retry(state, publisher) -> None:
    stop = asyncio.Event()
    connector = FakeConnector(
        [
            Batch([_raw("a")], cursor="1", messages=1),
            SourceUnavailable("server restarting"),
            Batch([_raw("b")], cursor="2", messages=1),
        ],
        stop,
    )
    runner = Runner(connector, Delivery("fake", publisher, state), _settings())
    assert await runner.run(stop) == 0
    assert connector.cursors[:3] == [None, "1", "1"]  # the failed fetch did not move the cursor
    assert connector.opened == 2  # reconnected after the failure
    assert [r.key for r in publisher.records] == ["a", "b"]
    assert state.cursor("fake") == "2"
    assert state.health("fake").last_message_at is not None


async def test_runner_stops_with_78_on_authentication_failure(state, publisher) -> None:
    stop = asyncio.Event()
    connector = FakeConnector([AuthenticationFailed("LOGIN refused")], stop)
    runner = Runner(connector, Delivery("fake", publisher, state), _settings())
    assert await runner.run(stop) == EXIT_CONFIG == 78
    (alarm,) = publisher.on("intake.alarms")
    assert ChannelAlarm.from_bytes(alarm.value).kind == "auth-failed"


def test_silence_alarm_once_per_threshold(state) -> None:
    hour = timedelta(hours=1)
    assert silence_alarm("imap", Channel.EMAIL, state, hour, T0 + timedelta(minutes=59), T0) is None
    alarm = silence_alarm("imap", Channel.EMAIL, state, hour, T0 + 2 * hour, T0)
    assert alarm is not None and "2.0 saattir" in alarm.message
    state.mark("imap", alarm_at=T0 + 2 * hour)
    assert silence_alarm("imap", Channel.EMAIL, state, hour, T0 + 2.5 * hour, T0) is None
    state.mark("imap", message_at=T0 + 2.6 * hour)
    assert silence_alarm("imap", Channel.EMAIL, state, hour, T0 + 3 * hour, T0) is None
