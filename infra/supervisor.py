"""``intake up``: the broker (when none answers), topics, the worker, the recorder (the case
store's writer), the web server and the outbound sender (replies, reminders) in one supervised
process group. A child that dies is restarted with backoff; Ctrl-C stops them all."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from connectors.runtime import EXIT_CONFIG
from infra.broker import BundledKafka, broker_answers
from infra.settings import Settings
from infra.topics import create_topics
from sinks.recorder import ready_file as recorder_ready_file
from sinks.store import CaseStore
from streams.app import ready_file

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


@dataclass
class _Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    #: An exit with this code means "do not restart me" (a connector whose credentials failed).
    final_exit_code: int | None = None
    given_up: bool = False
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", self.name, timeout_s)
            self.proc.kill()
            self.proc.wait()


class Supervisor:
    """Starts and watches the product's processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker = BundledKafka(settings)
        self.started_broker = False
        cli = [sys.executable, "-m", "infra.cli"]
        self.children = [
            _Child("worker", [*cli, "worker"]),
            _Child("recorder", [*cli, "record"]),  # intake.cases → the case store
            _Child("web", [*cli, "web"]),
            _Child("outbound", [*cli, "outbound"]),  # replies to citizens, reminders to units
        ]
        connectors = settings.connectors
        for name, section in (
            ("imap", connectors.imap),
            ("twitter", connectors.twitter),
            ("calls", connectors.calls),
        ):
            if section.configured:
                self.children.append(
                    _Child(
                        f"connector {name}",
                        [*cli, "connector", name],
                        final_exit_code=EXIT_CONFIG,
                    )
                )
        self._stopping = False

    def run(self) -> int:
        """Run until interrupted; returns the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._prepare()
            for child in self.children:
                child.start()
            self._wait_ready()
            while not self._stopping:
                self._watch()
                time.sleep(0.5)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self._shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stopping:
            return
        print(f"\nStopping ({signal.Signals(signum).name})…", flush=True)
        self._stopping = True
        raise KeyboardInterrupt

    def _prepare(self) -> None:
        s = self.settings
        if broker_answers(s.kafka.bootstrap_servers):
            print(f"Kafka       : {s.kafka.bootstrap_servers} (already running)", flush=True)
        else:
            print(f"Kafka       : starting bundled Apache Kafka {self.broker.version}…", flush=True)
            self.started_broker = self.broker.start()
            print(f"Kafka       : {self.broker.address} (log {self.broker.logs / 'server.log'})")
        created = asyncio.run(create_topics(s.kafka))
        new = sum(1 for state in created.values() if state == "created")
        print(f"Topics      : {len(created)} ({new} created)", flush=True)
        store = CaseStore(s.database_url, echo=s.db.echo)
        store.migrate()
        store.close()
        ready_file(s).unlink(missing_ok=True)
        recorder_ready_file(s).unlink(missing_ok=True)

    def _wait_ready(self) -> None:
        s = self.settings
        marker, recorder = ready_file(s), recorder_ready_file(s)
        health = f"http://{s.web.host}:{s.web.port}/healthz"
        deadline = time.monotonic() + 120
        worker_ok = recorder_ok = web_ok = False
        while time.monotonic() < deadline and not (worker_ok and recorder_ok and web_ok):
            self._watch()
            worker_ok = worker_ok or marker.is_file()
            recorder_ok = recorder_ok or recorder.is_file()
            web_ok = web_ok or _http_ok(health)
            time.sleep(0.3)
        if not (worker_ok and recorder_ok and web_ok):
            raise RuntimeError(
                f"not ready in 120s (worker={worker_ok}, recorder={recorder_ok}, web={web_ok})"
            )
        partitions = json.loads(marker.read_text()).get("partitions", "?")
        base = f"http://{s.web.host}:{s.web.port}"
        print(f"Worker      : ready, {partitions} partitions assigned", flush=True)
        print("Recorder    : ready, intake.cases → case store", flush=True)
        print(f"Intake API  : POST {base}/api/v1/intake (Bearer INTAKE_WEB__API_TOKEN)")
        print(f"Health      : {base}/healthz")
        print(f"Case store  : {_redact(s.database_url)}")
        print(f"Blob store  : {s.blob_dir}")
        names = [c.name for c in self.children if c.name.startswith("connector ")]
        print(f"Connectors  : {', '.join(names) or 'none configured'} (+ intake API)")
        print("Ready. Ctrl-C stops everything.", flush=True)

    def _watch(self) -> None:
        for child in self.children:
            if self._stopping or child.given_up or child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            if child.final_exit_code is not None and code == child.final_exit_code:
                child.given_up = True
                log.error("%s stopped (exit %s): fix its settings, then restart", child.name, code)
                continue
            backoff = min(30.0, 2.0 ** min(child.restarts, 5))
            log.error("%s exited with code %s; restarting in %.0fs", child.name, code, backoff)
            time.sleep(backoff)
            child.restarts += 1
            child.start()

    def _shutdown(self) -> None:
        self._stopping = True
        for child in reversed(self.children):
            child.stop()
        if self.started_broker:
            print("Stopping the bundled Kafka…", flush=True)
            self.broker.stop()
        print("Stopped.", flush=True)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
