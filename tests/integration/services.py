"""Real services for the integration tests: the bundled Kafka and the product's own processes.

Nothing here is mocked: the broker is the real Apache Kafka the product bundles, and the worker,
the recorder (the case store's writer) and the web server run as separate processes, exactly
as ``intake up`` starts them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Proc", "ProductEnv", "free_port", "need", "wait_until"]

REPO = Path(__file__).resolve().parents[2]


def need(condition: bool, reason: str) -> None:
    """Skip when a service is missing, except under CI, where a missing service is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@dataclass
class Proc:
    """A product process started for a test, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no clean-up, no final commit: a crash."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class ProductEnv:
    """Environment (settings) shared by the broker, the test and the processes it starts."""

    root: Path
    bootstrap: str
    variables: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    #: The live ``intake record`` of each data directory (one writer per case store).
    recorders: dict[Path, Proc] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        return {**base, **self.variables, **extra}

    def settings(self, **extra: str) -> Any:
        from infra.settings import Settings

        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env(**extra))
            return Settings(_env_file=None)  # type: ignore[call-arg]
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self, name: str, args: Iterable[str], **extra: str) -> Proc:
        log = self.root / f"{name}-{len(self.procs)}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            env=self.env(**extra),
            cwd=self.root,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(
        self, data_dir: Path, timeout_s: float = 90, *, recorder: bool = True, **extra: str
    ) -> Proc:
        """Start ``intake worker`` and wait until it owns its partitions (its ready file).

        Unless ``recorder`` is False, ``intake record`` runs beside it on the same data
        directory (started once: a worker restarted after a kill finds it still running),
        so the case store is written as under ``intake up``.
        """
        recorder_proc = None
        if recorder and not self._recorder_alive(data_dir):
            recorder_proc = self._launch_recorder(data_dir, **extra)
        ready = data_dir / "worker" / "ready.json"
        ready.unlink(missing_ok=True)
        proc = self.start("worker", ["worker"], INTAKE_DATA_DIR=str(data_dir), **extra)
        self._wait_ready(proc, ready, timeout_s)
        if recorder_proc is not None:
            self._wait_ready(recorder_proc, data_dir / "recorder" / "ready.json", timeout_s)
        return proc

    def start_recorder(self, data_dir: Path, timeout_s: float = 60, **extra: str) -> Proc:
        """Start ``intake record`` and wait until it owns its partitions (its ready file)."""
        proc = self._launch_recorder(data_dir, **extra)
        self._wait_ready(proc, data_dir / "recorder" / "ready.json", timeout_s)
        return proc

    def _recorder_alive(self, data_dir: Path) -> bool:
        running = self.recorders.get(data_dir)
        return running is not None and running.alive()

    def _launch_recorder(self, data_dir: Path, **extra: str) -> Proc:
        (data_dir / "recorder" / "ready.json").unlink(missing_ok=True)
        proc = self.start("recorder", ["record"], INTAKE_DATA_DIR=str(data_dir), **extra)
        self.recorders[data_dir] = proc
        return proc

    @staticmethod
    def _wait_ready(proc: Proc, ready: Path, timeout_s: float) -> None:
        """Wait until ``proc`` (by pid) wrote ``ready`` with partitions assigned to it."""

        def is_ready() -> bool:
            assert proc.alive(), f"{proc.name} died:\n{proc.tail()}"
            if not ready.is_file():
                return False
            try:
                info = json.loads(ready.read_text())
            except json.JSONDecodeError:
                return False
            return bool(info.get("pid") == proc.popen.pid and info.get("partitions"))

        wait_until(is_ready, timeout_s, f"the {proc.name}'s partition assignment")

    def start_web(
        self, data_dir: Path, port: int, token: str, timeout_s: float = 60, **extra: str
    ) -> Proc:
        """Start ``intake web`` on ``port`` and wait until it answers ``/readyz``."""
        proc = self.start(
            "web",
            ["web"],
            INTAKE_DATA_DIR=str(data_dir),
            INTAKE_WEB__PORT=str(port),
            INTAKE_WEB__API_TOKEN=token,
            **extra,
        )

        def ready() -> bool:
            assert proc.alive(), f"web server died:\n{proc.tail()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(ready, timeout_s, "the web server")
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        self.recorders.clear()
