"""End to end against the real broker: HTTP intake → unit topic and case store, dead-lettering,
and crash safety under SIGKILL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas.raw import RawEvent
from schemas.registry import unit_topic
from schemas.taxonomy import taxonomy
from schemas.work import UnitWorkItem
from sinks.store import CaseStore
from tests.integration.kafka_io import produce, read_until
from tests.integration.services import ProductEnv, free_port, wait_until

pytestmark = pytest.mark.integration

UNIT_TOPICS = [unit_topic(code) for code in taxonomy().units]
#: Every topic a case can be routed to: units, district municipalities, outside bodies.
ROUTE_TOPICS = [
    *UNIT_TOPICS,
    *(f"districts.{code}" for code in taxonomy().districts),
    *(f"external.{code}" for code in taxonomy().bodies),
]
TOKEN = "test-token-" + uuid.uuid4().hex


def _store(data_dir: Path) -> CaseStore:
    return CaseStore(f"sqlite:///{data_dir / 'cases.sqlite3'}")


def _raw(provider_id: str, text: str) -> bytes:
    return RawEvent(
        channel="api",
        provider_id=provider_id,
        received_at=datetime.now(UTC),
        payload={"source": "alo153", "text": text},
    ).to_bytes()


async def test_http_intake_reaches_unit_topic_and_case_store(
    product: tuple[ProductEnv, Path],
) -> None:
    env, data_dir = product
    env.start_worker(data_dir)
    port = free_port()
    env.start_web(data_dir, port, TOKEN)

    # A street and a citizen of its own: the session's other tests report similar problems,
    # and the worker would rightly attach this report to theirs.
    street, line = 60000 + uuid.uuid4().int % 9999, uuid.uuid4().int % 10_000
    submission = {
        "source": "saha",
        "text": f"Seyhan Reşatbey Mahallesi {street} Sokak'ta su borusu patladı, sokak göl oldu. "
        f"Beni 0532 111 {line // 100:02d} {line % 100:02d}'ten arayabilirsiniz.",
        "citizen": {"name": "Ayşe Yılmaz", "phone": f"+90532111{line:04d}"},
        "location": {"lat": 36.9914, "lon": 35.3308, "address": "Reşatbey Mah., Seyhan/Adana"},
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post(
            "/api/v1/intake", json=submission, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 202, response.text
    tracking = response.json()["tracking_number"]

    records = await read_until(
        env.bootstrap,
        UNIT_TOPICS,
        lambda seen: any(r.key == tracking.encode() for r in seen),
        timeout_s=60,
    )
    record = next(r for r in records if r.key == tracking.encode())
    assert record.topic == "units.su-kanalizasyon"
    item = UnitWorkItem.model_validate_json(record.value)
    assert item.case_id == tracking and item.unit == "su-kanalizasyon"
    spoken = f"0532 111 {line // 100:02d} {line % 100:02d}"
    assert spoken in submission["text"] and spoken not in item.problem  # not the citizen's
    assert "Ayşe" not in record.value.decode()
    assert item.location is not None and item.location.lat == pytest.approx(36.9914)

    store = _store(data_dir)
    case = wait_until(lambda: store.get_case(tracking), 30, "the case in the store")
    assert case.unit == "su-kanalizasyon"
    kinds = wait_until(
        lambda: (
            [e.kind.value for e in store.history(tracking)] == ["created", "routed"]
            and ["created", "routed"]
        ),
        30,
        "the case's history: created, routed",
    )
    assert kinds == ["created", "routed"]


async def test_malformed_event_is_dead_lettered_and_next_event_flows(
    product: tuple[ProductEnv, Path],
) -> None:
    env, data_dir = product
    env.start_worker(data_dir)
    bad_key = f"bad-{uuid.uuid4()}".encode()
    good_id = f"good-{uuid.uuid4()}"
    bad_value = b'{"channel": "api", "provider_id": "x", "payload": '  # truncated JSON
    await produce(env.bootstrap, "intake.raw.api", [(bad_key, bad_value)])
    await produce(
        env.bootstrap,
        "intake.raw.api",
        [
            (
                good_id.encode(),
                _raw(good_id, "Seyhan Gürselpaşa'da sular 2 gündür kesik, ASKİ açmıyor"),
            )
        ],
    )

    dead = await read_until(
        env.bootstrap, ["intake.deadletter"], lambda s: any(r.key == bad_key for r in s), 60
    )
    record = next(r for r in dead if r.key == bad_key)
    assert record.value == bad_value  # the original bytes, untouched
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["__intake.errors.topic"] == "intake.raw.api"
    assert headers["__intake.errors.stage"] == "intake"
    assert int(headers["__intake.errors.partition"]) in range(3)
    assert int(headers["__intake.errors.offset"]) >= 0
    assert headers["__intake.errors.exception.class"].endswith("ValidationError")
    assert "Invalid JSON" in headers["__intake.errors.exception.message"]

    from schemas.ids import message_id, tracking_number

    case_id = tracking_number(message_id("api", good_id)).encode()
    units = await read_until(
        env.bootstrap, UNIT_TOPICS, lambda s: any(r.key == case_id for r in s), 60
    )
    assert next(r for r in units if r.key == case_id).topic == "units.su-kanalizasyon"


async def test_sigkill_mid_stream_loses_nothing_and_stores_each_case_once(
    product: tuple[ProductEnv, Path],
) -> None:
    from schemas.ids import message_id, tracking_number

    env, data_dir = product
    run = uuid.uuid4().hex[:8]
    texts = [
        "Yüreğir'de çöpler üç gündür alınmadı, konteyner taştı",
        "Çukurova Turgut Özal Bulvarı'nda asfalt çukur, araba lastiği patladı",
        "Sarıçam'da sokak köpekleri çocuklara saldırıyor",
        "Seyhan'da sular kesik, ASKİ'ye ulaşamıyoruz",
    ]
    ids = [f"crash-{run}-{i:04d}" for i in range(1000)]
    expected = {tracking_number(message_id("api", pid)) for pid in ids}
    await produce(
        env.bootstrap,
        "intake.raw.api",
        # Distinct problems (building numbers differ): identical texts would rightly cluster.
        [
            (pid.encode(), _raw(pid, f"{texts[i % len(texts)]}, bina no {1000 + i}"))
            for i, pid in enumerate(ids)
        ],
    )

    def ours(seen: list) -> set[str]:
        return {r.key.decode() for r in seen if r.key and r.key.decode() in expected}

    worker = env.start_worker(data_dir)
    first = await read_until(env.bootstrap, ROUTE_TOPICS, lambda s: len(ours(s)) >= 50, 60)
    worker.kill()
    delivered_before_kill = len(ours(first))
    assert delivered_before_kill < len(expected), "the worker finished before it was killed"

    env.start_worker(data_dir)
    everything = await read_until(
        env.bootstrap, ROUTE_TOPICS, lambda s: ours(s) == expected, timeout_s=180
    )
    assert ours(everything) == expected

    store = _store(data_dir)

    def stored() -> int:
        return sum(1 for case_id in expected if store.get_case(case_id) is not None)

    wait_until(lambda: stored() == len(expected), 60, "all cases in the store")

    # each case: one 'created' and one 'routed' per destination; replays after the crash add none
    def routed_everywhere() -> bool:
        return all(
            "routed" in [e.kind.value for e in store.history(case_id)] for case_id in expected
        )

    wait_until(routed_everywhere, 60, "every case's routed events")
    assert store.count_cases() == len(expected)
    for case_id in expected:
        history = store.history(case_id)
        kinds = [e.kind.value for e in history]
        routes = [e.route.topic for e in history if e.route is not None]
        assert kinds.count("created") == 1, case_id
        assert len(routes) == len(set(routes)) >= 1, (case_id, routes)
    print(json.dumps({"delivered_before_kill": delivered_before_kill, "total": len(expected)}))


async def test_a_report_consumed_again_after_a_crash_is_routed_again_not_dropped(
    product: tuple[ProductEnv, Path],
) -> None:
    """The crash the cluster window guards against, made to happen: a report's window entry
    is in the changelog but its offset on ``intake.cluster`` was not committed (here: the
    group is rewound to it). The restarted worker must route it again; a window that took
    the report for a provider's second delivery would drop it, and a report whose routed
    records had not reached the broker before the crash would be lost."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    from schemas.ids import message_id, tracking_number
    from schemas.registry import CLUSTER_TOPIC

    env, data_dir = product
    street = 60000 + uuid.uuid4().int % 9999
    pid = f"replay-{uuid.uuid4().hex[:8]}"
    case_id = tracking_number(message_id("api", pid))
    text = f"Yüreğir Kiremithane Mahallesi {street} Sokak'ta çöpler bir haftadır alınmıyor"
    await produce(env.bootstrap, "intake.raw.api", [(pid.encode(), _raw(pid, text))])

    def routed(seen: list) -> list:
        return [r for r in seen if r.key == case_id.encode()]

    worker = env.start_worker(data_dir)
    await read_until(env.bootstrap, ROUTE_TOPICS, lambda s: len(routed(s)) >= 1, 60)
    worker.stop()  # a clean stop: the group is empty and its offsets can be moved

    reports = await read_until(
        env.bootstrap, [CLUSTER_TOPIC], lambda s: any(pid.encode() in r.value for r in s), 30
    )
    report = next(r for r in reports if pid.encode() in r.value)
    group = env.settings().worker.app_id
    rewind = AIOKafkaConsumer(bootstrap_servers=env.bootstrap, group_id=group)
    await rewind.start()
    try:
        tp = TopicPartition(CLUSTER_TOPIC, report.partition)
        rewind.assign([tp])
        # accepted once the group is empty: the stopped worker left it, or its session ended
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await rewind.commit({tp: report.offset})
                break
            except KafkaError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(1)
    finally:
        await rewind.stop()

    first = await read_until(env.bootstrap, ROUTE_TOPICS, lambda s: len(routed(s)) >= 1, 30)
    env.start_worker(data_dir)
    again = await read_until(
        env.bootstrap, ROUTE_TOPICS, lambda s: len(routed(s)) > len(routed(first)), 90
    )
    before, after = routed(first), routed(again)
    # the same work item again (stable ids), to the same topics: nothing new was decided
    assert {(r.topic, r.value) for r in after} == {(r.topic, r.value) for r in before}
