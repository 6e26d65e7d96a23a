"""The clustering window survives a worker crash: it is rebuilt from its changelog topic.

A minimal Faust app (``tests.integration.cluster_app``) runs ``ClusterWindow.step`` on the real
broker.
Report A opens a case; the worker is SIGKILLed once A's window is in the changelog; a new worker,
with an empty data directory, must cluster B (the same problem, another channel and citizen)
and attach C (A's citizen again, on e-mail) under A's case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.case import Classification
from schemas.common import CitizenContact, GeoPoint
from schemas.ids import tracking_number
from schemas.message import CitizenMessage
from streams.cluster.logic import partition_key
from streams.routing import open_case
from streams.text import turkish_casefold
from tests.integration.kafka_io import produce, read_until
from tests.integration.services import REPO, Proc, ProductEnv, wait_until

pytestmark = pytest.mark.integration

WATER = Classification(unit="su-kanalizasyon", district="seyhan", confidence=0.8, method="test")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
#: The repartition key: the unit and district of every report here.
KEY = partition_key(WATER.unit, WATER.district, None).encode()


def _created(channel: str, pid: str, text: str, at: datetime, citizen: CitizenContact) -> bytes:
    mid = f"{channel}:{pid}"
    msg = CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel=channel,
        received_at=at,
        text=text,
        text_folded=turkish_casefold(text),
        citizen=citizen,
        location=GeoPoint(address="Reşatbey Mah., Seyhan/Adana"),
    )
    return open_case(msg, WATER).to_bytes()


async def _create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, n, 1) for name, n in topics.items()])
    finally:
        await admin.close()


def _start(env: dict[str, str], data_dir: Path, name: str) -> Proc:
    """Start the cluster app's worker and wait until it owns partitions (its ready file)."""
    data_dir.mkdir(parents=True)
    log = data_dir.parent / f"{name}.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.cluster_app", "worker", "-l", "info"],
            env={**env, "CLUSTER_APP_DATA_DIR": str(data_dir)},
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proc = Proc(name, popen, log)
    ready = data_dir / "ready.json"

    def is_ready() -> bool:
        assert proc.alive(), f"{name} died:\n{proc.tail()}"
        try:
            info = json.loads(ready.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return bool(info["pid"] == popen.pid and info["partitions"])

    wait_until(is_ready, 90, f"{name}'s partition assignment")
    return proc


def _decisions(records: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        body = json.loads(record.value)
        out.setdefault(body["message_id"], []).append(body)
    return out


async def test_cluster_window_survives_a_worker_crash(kafka: ProductEnv, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    app_id = f"cluster-restart-{run}"
    source, decided = f"test.cluster.{run}", f"test.cluster-decisions.{run}"
    await _create_topics(kafka.bootstrap, {source: 3, decided: 1})
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "CLUSTER_APP_"))},
        "PYTHONPATH": str(REPO),
        "CLUSTER_APP_BROKER": kafka.bootstrap,
        "CLUSTER_APP_ID": app_id,
        "CLUSTER_APP_SOURCE": source,
        "CLUSTER_APP_DECISIONS": decided,
    }
    phone = CitizenContact(name="Ayşe", phone="+905321112233")
    report_a = _created(
        "whatsapp", "SMa", "Reşatbey 62012 sokakta su borusu patlamış sular akıyo", T0, phone
    )
    case_a = tracking_number("whatsapp:SMa")

    first = _start(env, tmp_path / "w1", "cluster-worker-1")
    try:
        await produce(kafka.bootstrap, source, [(KEY, report_a)])
        seen = await read_until(
            kafka.bootstrap, [decided], lambda rs: "whatsapp:SMa" in _decisions(rs), 60
        )
        assert _decisions(seen)["whatsapp:SMa"][0] == {
            "message_id": "whatsapp:SMa",
            "kind": "new",
            "case_id": case_a,
            "reason": None,
            "score": None,
        }
        # Faust declared the changelog topic itself; wait until A's window is in it.
        await read_until(
            kafka.bootstrap,
            [f"{app_id}-cluster-window-changelog"],
            lambda rs: any(r.value and b"whatsapp:SMa" in r.value for r in rs),
            60,
        )
    finally:
        first.kill()  # SIGKILL: no clean shutdown, no final commit

    second = _start(env, tmp_path / "w2", "cluster-worker-2")  # empty data directory
    try:
        report_b = _created(
            "email",
            "b@x",
            "Sayın yetkili, Reşatbey Mahallesi 62012 Sokak'ta su borusu patladı, sular akıyor.",
            T0 + timedelta(hours=1),
            CitizenContact(name="Mehmet", email="mehmet@example.com"),
        )
        report_c = _created(
            "email",
            "c@x",
            "Dün bildirdiğim arıza hâlâ giderilmedi, su boşa akıyor",
            T0 + timedelta(hours=2),
            CitizenContact(email="ayse@example.com", phone="0 (532) 111 22 33"),
        )
        await produce(kafka.bootstrap, source, [(KEY, report_b), (KEY, report_c)])
        seen = await read_until(
            kafka.bootstrap,
            [decided],
            lambda rs: {"email:b@x", "email:c@x"} <= _decisions(rs).keys(),
            90,
        )
    except AssertionError:
        raise AssertionError(f"no decisions after the restart:\n{second.tail(60)}") from None
    finally:
        second.stop()

    decisions = _decisions(seen)
    b, c = decisions["email:b@x"][-1], decisions["email:c@x"][-1]
    assert (b["kind"], b["case_id"], b["reason"]) == ("cluster", case_a, "text")
    assert (c["kind"], c["case_id"]) == ("attach-same-citizen", case_a)
    # If A was replayed (its offset may not have been committed before the crash), the
    # recovered window recognised its own record and gave it the same verdict again: A
    # never opened a second case.
    again = [(d["kind"], d["case_id"]) for d in decisions["whatsapp:SMa"]][1:]
    assert again in ([], [("new", case_a)])
