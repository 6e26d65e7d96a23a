"""The operator-facing commands against real processes: the broker's life cycle, ``intake up``
and the intake API's refusals over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.services import ProductEnv, free_port, wait_until

pytestmark = pytest.mark.integration


def _intake(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _broker_pids(home: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and str(home).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_kafka_start_twice_status_and_stop_leave_no_process(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    home = tmp_path / "broker"
    port, controller = free_port(), free_port()
    env = kafka.env(
        INTAKE_BROKER__HOME=str(home),
        INTAKE_BROKER__PORT=str(port),
        INTAKE_BROKER__CONTROLLER_PORT=str(controller),
    )
    try:
        first = _intake(env, "kafka", "start")
        assert first.returncode == 0, first.stderr
        assert f"started at 127.0.0.1:{port}" in first.stdout
        assert (home / "logs" / "server.log").stat().st_size > 0  # log4j2 binding works

        second = _intake(env, "kafka", "start")
        assert second.returncode == 0 and "already running" in second.stdout
        assert len(_broker_pids(home)) == 1

        status = _intake(env, "kafka", "status")
        assert status.returncode == 0
        info = json.loads(status.stdout)
        assert info["answering"] and info["running"] and info["version"].startswith("4.")
    finally:
        stopped = _intake(env, "kafka", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert _broker_pids(home) == []
    after = _intake(env, "kafka", "status")
    assert after.returncode == 3 and not json.loads(after.stdout)["answering"]


def test_intake_up_reaches_ready_and_stops_everything_on_ctrl_c(
    kafka: ProductEnv, tmp_path: Path
) -> None:
    port = free_port()
    env = kafka.env(
        INTAKE_DATA_DIR=str(tmp_path / "var"),
        INTAKE_WEB__PORT=str(port),
        INTAKE_WORKER__APP_ID="intake-up-test",
    )
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            text = log.read_text(errors="replace")
            assert up.poll() is None, f"intake up exited:\n{text}"
            return "Ready." in text

        wait_until(ready, 120, "intake up to print Ready.")
        text = log.read_text()
        assert "(already running)" in text  # it used the session's broker, started no second one
        assert f"http://127.0.0.1:{port}/api/v1/intake" in text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        children = [int(p) for p in os.popen(f"pgrep -P {up.pid}").read().split()]
        assert "Recorder    : ready" in text
        assert len(children) == 4  # worker, recorder, web server, outbound sender
        commands = sorted(Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children)
        assert [c.split(b"\0")[2:4] for c in commands] == [
            [b"infra.cli", b"outbound"],
            [b"infra.cli", b"record"],
            [b"infra.cli", b"web"],
            [b"infra.cli", b"worker"],
        ]
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    time.sleep(0.5)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert "Stopped." in log.read_text()


async def _raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes over a plain TCP socket and return everything the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), timeout=30)
    writer.close()
    return answer


async def test_intake_api_refusals_over_a_real_socket(product: tuple[ProductEnv, Path]) -> None:
    env, data_dir = product
    port = free_port()
    env.start_web(data_dir, port, "real-token", INTAKE_WEB__MAX_BODY_BYTES="4096")
    url = f"http://127.0.0.1:{port}/api/v1/intake"
    good = {"source": "alo153", "text": "Feke yolunda heyelan var"}
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(url, json=good)).status_code == 401
        wrong = await client.post(url, json=good, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "real-token" not in wrong.text

        auth = {"Authorization": "Bearer real-token"}
        invalid = await client.post(url, json={"source": "alo153"}, headers=auth)
        assert invalid.status_code == 422 and "text" in invalid.text

        ok = await client.post(url, json=good, headers=auth)
        assert ok.status_code == 202

    request = (
        f"POST /api/v1/intake HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Authorization: Bearer real-token\r\nContent-Type: application/json\r\n"
    )
    # A declared length over the limit is refused before any body byte is read.
    declared = await _raw_http(port, (request + "Content-Length: 999999\r\n\r\n").encode())
    assert declared.startswith(b"HTTP/1.1 413")
    # A chunked body carries no length: the limit must hold while the body streams in.
    chunk = b"x" * 3000
    body = (
        b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(2)) + b"0\r\n\r\n"
    )
    streamed = await _raw_http(
        port, (request + "Transfer-Encoding: chunked\r\n\r\n").encode(), body
    )
    assert streamed.startswith(b"HTTP/1.1 413")
