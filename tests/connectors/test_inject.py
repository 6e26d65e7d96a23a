"""Injecting a JSON-lines file: good lines to ``intake.raw.api``, bad ones to the dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.errors import PublishFailed, RejectedLines
from connectors.inject import inject_file
from connectors.publisher import MemoryPublisher
from schemas.ids import is_tracking_number, message_id, tracking_number
from schemas.raw import ApiSource, ApiSubmission, RawEvent
from schemas.registry import DEADLETTER_TOPIC

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "raw_events.jsonl"
RAW_API = "intake.raw.api"
NOW = datetime(2024, 6, 12, 9, 30, tzinfo=UTC)


@pytest.fixture
async def publisher() -> MemoryPublisher:
    started = MemoryPublisher()
    await started.start()
    return started


def line(**fields: object) -> str:
    return json.dumps({"source": "alo153", "text": "Çöpler alınmadı", **fields}, ensure_ascii=False)


async def test_the_shipped_samples_publish_twelve_valid_events(publisher: MemoryPublisher) -> None:
    numbers = await inject_file(SAMPLES, publisher, now=lambda: NOW)

    records = publisher.on(RAW_API)
    assert len(numbers) == len(records) == 12
    assert publisher.on(DEADLETTER_TOPIC) == []
    assert all(is_tracking_number(number) for number in numbers)
    assert len(set(numbers)) == 12
    events = [RawEvent.from_bytes(record.value) for record in records]
    submissions = [ApiSubmission.model_validate(event.payload) for event in events]
    assert {event.received_at for event in events} == {NOW}
    assert [record.key for record in records] == [event.provider_id for event in events]
    assert numbers == [tracking_number(message_id("api", e.provider_id)) for e in events]
    assert set(ApiSource) == {submission.source for submission in submissions}
    assert "cimer-2406128831457" in {event.provider_id for event in events}  # the line's "id"


async def test_injecting_the_same_file_again_gives_the_same_ids(
    publisher: MemoryPublisher,
) -> None:
    first = await inject_file(SAMPLES, publisher)
    second = await inject_file(SAMPLES, publisher)

    assert first == second
    keys = [record.key for record in publisher.records]
    assert keys[:12] == keys[12:]


async def test_bad_lines_go_to_the_dead_letter_topic_and_good_lines_still_go_through(
    tmp_path: Path, publisher: MemoryPublisher
) -> None:
    broken_json = '{"source": "alo153", "text": "su yok'
    unknown_source = line(source="facebook", id="fb-1")
    path = tmp_path / "batch.jsonl"
    path.write_text(
        "\n".join([line(id="ok-1"), broken_json, "", unknown_source, line()]) + "\n",
        encoding="utf-8",
    )

    with pytest.raises(RejectedLines) as caught:
        await inject_file(path, publisher)

    good = publisher.on(RAW_API)
    assert len(good) == 2
    assert good[0].key == "ok-1"
    assert caught.value.tracking_numbers == [
        tracking_number(message_id("api", record.key)) for record in good
    ]
    assert [number for number, _ in caught.value.rejected] == [2, 4]

    dead = publisher.on(DEADLETTER_TOPIC)
    assert [record.value for record in dead] == [
        broken_json.encode("utf-8"),
        unknown_source.encode("utf-8"),
    ]
    assert [record.key for record in dead] == ["batch.jsonl:2", "fb-1"]
    first, second = (dict(record.headers) for record in dead)
    assert first["__intake.errors.stage"] == b"inject"
    assert first["__intake.errors.source.file"] == str(path.resolve()).encode("utf-8")
    assert first["__intake.errors.source.line"] == b"2"
    assert first["__intake.errors.exception.class"] == b"json.decoder.JSONDecodeError"
    assert second["__intake.errors.source.line"] == b"4"
    assert second["__intake.errors.exception.class"].endswith(b".ValidationError")
    assert b"source" in second["__intake.errors.exception.message"]
    assert b"facebook" not in second["__intake.errors.exception.message"]  # no input values


async def test_a_line_that_is_not_an_object_is_a_dead_letter(
    tmp_path: Path, publisher: MemoryPublisher
) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('["not", "an", "object"]\n', encoding="utf-8")

    with pytest.raises(RejectedLines):
        await inject_file(path, publisher)

    [dead] = publisher.on(DEADLETTER_TOPIC)
    assert dict(dead.headers)["__intake.errors.exception.class"] == (
        b"connectors.errors.InvalidSubmission"
    )


async def test_a_publish_failure_is_raised_not_swallowed(
    tmp_path: Path, publisher: MemoryPublisher
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(line() + "\n", encoding="utf-8")
    publisher.fail_next()

    with pytest.raises(PublishFailed):
        await inject_file(path, publisher)
    assert publisher.records == []
