"""The bundled single-node Apache Kafka: jars from Maven Central, KRaft combined mode.

Layout under the broker home (``<data_dir>/kafka`` by default)::

    lib/                 the broker's jars (``mvn dependency:copy-dependencies`` of the pom)
    config/              server.properties and log4j2.properties, written from the settings
    data/                the KRaft metadata and log directory, formatted once
    logs/server.log      the broker's own log; logs/stdout.log catches what the JVM prints
    broker.pid           the pid of the running broker

The broker is started detached (its own session), so it outlives the command that started
it; ``stop`` ends it with SIGTERM and, after a grace period, SIGKILL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaClient  # type: ignore[attr-defined]
from aiokafka.errors import KafkaError

from infra.errors import BrokerError
from infra.settings import Settings

__all__ = ["BrokerStatus", "BundledKafka", "broker_answers", "kafka_version", "new_cluster_id"]

POM = Path(__file__).with_name("kafka") / "pom.xml"
_MAIN_CLASS = "kafka.Kafka"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid()``, an id that starts with ``-`` is drawn again: the
    storage tool's argument parser would take ``--cluster-id -Xy…`` for an option (1 in 64).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_version(pom: Path = POM) -> str:
    """The pinned Kafka version, read from the pom (the single place it is written)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text(encoding="utf-8"))
    if not match:
        raise BrokerError(f"no <kafka.version> in {pom}")
    return match.group(1).strip()


async def _answers(bootstrap: str, timeout_s: float) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    quiet = logging.getLogger("aiokafka")  # a refused probe is an answer, not an error to log
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
        return bool(client.cluster.brokers())
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await client.close()
        quiet.setLevel(level)


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """Whether a Kafka broker answers a metadata request at ``bootstrap``."""
    return asyncio.run(_answers(bootstrap, timeout_s))


@dataclass(frozen=True)
class BrokerStatus:
    """What ``intake kafka status`` reports."""

    address: str
    version: str
    pid: int | None
    answering: bool
    log: Path

    @property
    def running(self) -> bool:
        """A process of ours is alive."""
        return self.pid is not None


class BundledKafka:
    """Fetch, configure, format, start, stop and inspect the bundled broker."""

    def __init__(self, settings: Settings, pom: Path = POM) -> None:
        self.settings = settings
        self.cfg = settings.broker
        self.pom = pom
        self.home = settings.broker_home
        self.lib = self.home / "lib"
        self.config_dir = self.home / "config"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.pidfile = self.home / "broker.pid"
        self.version = kafka_version(pom)

    @property
    def address(self) -> str:
        """host:port of the client listener."""
        return f"{self.cfg.host}:{self.cfg.port}"

    # -- fetch -----------------------------------------------------------------------------

    def _pom_stamp(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def fetched(self) -> bool:
        """The jars for exactly this pom are in ``lib/``."""
        stamp = self.lib / ".pom.sha256"
        return stamp.is_file() and stamp.read_text().strip() == self._pom_stamp()

    def fetch(self) -> None:
        """Copy the broker's jars from Maven Central (via the local Maven cache) into ``lib/``."""
        if self.fetched():
            return
        mvn = shutil.which(self.cfg.mvn)
        if mvn is None:
            raise BrokerError(f"Maven ({self.cfg.mvn}) is not installed; it fetches Kafka's jars")
        staging = self.home / "lib.incoming"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(self.pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise BrokerError(
                f"mvn could not fetch Kafka {self.version}:\n{done.stdout}{done.stderr}"
            )
        (staging / ".pom.sha256").write_text(self._pom_stamp())
        shutil.rmtree(self.lib, ignore_errors=True)
        staging.rename(self.lib)

    # -- configure and format --------------------------------------------------------------

    def server_properties(self) -> str:
        """The broker's configuration: one node, broker and controller, loopback only."""
        c = self.cfg
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={c.host}:{c.controller_port}",
                f"listeners=PLAINTEXT://{c.host}:{c.port},CONTROLLER://{c.host}:{c.controller_port}",
                f"advertised.listeners=PLAINTEXT://{c.host}:{c.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data}",
                f"num.partitions={self.settings.kafka.partitions}",
                "default.replication.factor=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.retention.hours=168",
                "",
            ]
        )

    def log4j_properties(self) -> str:
        """log4j2 configuration: the broker logs to ``logs/server.log``, rolled at 50 MB."""
        log = self.logs / "server.log"
        return "\n".join(
            [
                "status = warn",
                "appender.file.type = RollingFile",
                "appender.file.name = FILE",
                f"appender.file.fileName = {log}",
                f"appender.file.filePattern = {log}.%i",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                "appender.file.policies.type = Policies",
                "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                "appender.file.policies.size.size = 50MB",
                "appender.file.strategy.type = DefaultRolloverStrategy",
                "appender.file.strategy.max = 5",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = FILE",
                "logger.kafka.name = kafka",
                "logger.kafka.level = INFO",
                "logger.state.name = state.change.logger",
                "logger.state.level = WARN",
                "",
            ]
        )

    def configure(self) -> None:
        """Write the configuration files from the current settings."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "server.properties").write_text(self.server_properties())
        (self.config_dir / "log4j2.properties").write_text(self.log4j_properties())

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which(self.cfg.java)
        if java is None:
            raise BrokerError(f"Java ({self.cfg.java}) is not installed; Kafka needs Java 17+")
        return [
            java,
            f"-Xms{self.cfg.heap_mb}m",
            f"-Xmx{self.cfg.heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.config_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.lib}/*",
            main_class,
            *args,
        ]

    def formatted(self) -> bool:
        """The KRaft log directory has been formatted."""
        return (self.data / "meta.properties").is_file()

    def format(self) -> None:
        """Format the KRaft storage once, with a new cluster id."""
        if self.formatted():
            return
        cluster_id = new_cluster_id()
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.config_dir / "server.properties"),
            "--standalone",
        )
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{done.stdout}{done.stderr}")

    # -- process ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of our running broker, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        ours = _MAIN_CLASS.encode() in cmdline and str(self.config_dir).encode() in b" ".join(
            cmdline
        )
        if not ours or _is_zombie(pid):
            self.pidfile.unlink(missing_ok=True)
            return None
        return pid

    def status(self) -> BrokerStatus:
        """Whether our broker runs and whether a broker answers at the address."""
        return BrokerStatus(
            address=self.address,
            version=self.version,
            pid=self.pid(),
            answering=broker_answers(self.address),
            log=self.logs / "server.log",
        )

    def start(self) -> bool:
        """Start the broker and wait until it answers. Returns False when it already ran."""
        if self.pid() is not None:
            self._wait_ready()
            return False
        if broker_answers(self.address):
            raise BrokerError(
                f"another Kafka already answers at {self.address}; not starting a second one"
            )
        self.fetch()
        self.configure()
        self.format()
        stdout = (self.logs / "stdout.log").open("ab")
        with stdout:
            proc = subprocess.Popen(
                self._java(_MAIN_CLASS, str(self.config_dir / "server.properties")),
                stdout=stdout,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        try:
            self._wait_ready(proc)
        except BaseException:
            self.stop()
            raise
        return True

    def _wait_ready(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.cfg.start_timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with code {proc.returncode} while starting; see "
                    f"{self.logs / 'server.log'}:\n{self._tail()}"
                )
            if broker_answers(self.address, timeout_s=2.0):
                return
            time.sleep(0.3)
        raise BrokerError(
            f"Kafka did not answer at {self.address} within {self.cfg.start_timeout_s:.0f}s:\n"
            f"{self._tail()}"
        )

    def _tail(self, lines: int = 20) -> str:
        for name in ("stdout.log", "server.log"):
            path = self.logs / name
            if path.is_file() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> bool:
        """Stop our broker; no process is left behind. Returns False when none ran."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.stop_timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    if _is_zombie(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True
