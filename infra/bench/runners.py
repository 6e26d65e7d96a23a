"""The four systems under test, each its own process, and how the bench sees each one.

* ``passthrough``: ``python -m infra.bench.passthrough`` between two bench topics;
* ``forward``: ``python -m infra.bench.forward worker``, a Faust agent that only forwards;
* ``skeleton``: ``python -m infra.bench.forward skeleton``, the pipeline's Kafka traffic
  (two hops, its records at their sizes, its window table) without its logic;
* ``pipeline``: the real ``python -m infra.cli worker`` with an app id, data directory and
  case store of its own, fed on ``intake.raw.api`` and read back on its output topics, and
  beside it ``python -m infra.cli record`` (the case store's writer) on the same data
  directory, whose CPU is reported apart.

Children get the bench's settings through ``INTAKE_*`` variables (each section as JSON) and
run in their own directory, so a ``.env`` file there cannot change them. The pipeline's
consumer groups (worker and recorder) start at the end of every contract topic, so they never
replay old traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

from infra.bench import BenchError
from infra.bench.forward import skeleton_topics, skeleton_work_pattern
from infra.bench.generate import GeneratedEvent
from infra.bench.measure import SEQ_HEADER, Subject, Watcher, partitions_of
from infra.settings import Settings
from schemas.common import Channel
from schemas.registry import DEADLETTER_TOPIC, all_topic_names, raw_topic
from sinks.recorder import CASES_TOPIC
from sinks.recorder import ready_file as recorder_ready_file
from streams.app import ready_file

__all__ = [
    "OUTPUT_PATTERN",
    "SYSTEMS",
    "ManagedProcess",
    "all_bench_topics",
    "bench_topics",
    "child_env",
    "commit_end_offsets",
    "jit_cpu_s",
    "process_cpu_s",
    "recorder_group",
    "start_subject",
    "stop_all",
]

SYSTEMS = ("passthrough", "forward", "skeleton", "pipeline")

#: The pipeline's outputs: every unit, district and outside body, emergencies and the review
#: queue (keys are case ids); ``units.responses`` is an input.
OUTPUT_PATTERN = (
    r"^(units\.(?!responses$)[^.]+|districts\.[^.]+|external\.[^.]+|intake\.(emergency|review))$"
)
#: Topics the worker writes but does not read (``intake.cases`` is the recorder's).
_WRITTEN_ONLY = re.compile(
    rf"{OUTPUT_PATTERN}|^intake\.(deadletter|alarms|replies|messages|cases)$|^bench\."
)
#: Sections every process needs alike; the others are per process (or unused by workers).
_PER_PROCESS = {"data_dir", "db", "blobs", "web", "connectors", "broker"}


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_s(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` stat file (of a process or one thread)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc/<pid>/stat``."""
    try:
        return _stat_cpu_s(Path(f"/proc/{pid}/stat"))
    except OSError as exc:
        raise BenchError(f"cannot read the CPU time of process {pid}: {exc}") from exc


#: What the JVM calls its JIT compiler threads (``/proc/<pid>/task/<tid>/comm``, cut to 15).
_JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")


def jit_cpu_s(pid: int) -> float | None:
    """CPU seconds the JIT compiler threads of the JVM ``pid`` have used; None when it has
    none to read (not a HotSpot JVM, not Linux, or gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    found: list[float] = []
    for task in tasks:
        try:
            if (task / "comm").read_text().startswith(_JIT_THREADS):
                found.append(_stat_cpu_s(task / "stat"))
        except OSError:
            continue  # a thread that ended meanwhile
    return sum(found) if found else None


def seq_token(record: ConsumerRecord[Any, Any]) -> bytes | None:
    """The ``bench.seq`` header a forwarding system passes through unchanged."""
    return next((value for key, value in record.headers if key == SEQ_HEADER), None)


def key_token(record: ConsumerRecord[Any, Any]) -> bytes | None:
    """The record key: the case id on the pipeline's output topics."""
    return record.key  # type: ignore[no-any-return]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the bench itself dies (Linux ``PR_SET_PDEATHSIG``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


class ManagedProcess:
    """A system under test: started, paused, resumed, measured and always stopped."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, ready: Path
    ) -> None:
        self.name, self.argv, self.env, self.cwd, self.ready = name, argv, env, cwd, ready
        self.log = cwd / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (the process must have been started)."""
        if self.popen is None:
            raise BenchError(f"{self.name} was not started")
        return self.popen.pid

    def start(self) -> None:
        """Start the process with its output in ``<cwd>/<name>.log``."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.ready.unlink(missing_ok=True)
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    def tail(self, lines: int = 30) -> str:
        """The end of the process's log, for error messages."""
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the log's tail when the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            code = self.popen.returncode
            raise BenchError(f"{self.name} exited with code {code}; its log ends:\n{self.tail()}")

    async def wait_ready(self, timeout_s: float) -> None:
        """Poll the ready file until this process (by pid) owns partitions; no fixed sleep."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(self.ready.read_text())
                if info.get("pid") == self.pid and info.get("partitions"):
                    return
            await asyncio.sleep(0.1)
        raise BenchError(f"{self.name} got no partitions within {timeout_s:.0f}s:\n{self.tail()}")

    def cpu_s(self) -> float:
        """CPU seconds used so far."""
        self.check_alive()
        return process_cpu_s(self.pid)

    def pause(self) -> None:
        """SIGSTOP: the process uses no CPU and reads nothing until resumed."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        os.kill(self.pid, signal.SIGCONT)


def bench_topics(run_id: str, system: str) -> tuple[str, str]:
    """Input and output topic of a forwarding system in one run."""
    return f"bench.{run_id}.{system}.in", f"bench.{run_id}.{system}.out"


def all_bench_topics(run_id: str, system: str) -> list[str]:
    """Every topic the bench creates for a system other than the pipeline in one run."""
    source, sink = bench_topics(run_id, system)
    extra = list(skeleton_topics(sink).values()) if system == "skeleton" else []
    return [source, sink, *extra]


def app_id(settings: Settings, run_id: str, system: str) -> str:
    """The Faust app id (and consumer group) of a system in one run."""
    return f"{settings.worker.app_id}-bench-{run_id}-{system}"


def recorder_group(app: str) -> str:
    """The consumer group of the pipeline's recorder in one run."""
    return f"{app}-recorder"


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def child_env(settings: Settings, data_dir: Path, app: str) -> dict[str, str]:
    """The environment of a child: no inherited ``INTAKE_*``, the bench's settings instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    for name in type(settings).model_fields:
        if name in _PER_PROCESS:
            continue
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            data = _reveal(value.model_dump())
            if name == "worker":
                data["app_id"] = app
            if name == "recorder":  # never the configured group: that one is production's
                data["group_id"] = recorder_group(app)
            env[f"INTAKE_{name.upper()}"] = json.dumps(to_jsonable_python(data))
        else:
            env[f"INTAKE_{name.upper()}"] = str(to_jsonable_python(value))
    env["INTAKE_DATA_DIR"] = str(data_dir)
    return env


async def commit_end_offsets(
    admin: AIOKafkaAdminClient, options: dict[str, Any], group: str, topics: Sequence[str]
) -> None:
    """Commit the current end of ``topics`` for ``group`` before any member joins it."""
    tps = await partitions_of(admin, topics)
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: ends[tp] for tp in tps})
    finally:
        await consumer.stop()


def _drained(
    admin: AIOKafkaAdminClient, watcher: Watcher, group: str, consumed: Callable[[str], bool]
) -> Callable[[], Awaitable[bool]]:
    """Whether ``group`` has committed the end of every partition it consumes."""
    coordinator: list[int] = []

    async def check() -> bool:
        if not coordinator:
            coordinator.append(await admin.find_coordinator(group))
        try:
            committed = await admin.list_consumer_group_offsets(group, coordinator[0])
        except KafkaError:
            coordinator.clear()  # moved or restarting: look it up again next time
            return False
        tps = [tp for tp in committed if consumed(tp.topic)]
        if not tps:
            return False
        ends = await watcher.end_offsets(tps)
        return all(committed[tp].offset >= ends[tp] for tp in tps)

    return check


def _all(*checks: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """True when every check is (evaluated in order, stopping at the first False)."""

    async def check() -> bool:
        for one in checks:
            if not await one():
                return False
        return True

    return check


def seq_tokens(events: Sequence[GeneratedEvent]) -> dict[bytes, int]:
    """A forwarder passes every event's ``bench.seq`` header through."""
    return {str(e.seq).encode(): i for i, e in enumerate(events)}


def case_tokens(events: Sequence[GeneratedEvent]) -> dict[bytes, int]:
    """The case each report would open (a re-delivery opens none of its own)."""
    return {e.case_id.encode(): i for i, e in enumerate(events) if e.kind != "exact"}


async def start_subject(
    system: str,
    settings: Settings,
    admin: AIOKafkaAdminClient,
    run_id: str,
    workdir: Path,
    started: list[ManagedProcess],
) -> Subject:
    """Start one system's process (added to ``started`` first) and its output reader."""
    options = dict(settings.kafka.client_options())
    cwd = workdir / system
    data_dir = cwd / "var"
    app = app_id(settings, run_id, system)
    env = child_env(settings, data_dir, app)
    python = sys.executable
    recorder: ManagedProcess | None = None
    if system == "pipeline":
        source = raw_topic(Channel.API)
        await commit_end_offsets(admin, options, app, all_topic_names())
        await commit_end_offsets(admin, options, recorder_group(app), [CASES_TOPIC])
        argv = [python, "-m", "infra.cli", "worker"]
        own = settings.model_copy(update={"data_dir": data_dir})
        ready = ready_file(own)
        record = [python, "-m", "infra.cli", "record"]
        recorder = ManagedProcess("recorder", record, env, cwd, recorder_ready_file(own))
        watcher = Watcher(options, OUTPUT_PATTERN, key_token, DEADLETTER_TOPIC)
        tokens, require_all = case_tokens, False

        def consumed(topic: str) -> bool:
            return not _WRITTEN_ONLY.match(topic)
    else:
        source, sink = bench_topics(run_id, system)
        if system == "passthrough":
            ready = cwd / "ready.json"
            argv = [python, "-m", "infra.bench.passthrough", "--input", source, "--output", sink]
            argv += ["--group", app, "--ready", str(ready)]
        else:
            ready = ready_file(settings.model_copy(update={"data_dir": data_dir}))
            command = "skeleton" if system == "skeleton" else "worker"
            argv = [python, "-m", "infra.bench.forward", command, "--input", source]
            argv += ["--output", sink]
        outputs = skeleton_work_pattern(sink) if system == "skeleton" else f"^{re.escape(sink)}$"
        watcher = Watcher(options, outputs, seq_token)
        tokens, require_all = seq_tokens, True
        hops = {source, skeleton_topics(sink)["cluster"]} if system == "skeleton" else {source}

        def consumed(topic: str) -> bool:
            return topic in hops

    data_dir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(system, argv, env, cwd, ready)
    drained = _drained(admin, watcher, app, consumed)
    for proc in (process, recorder):
        if proc is not None:
            started.append(proc)
            proc.start()
    if recorder is not None:  # drained also when the recorder committed all of intake.cases
        cases = _drained(admin, watcher, recorder_group(app), lambda t: t == CASES_TOPIC)
        drained = _all(drained, cases)
    subject = Subject(system, source, process, watcher, tokens, drained, require_all, recorder)
    try:
        await watcher.start(admin)
    except BaseException:
        await watcher.stop()
        raise
    return subject


def stop_all(processes: Sequence[ManagedProcess], grace_s: float = 30.0) -> None:
    """SIGTERM every process at once (SIGCONT first), SIGKILL whoever outlives ``grace_s``."""
    running = [p.popen for p in processes if p.popen is not None and p.popen.poll() is None]
    for popen in running:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signal.SIGCONT)
            popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for popen in running:
        try:
            popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    if any(p.popen is not None and p.popen.poll() is None for p in processes):
        raise BenchError("a system under test could not be stopped")
