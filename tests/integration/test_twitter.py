"""``intake connector twitter`` as a process against the real broker and a fake X API v2 on a
loopback socket: mentions reach ``intake.raw.twitter`` exactly once, across a SIGKILL in the
middle of a pagination run too."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from schemas.raw import RawEvent
from tests.connectors.test_twitter import ACCOUNT_ID, COMPLAINTS, TOKEN, FakeXApi, complaints
from tests.integration.kafka_io import read_until
from tests.integration.services import Proc, ProductEnv, wait_until

pytestmark = pytest.mark.integration

RAW = "intake.raw.twitter"


def _start(env: ProductEnv, api: FakeXApi, data_dir: Path, token: str = TOKEN) -> Proc:
    return env.start(
        "twitter",
        ["connector", "twitter"],
        INTAKE_DATA_DIR=str(data_dir),
        INTAKE_CONNECTORS__TWITTER__BEARER_TOKEN=token,
        INTAKE_CONNECTORS__TWITTER__USER_ID=ACCOUNT_ID,
        INTAKE_CONNECTORS__TWITTER__API_BASE_URL=api.url,
        INTAKE_CONNECTORS__TWITTER__PAGE_SIZE="5",
        INTAKE_CONNECTORS__TWITTER__POLL_INTERVAL_S="0.5",
        INTAKE_CONNECTORS__BACKOFF_INITIAL_S="0.2",
    )


def _count(records: list[Any], ids: list[str]) -> Counter[str]:
    wanted = set(ids)
    return Counter(k for r in records if (k := r.key.decode()) in wanted)


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record on ``topic`` from the beginning up to its end offsets right now."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()  # no group: every partition of the topic is assigned
    try:
        tps = list(consumer.assignment())
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: list[Any] = []
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen.extend(records)
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return seen
    finally:
        await consumer.stop()


def _exit_code(proc: Proc, timeout_s: float = 30) -> int:
    proc.popen.wait(timeout=timeout_s)
    return int(proc.popen.returncode)


async def test_mentions_reach_the_raw_topic_once_and_the_next_cycle_asks_since_the_newest(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    with FakeXApi() as api:
        first = [
            api.mention(COMPLAINTS[0], photo=True, place=True),
            *complaints(api, 2),
        ]
        proc = _start(kafka, api, tmp_path / "var")
        try:
            await read_until(
                kafka.bootstrap, [RAW], lambda seen: len(_count(seen, first)) == 3, timeout_s=90
            )
            wait_until(
                lambda: any(r.params.get("since_id") == first[-1] for r in api.mention_requests()),
                30,
                "a poll since the newest mention",
            )
            later = complaints(api, 2)
            await read_until(
                kafka.bootstrap, [RAW], lambda seen: len(_count(seen, later)) == 2, timeout_s=60
            )
        finally:
            proc.stop()
        assert proc.popen.returncode == 0, proc.tail()

    records = await _read_all(kafka.bootstrap, RAW)
    assert _count(records, first + later) == dict.fromkeys(first + later, 1)
    since = [r.params.get("since_id") for r in api.mention_requests()]
    assert since[0] is None and first[-1] in since
    assert since.index(first[-1]) > 0  # the second cycle asks since the first one's newest
    event = next(RawEvent.from_bytes(r.value) for r in records if r.key == first[0].encode())
    assert event.payload["data"]["text"] == COMPLAINTS[0]
    assert event.payload["includes"]["media"][0]["type"] == "photo"
    assert event.payload["includes"]["places"][0]["full_name"] == "Seyhan, Türkiye"


async def test_killed_in_the_middle_of_a_pagination_run_the_restart_loses_and_repeats_nothing(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    with FakeXApi() as api:
        ids = complaints(api, 40)
        api.hold_pages_from(15)  # pages 1-3 are served, page 4 hangs: the crash comes then
        proc = _start(kafka, api, data_dir)
        try:
            await read_until(
                kafka.bootstrap, [RAW], lambda seen: len(_count(seen, ids)) >= 15, timeout_s=90
            )
            assert api.held.wait(timeout=30)
            proc.kill()
        finally:
            proc.stop()
        api.release()
        newer = complaints(api, 2)  # mentions that arrive while the connector is down

        again = _start(kafka, api, data_dir)
        try:
            await read_until(
                kafka.bootstrap,
                [RAW],
                lambda seen: len(_count(seen, ids + newer)) == 42,
                timeout_s=90,
            )
            wait_until(
                lambda: any(r.params.get("since_id") == newer[-1] for r in api.mention_requests()),
                30,
                "the cycle's end: a poll since the newest mention",
            )
        finally:
            again.stop()
        assert again.popen.returncode == 0, again.tail()

    records = await _read_all(kafka.bootstrap, RAW)
    assert _count(records, ids + newer) == dict.fromkeys(ids + newer, 1), "each tweet once"
    starts = [r.params for r in api.mention_requests() if "pagination_token" not in r.params]
    assert "since_id" not in starts[1]  # the restart began again from the old cursor


async def test_a_refused_bearer_token_ends_the_process_with_exit_code_78(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    with FakeXApi() as api:
        complaints(api, 1)
        proc = _start(kafka, api, tmp_path / "var", token="revoked-" + TOKEN)
        try:
            code = await asyncio.to_thread(_exit_code, proc, 60)
        finally:
            proc.stop()
        assert code == 78, proc.tail()  # EX_CONFIG: not restarted by intake up
        assert "authentication failed" in proc.tail() and "Traceback" not in proc.tail()
        assert {r.status for r in api.requests} == {401}
