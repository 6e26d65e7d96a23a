"""``intake bench`` end to end on the session broker: a tiny run, every field reported.

No timing is asserted (speed is measured by the command, never by tests); only that the four
systems ran, reported positive numbers and left no process or bench topic behind.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.bench.cli import run_bench
from infra.bench.runners import jit_cpu_s
from infra.broker import BundledKafka
from tests.integration.services import ProductEnv, wait_until

pytestmark = pytest.mark.integration

SYSTEMS = ("passthrough", "forward", "skeleton", "pipeline")
POSITIVE = ("events_per_s", "cpu_us_per_event", "latency_p50_ms", "latency_p99_ms")


def _our_children() -> list[str]:
    """Command lines of live child processes of this process started by the bench."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and "infra." in cmdline:
            found.append(cmdline)
    return found


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_tiny_bench_reports_every_field(kafka: ProductEnv, tmp_path: Path) -> None:
    settings = kafka.settings(INTAKE_DATA_DIR=str(tmp_path / "var"))
    out, log = io.StringIO(), io.StringIO()

    # 3,000 events: the passthrough's CPU (~15 µs an event) must span several of the
    # kernel's 10 ms accounting ticks to read as more than zero.
    began = time.monotonic()
    summary = run_bench(
        settings, rounds=1, events=3000, rate=20, duration_s=3, json=True, out=out, log=log
    )
    took = time.monotonic() - began

    assert json.loads(out.getvalue()) == json.loads(json.dumps(summary))
    run = summary["run"]
    assert run["rounds"] == 1 and run["events"] == 3000 and run["rate"] == 20
    assert run["bootstrap"] == kafka.bootstrap and run["bundled_broker"] is False
    assert run["broker_warm_up"] is None  # a configured broker is taken as it is
    assert run["partitions"] == 3 and run["cpus"] >= 1
    assert list(summary["systems"]) == list(SYSTEMS)
    for name in SYSTEMS:
        entry = summary["systems"][name]
        for field in (*POSITIVE, "ratio_to_passthrough"):
            assert entry[field] > 0, (name, field, entry[field])
        assert "added_latency_p99_ms" in entry
        (measured,) = entry["rounds"]
        assert measured["events"] == 3000
        # timed by the outputs' own timestamps: a span inside the whole run's
        assert 0.001 < measured["elapsed_s"] < took and measured["outputs"] > 0
        assert measured["latency"]["samples"] > 0 and measured["latency"]["rate"] == 20
        assert measured["latency"]["max_ms"] >= measured["latency"]["p99_ms"] > 0
    assert summary["systems"]["passthrough"]["ratio_to_passthrough"] == 1.0
    # a forwarder copies every event, the skeleton routes every one (it decides nothing);
    # the pipeline may merge duplicates
    assert summary["systems"]["forward"]["rounds"][0]["outputs"] >= 3000
    assert summary["systems"]["skeleton"]["rounds"][0]["outputs"] >= 3000
    assert summary["systems"]["pipeline"]["rounds"][0]["outputs"] > 0
    # the pipeline's recorder (intake record) is measured apart from the worker
    pipeline = summary["systems"]["pipeline"]
    assert pipeline["recorder_cpu_us_per_event"] > 0
    assert pipeline["rounds"][0]["recorder_cpu_us_per_event"] > 0
    for name in ("passthrough", "forward", "skeleton"):
        assert "recorder_cpu_us_per_event" not in summary["systems"][name]
        assert summary["systems"][name]["rounds"][0]["recorder_cpu_us_per_event"] is None
    assert [t["target"] for t in summary["targets"]] == [
        "full pipeline events/s per worker",
        "forwarding agent / passthrough",
        "full pipeline end-to-end p99 ms",
    ]
    assert all(isinstance(t["met"], bool) and t["value"] > 0 for t in summary["targets"])
    assert "round 1/1 pipeline" in log.getvalue()

    assert _our_children() == []
    prefix = f"bench.{run['run_id']}."
    wait_until(
        lambda: not [t for t in asyncio.run(_topics(kafka.bootstrap)) if t.startswith(prefix)],
        30,
        "the bench topics to be deleted",
    )


def test_table_output_names_each_system(kafka: ProductEnv, tmp_path: Path) -> None:
    settings = kafka.settings(INTAKE_DATA_DIR=str(tmp_path / "var"))
    out = io.StringIO()
    run_bench(
        settings,
        rounds=1,
        events=100,
        rate=20,
        duration_s=1,
        systems=["passthrough"],
        out=out,
        log=io.StringIO(),
    )
    table = out.getvalue()
    assert "events/s" in table and "CPU µs/event" in table and "p99 ms" in table
    assert "recorder µs/event" in table
    assert "passthrough" in table
    assert _our_children() == []


def test_jit_compiler_time_of_the_broker_is_read(kafka: ProductEnv) -> None:
    # What the bench's broker warm-up watches: the JVM's compiler threads have worked by
    # the time the session broker served the suite; a Python process has none.
    pid = BundledKafka(kafka.settings()).pid()
    assert pid is not None
    compiled = jit_cpu_s(pid)
    assert compiled is not None and compiled > 0
    assert jit_cpu_s(os.getpid()) is None
