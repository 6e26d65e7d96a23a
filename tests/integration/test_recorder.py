"""``intake record`` against the real broker: case events into SQLite, garbage to the
dead-letter topic, and a restart that reads nothing twice and stores nothing twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from infra.bench.measure import partitions_of
from infra.bench.runners import commit_end_offsets
from schemas.case import CaseEvent, CaseEventKind
from sinks.store import CaseStore
from tests.integration.kafka_io import produce
from tests.integration.services import ProductEnv, wait_until
from tests.sinks.test_store import T0, Case

pytestmark = pytest.mark.integration

CASES, DEADLETTER = "intake.cases", "intake.deadletter"
JSON = [("content-type", b"application/json")]


async def _read_to_end(bootstrap: str, topic: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record of ``topic`` from its beginning to its current end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        parts = await partitions_of(admin, [topic])
    finally:
        await admin.close()
    assert parts, f"no partitions of {topic}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: list[ConsumerRecord[Any, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


def _events(case: Case, n: int) -> list[CaseEvent]:
    return [case.created(), case.routed(T0 + timedelta(minutes=n))]


async def test_record_stores_cases_dead_letters_garbage_and_restarts_without_repeats(
    product: tuple[ProductEnv, Path],
) -> None:
    env, data_dir = product
    run = uuid.uuid4().hex[:8]
    app = f"recorder-test-{run}"
    # Its own group, starting at the topic's current end (the session's other tests wrote
    # intake.cases too, for case stores of their own).
    settings = env.settings(INTAKE_WORKER__APP_ID=app)
    options = dict(settings.kafka.client_options())
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await commit_end_offsets(admin, options, f"{app}-recorder", [CASES])
    finally:
        await admin.close()

    cases = [Case(f"wamid.rec-{run}-{i}") for i in range(3)]
    events = [e for i, case in enumerate(cases) for e in _events(case, i + 1)]
    recorder = env.start_recorder(data_dir, INTAKE_WORKER__APP_ID=app)
    await produce(env.bootstrap, CASES, [(e.case_id.encode(), e.to_bytes()) for e in events], JSON)
    garbage_key, garbage = cases[0].case_id.encode(), f"bozuk kayıt {run}".encode()
    await produce(env.bootstrap, CASES, [(garbage_key, garbage)], [("trace-id", run.encode())])

    store = CaseStore(f"sqlite:///{data_dir / 'cases.sqlite3'}")
    wait_until(lambda: store.count_events() == 6, 60, "six events in the case store")
    for case in cases:
        assert [e.kind for e in store.history(case.case_id)] == [
            CaseEventKind.CREATED,
            CaseEventKind.ROUTED,
        ]
        record = store.get_case(case.case_id)
        assert record is not None and record.unit == "su-kanalizasyon"

    def dead(seen: list[ConsumerRecord[Any, Any]]) -> list[ConsumerRecord[Any, Any]]:
        return [r for r in seen if r.value == garbage]

    (letter,) = dead(await _read_to_end(env.bootstrap, DEADLETTER))
    assert letter.key == garbage_key
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["trace-id"] == run  # the original headers travel with the bytes
    assert headers["__intake.errors.stage"] == "record"
    assert headers["__intake.errors.topic"] == CASES
    assert headers["__intake.errors.exception.class"].endswith("ValidationError")

    recorder.stop()
    assert recorder.popen.returncode == 0, recorder.tail()
    assert "+905321234567" not in recorder.log.read_text()  # no citizen data in its log

    # The same events once more (a producer's retry), then a new one on the garbage's partition.
    await produce(env.bootstrap, CASES, [(e.case_id.encode(), e.to_bytes()) for e in events], JSON)
    answered = cases[0].plain(CaseEventKind.ANSWERED, T0 + timedelta(days=2))
    await produce(env.bootstrap, CASES, [(garbage_key, answered.to_bytes())], JSON)
    env.start_recorder(data_dir, INTAKE_WORKER__APP_ID=app)

    wait_until(
        lambda: CaseEventKind.ANSWERED in {e.kind for e in store.history(cases[0].case_id)},
        60,
        "the answer recorded after the restart",
    )
    assert store.count_events() == 7 and store.count_cases() == 3
    assert store.get_answer(cases[0].case_id) is not None
    # The garbage was committed before the stop: it is not read, nor dead-lettered, again.
    assert len(dead(await _read_to_end(env.bootstrap, DEADLETTER))) == 1
    store.close()
