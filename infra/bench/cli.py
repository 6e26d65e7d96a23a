"""``intake bench``: run the four systems in interleaved rounds and report medians.

For each round, for each system: a throughput run (``events`` pre-loaded while the system is
paused) and a latency run (``rate`` events/s for ``duration_s``). The configured broker is
used when it answers; otherwise the bundled Kafka is started on free ports in a temporary
directory and stopped at the end. Bench topics, the Faust apps' internal topics and every
process started are removed or stopped at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json import dumps
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.bench import BenchError
from infra.bench.generate import GeneratedEvent, generate
from infra.bench.measure import (
    BrokerWarmUp,
    Subject,
    measure_latency,
    measure_throughput,
    warm_broker,
    warm_up,
)
from infra.bench.report import RoundResult, render_table, summarize
from infra.bench.runners import (
    SYSTEMS,
    ManagedProcess,
    all_bench_topics,
    app_id,
    jit_cpu_s,
    start_subject,
    stop_all,
)
from infra.broker import BundledKafka, broker_answers
from infra.settings import Settings
from infra.topics import create_topics

__all__ = ["add_arguments", "bench_command", "main", "run_bench"]

_WARM_UP = 100  # events per warm-up batch (two batches per system)
_BROKER_WARM_UP = 2000  # events per system in one pass of the broker's warm-up
#: the longest a broker started for the run is warmed, unless told otherwise
_BROKER_WARM_UP_S = 120.0


@dataclass(frozen=True)
class _Plan:
    run_id: str
    systems: tuple[str, ...]
    rounds: int
    events: int
    rate: float
    duration_s: float
    exact_share: float
    near_share: float
    #: the longest the broker started for the run is warmed (0: not at all)
    broker_warm_up_s: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bundled(settings: Settings, workdir: Path) -> tuple[Settings, BundledKafka]:
    """Settings pointing at a bundled broker of our own (jars shared with the configured one)."""
    shared = BundledKafka(settings)
    shared.fetch()
    home = workdir / "kafka"
    home.mkdir(parents=True)
    (home / "lib").symlink_to(shared.lib, target_is_directory=True)
    port, controller = _free_port(), _free_port()
    kafka = settings.kafka.model_copy(
        update={
            "bootstrap_servers": f"{settings.broker.host}:{port}",
            "security_protocol": "PLAINTEXT",
            "sasl_mechanism": None,
        }
    )
    broker = settings.broker.model_copy(
        update={"port": port, "controller_port": controller, "home": home}
    )
    bench = settings.model_copy(update={"kafka": kafka, "broker": broker})
    return bench, BundledKafka(bench)


async def _bench_topics(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> None:
    """Create the bench topics and wait until every partition has a leader."""
    kafka = settings.kafka
    await admin.create_topics(
        [NewTopic(n, kafka.partitions, kafka.replication_factor) for n in names]
    )
    for _ in range(300):
        described = await admin.describe_topics(names)
        if len(described) == len(names) and all(
            t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described
        ):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"bench topics have no leaders after 30s: {names}")


async def _delete_run_topics(admin: AIOKafkaAdminClient, prefixes: Sequence[str]) -> None:
    doomed = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
    if doomed:
        await admin.delete_topics(doomed)


async def _measure(
    settings: Settings,
    plan: _Plan,
    workdir: Path,
    started: list[ManagedProcess],
    log: TextIO,
    broker_pid: int | None = None,
) -> tuple[list[RoundResult], BrokerWarmUp | None]:
    """Warm up, then the interleaved rounds; ``broker_pid``: a broker started for the run,
    warmed before the first round."""
    options: dict[str, Any] = dict(settings.kafka.client_options())
    await create_topics(settings.kafka)
    admin = AIOKafkaAdminClient(**options)  # type: ignore[arg-type]
    loader = AIOKafkaProducer(acks="all", linger_ms=20, max_batch_size=512 * 1024, **options)
    paced = AIOKafkaProducer(acks="all", linger_ms=0, **options)
    subjects: list[Subject] = []
    seq = 0

    def batch(n: int) -> list[GeneratedEvent]:
        nonlocal seq
        events = generate(
            n,
            run_id=plan.run_id,
            start_seq=seq,
            exact_share=plan.exact_share,
            near_share=plan.near_share,
            base_time=datetime.now(UTC),
        )
        seq += n
        return events

    # SIGTERM cancels this task, so the clean-up below runs with working Kafka clients.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    on_main = task is not None and threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM)
    if on_main and task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    prefixes = [f"bench.{plan.run_id}."]
    prefixes += [f"{app_id(settings, plan.run_id, s)}-" for s in plan.systems]
    await admin.start()
    try:
        own = [all_bench_topics(plan.run_id, s) for s in plan.systems if s != "pipeline"]
        await _bench_topics(admin, settings, [t for names in own for t in names])
        for system in plan.systems:
            subjects.append(
                await start_subject(system, settings, admin, plan.run_id, workdir, started)
            )
        await loader.start()
        await paced.start()
        for process in started:
            await process.wait_ready(180.0)
        for subject in subjects:
            print(f"bench: warming up {subject.name}", file=log, flush=True)
            await warm_up(subject, loader, [batch(_WARM_UP), batch(_WARM_UP)])
        warmed = None
        if broker_pid is not None and plan.broker_warm_up_s > 0:

            async def one_pass() -> None:
                for subject in subjects:
                    await warm_up(subject, loader, [batch(_BROKER_WARM_UP)])

            print("bench: warming up the broker started for the run", file=log, flush=True)
            warmed = await warm_broker(
                one_pass, lambda: jit_cpu_s(broker_pid), budget_s=plan.broker_warm_up_s
            )
            share = "unknown" if warmed.jit_share is None else f"{warmed.jit_share:.0%}"
            print(
                f"bench: broker warmed in {warmed.passes} passes ({warmed.seconds:.0f}s); its "
                f"JIT compilers used {share} of a core over the last one",
                file=log,
                flush=True,
            )
        results = []
        for number in range(1, plan.rounds + 1):
            for subject in subjects:
                throughput = await measure_throughput(subject, loader, batch(plan.events))
                n_latency = max(2, round(plan.rate * plan.duration_s))
                latency = await measure_latency(subject, paced, batch(n_latency), plan.rate)
                results.append(RoundResult(subject.name, number, throughput, latency))
                dead = throughput.dead_letters + latency.dead_letters
                if dead:
                    print(f"bench: WARNING {subject.name} dead-lettered {dead} events", file=log)
                print(
                    f"bench: round {number}/{plan.rounds} {subject.name}: "
                    f"{throughput.events_per_s:,.0f} events/s, "
                    f"{throughput.cpu_us_per_event:,.0f} µs CPU/event, latency p50 "
                    f"{latency.p50_ms:.1f} ms p99 {latency.p99_ms:.1f} ms",
                    file=log,
                    flush=True,
                )
        return results, warmed
    finally:
        await asyncio.to_thread(stop_all, started)
        for closing in [*(s.watcher.stop() for s in subjects), loader.stop(), paced.stop()]:
            with contextlib.suppress(Exception):  # clean-up must not hide the real error
                await closing
        try:
            await _delete_run_topics(admin, prefixes)
        except Exception as exc:
            print(f"bench: could not delete the bench topics {prefixes}: {exc}", file=log)
        finally:
            await admin.close()
            if on_main:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, handler)


def _interrupt_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM clean up like Ctrl-C (Python's default would skip every ``finally``).

    Returns the function that restores the previous handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def run_bench(
    settings: Settings,
    rounds: int = 3,
    events: int = 20000,
    rate: float = 50.0,
    duration_s: float = 20.0,
    json: bool = False,
    *,
    exact_share: float = 0.05,
    near_share: float = 0.10,
    systems: Sequence[str] = SYSTEMS,
    broker_warm_up_s: float = _BROKER_WARM_UP_S,
    out: TextIO | None = None,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Run the benchmark, print the table (or JSON) to ``out``, return the summary.

    A broker started for the run is first warmed for at most ``broker_warm_up_s`` (see
    :func:`infra.bench.measure.warm_broker`); a configured one is taken as it is."""
    out, log = out or sys.stdout, log or sys.stderr
    if settings.env == "production":
        raise BenchError("refusing to benchmark in production: it writes to the unit topics")
    if rounds < 1 or events < 10 or rate <= 0 or duration_s <= 0 or broker_warm_up_s < 0:
        raise BenchError(
            "need rounds ≥ 1, events ≥ 10, rate > 0, duration > 0 and broker warm-up ≥ 0"
        )
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise BenchError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    run_id = uuid.uuid4().hex[:8]
    plan = _Plan(
        run_id,
        tuple(systems),
        rounds,
        events,
        rate,
        duration_s,
        exact_share,
        near_share,
        broker_warm_up_s,
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"intake-bench-{plan.run_id}-"))
    broker: BundledKafka | None = None
    started: list[ManagedProcess] = []
    load_before = os.getloadavg()
    ok = False
    on_term = _interrupt_on_sigterm()
    try:
        if not broker_answers(settings.kafka.bootstrap_servers):
            settings, broker = _bundled(settings, workdir)
            print(
                f"bench: no Kafka answers; starting the bundled one at {broker.address}", file=log
            )
            broker.start()
        try:
            broker_pid = broker.pid() if broker is not None else None
            measured = _measure(settings, plan, workdir, started, log, broker_pid)
            results, warmed = asyncio.run(measured)
        except asyncio.CancelledError:  # SIGTERM while measuring
            raise KeyboardInterrupt from None
        ok = True
    finally:
        on_term()
        stop_all(started)  # a no-op unless the loop was interrupted before its own clean-up
        if broker is not None:
            broker.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(workdir / "kafka", ignore_errors=True)
            print(f"bench: failed; the systems' logs are kept in {workdir}", file=log)
    run = {
        "run_id": plan.run_id,
        "finished_at": datetime.now(UTC).isoformat(),
        "systems": list(plan.systems),
        "rounds": rounds,
        "events": events,
        "rate": rate,
        "duration_s": duration_s,
        "exact_share": exact_share,
        "near_share": near_share,
        "partitions": settings.kafka.partitions,
        "bootstrap": settings.kafka.bootstrap_servers,
        "bundled_broker": broker is not None,
        "broker_warm_up": warmed.to_dict() if warmed is not None else None,
        "cpus": os.cpu_count() or 1,
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
    }
    summary = summarize(results, run)
    print(dumps(summary, indent=2, ensure_ascii=False) if json else render_table(summary), file=out)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``intake bench``."""
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=50.0, help="latency run: events/s")
    parser.add_argument("--duration", type=float, default=20.0, help="latency run: seconds")
    parser.add_argument("--exact-duplicates", type=float, default=0.05, help="share re-sent")
    parser.add_argument("--near-duplicates", type=float, default=0.10, help="share reworded")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument(
        "--broker-warm-up",
        type=float,
        default=_BROKER_WARM_UP_S,
        metavar="SECONDS",
        help="a broker started for the run: load it until its JIT compilers are quiet, at "
        f"most this long (default {_BROKER_WARM_UP_S:g}; 0: not at all)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="no broker: CPU per event of each stage of the pipeline's own logic "
        "(--events events after as many warm-up events)",
    )


def bench_command(settings: Settings, args: argparse.Namespace) -> int:
    """``intake bench`` with parsed arguments; 0 when it ran (targets are reported only)."""
    if args.stages:
        from infra.bench.stages import measure_stages, render_stages

        report = measure_stages(
            settings,
            args.events,
            exact_share=args.exact_duplicates,
            near_share=args.near_duplicates,
        )
        print(dumps(report.as_json(), indent=2) if args.json else render_stages(report))
        return 0
    run_bench(
        settings,
        rounds=args.rounds,
        events=args.events,
        rate=args.rate,
        duration_s=args.duration,
        json=args.json,
        exact_share=args.exact_duplicates,
        near_share=args.near_duplicates,
        systems=[s.strip() for s in args.systems.split(",") if s.strip()],
        broker_warm_up_s=args.broker_warm_up,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.bench.cli [options]``: the same as ``intake bench``."""
    from infra.cli import main as intake_main

    return intake_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
