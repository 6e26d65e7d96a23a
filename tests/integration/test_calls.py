"""Alo 153 call records against the real broker: the sample drop file, ``POST /api/v1/calls``
over a real socket, and ``intake connector calls`` killed mid-file and started again."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from connectors.calls import build_calls_router, call_tracking_number, parse_cursor, run
from connectors.publisher import KafkaPublisher
from connectors.runtime import Delivery
from connectors.state import ConnectorState
from schemas.raw import RawEvent
from tests.integration.kafka_io import read_until
from tests.integration.services import Proc, ProductEnv, free_port, wait_until

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "calls"
SAMPLE = SAMPLES / "alo153-2026-03-02.csv"
MASTER = SAMPLES / "Master.csv"
RAW = "intake.raw.calls"
TOKEN = "calls-" + uuid.uuid4().hex


def _age(path: Path) -> None:
    """Make a dropped file look complete (not modified in the last second)."""
    old = time.time() - 60
    os.utime(path, (old, old))


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record on ``topic`` right now (from the beginning to the end offsets)."""
    # Subscribed so that start() fetches the topic's metadata; then the partitions are assigned.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert tps, f"no partitions known for {topic}"
        consumer.unsubscribe()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: list[Any] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


def _keys(records: list[Any], wanted: set[str]) -> Counter[str]:
    keys = (r.key.decode() for r in records if r.key)
    return Counter(key for key in keys if key in wanted)


async def test_the_sample_file_reaches_the_raw_topic_once_and_is_moved_aside(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(SAMPLE, drop)
    _age(drop / SAMPLE.name)
    with SAMPLE.open(encoding="utf-8") as handle:
        ids = {row["cagri_id"] for row in csv.DictReader(handle)}
    settings = kafka.settings(
        INTAKE_DATA_DIR=str(tmp_path / "var"),
        INTAKE_CONNECTORS__CALLS__DROP_DIR=str(drop),
        INTAKE_CONNECTORS__CALLS__CDR_FILE=str(MASTER),
        INTAKE_CONNECTORS__CALLS__POLL_INTERVAL_S="0.2",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        moved = drop / "islenen" / SAMPLE.name
        for _ in range(600):
            assert not task.done(), task
            if moved.exists():
                break
            await asyncio.sleep(0.1)
        assert moved.exists() and not (drop / SAMPLE.name).exists()
        await asyncio.sleep(1.0)  # a few more polls: nothing more may be published
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0

    records = await _read_all(kafka.bootstrap, RAW)
    assert len(ids) == 16 and _keys(records, ids) == Counter(dict.fromkeys(ids, 1))
    events = [RawEvent.from_bytes(r.value) for r in records if r.key.decode() in ids]
    assert all(e.payload["cdr"]["disposition"] == "ANSWERED" for e in events)


def test_calls_posted_over_http_reach_the_raw_topic(kafka: ProductEnv, tmp_path: Path) -> None:
    settings = kafka.settings(INTAKE_DATA_DIR=str(tmp_path / "var"), INTAKE_WEB__API_TOKEN=TOKEN)
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    state = ConnectorState(tmp_path / "calls-web.sqlite3")
    delivery = Delivery("calls-web", publisher, state)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(build_calls_router(settings, delivery))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    run_id = uuid.uuid4().hex[:12]
    calls = [
        {
            "cagri_id": f"HTTP-{run_id}-1",
            "arayan": "0555 000 00 41",
            "baslangic": "2026-03-02 14:05:00",
            "kategori": "Otobüs",
            "notlar": "Durakta 40 dakikadır otobüs gelmiyor.",
            "adres": "Barajyolu durağı, Çukurova",
            "hatta_cozuldu": "hayır",
        },
        {"call_id": f"HTTP-{run_id}-2", "notes": "Su kesintisi bilgisi verildi", "resolved": "1"},
    ]
    try:
        wait_until(lambda: server.started, 30, "uvicorn")
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/calls",
            json=calls,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        refused = httpx.post(f"http://127.0.0.1:{port}/api/v1/calls", json=calls, timeout=30)
    finally:
        server.should_exit = True
        thread.join(30)
        state.close()

    assert response.status_code == 202, response.text
    assert refused.status_code == 401
    ids = {c.get("cagri_id") or c["call_id"] for c in calls}
    assert sorted(response.json()["tracking_numbers"]) == sorted(map(call_tracking_number, ids))
    records = asyncio.run(
        read_until(kafka.bootstrap, [RAW], lambda seen: len(_keys(seen, ids)) == 2, 60)
    )
    events = {r.key.decode(): RawEvent.from_bytes(r.value) for r in records if r.key}
    first = events[f"HTTP-{run_id}-1"]
    assert first.payload["notes"] == calls[0]["notlar"]
    assert first.payload["caller"] == "0555 000 00 41"


def _start_connector(env: ProductEnv, root: Path, batch: int, **extra: str) -> Proc:
    """``intake connector calls`` with ``batch`` records a batch (1: a kill lands mid-file)."""
    return env.start(
        "calls-connector",
        ["connector", "calls"],
        INTAKE_CONNECTORS__CALLS__BATCH_SIZE=str(batch),
        **extra,
    )


def _cursor(database: Path) -> str | None:
    if not database.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
            row = db.execute("SELECT value FROM cursor WHERE name = 'calls'").fetchone()
    except sqlite3.OperationalError:  # the connector has not created its tables yet
        return None
    return row[0] if row else None


def test_a_killed_connector_resumes_mid_file_and_publishes_each_call_once(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:10]
    ids = [f"K{run_id}-{n:03d}" for n in range(200)]
    drop = tmp_path / "drop"
    drop.mkdir()
    name = f"alo153-{run_id}.csv"
    lines = ["call_id,caller,start,category,notes,address,resolved"]
    lines += [
        f"{call_id},0555 000 {n // 100 + 10} {n % 100:02d},"
        f"2026-03-02 {8 + n // 60:02d}:{n % 60:02d}:00,Yol,"
        f'"Asfaltta çukur, kayıt {n}",Kurttepe Mah. {n}. Sk.,{"evet" if n % 5 == 0 else "hayır"}'
        for n, call_id in enumerate(ids)
    ]
    (drop / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _age(drop / name)
    size = (drop / name).stat().st_size
    data_dir = tmp_path / "var"
    database = data_dir / "connectors" / "calls.sqlite3"
    extra = {
        "INTAKE_DATA_DIR": str(data_dir),
        "INTAKE_CONNECTORS__CALLS__DROP_DIR": str(drop),
        "INTAKE_CONNECTORS__CALLS__POLL_INTERVAL_S": "0.2",
    }
    wanted = set(ids)

    first = _start_connector(kafka, tmp_path, 1, **extra)
    try:

        def mid_file() -> bool:
            assert first.alive(), f"connector died:\n{first.tail()}"
            cursor = _cursor(database)
            return bool(cursor) and parse_cursor(cursor)[1] > size // 4

        wait_until(mid_file, 90, "a quarter of the file on the topic", every_s=0.005)
        first.kill()
        cursor = _cursor(database)
        assert cursor is not None and parse_cursor(cursor) < (name, size), cursor
        before = _keys(asyncio.run(_read_all(kafka.bootstrap, RAW)), wanted)
        assert 0 < len(before) < len(ids), len(before)
        assert max(before.values()) == 1

        second = _start_connector(kafka, tmp_path, 100, **extra)
        wait_until(
            lambda: (drop / "islenen" / name).exists() or not second.alive(),
            90,
            "the file moved aside",
        )
        assert second.alive(), second.tail()
        records = asyncio.run(
            read_until(kafka.bootstrap, [RAW], lambda seen: len(_keys(seen, wanted)) == 200, 60)
        )
        time.sleep(1.0)  # a few more polls: nothing more may be published
        second.stop()
        assert second.popen.returncode == 0, second.tail()
    finally:
        for proc in (p for p in kafka.procs if p.name == "calls-connector"):
            proc.stop()
        kafka.procs[:] = [p for p in kafka.procs if p.name != "calls-connector"]

    assert len(records) > 0
    counts = _keys(asyncio.run(_read_all(kafka.bootstrap, RAW)), wanted)
    assert counts == Counter(dict.fromkeys(ids, 1))
    assert not (drop / name).exists()
