"""``intake``: the one console script. Builds the settings once and hands them down."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from infra.logs import configure_logging
from infra.operators import add_operator_commands
from infra.settings import Settings, load_settings

__all__ = ["main"]


def _kafka(settings: Settings, args: argparse.Namespace) -> int:
    from infra.broker import BundledKafka

    broker = BundledKafka(settings)
    if args.action == "fetch":
        broker.fetch()
        print(f"Kafka {broker.version} jars in {broker.lib}")
    elif args.action == "start":
        started = broker.start()
        state = "started" if started else "already running"
        print(
            f"Kafka {broker.version} {state} at {broker.address} (log {broker.logs / 'server.log'})"
        )
    elif args.action == "stop":
        print("Kafka stopped" if broker.stop() else "Kafka was not running")
    else:
        status = broker.status()
        print(
            json.dumps(
                {
                    "address": status.address,
                    "version": status.version,
                    "pid": status.pid,
                    "running": status.running,
                    "answering": status.answering,
                    "log": str(status.log),
                },
                indent=2,
            )
        )
        return 0 if status.answering else 3
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from infra.topics import create_topics, list_topics

    if args.action == "create":
        result = asyncio.run(create_topics(settings.kafka))
        for name, state in sorted(result.items()):
            print(f"{state:8} {name}")
    else:
        for name in sorted(asyncio.run(list_topics(settings.kafka))):
            print(name)
    return 0


def _schemas(_settings: Settings, args: argparse.Namespace) -> int:
    from schemas.registry import export_json_schemas, render_json_schemas

    directory = Path(args.dir)
    if args.check:
        stale = [
            name
            for name, text in render_json_schemas().items()
            if not (directory / name).is_file()
            or (directory / name).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"stale JSON Schemas in {directory}: {', '.join(stale)}", file=sys.stderr)
            print(f"run: intake schemas export {directory}", file=sys.stderr)
            return 1
        print(f"JSON Schemas in {directory} are up to date")
        return 0
    for path in export_json_schemas(directory):
        print(path)
    return 0


def _db(settings: Settings, _args: argparse.Namespace) -> int:
    from sinks.store import CaseStore

    store = CaseStore(settings.database_url, echo=settings.db.echo)
    store.migrate()
    store.close()
    print("case store migrated")
    return 0


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    import faust

    from sinks.store import CaseStore
    from streams.app import build_worker_app
    from streams.faust_tuning import tune_gc, use_uvloop

    use_uvloop()  # before the app exists: Faust takes the loop of the current policy
    store = CaseStore(settings.database_url, echo=settings.db.echo)
    store.migrate()
    app, _topics = build_worker_app(settings, store)
    tune_gc()  # the app, its model and taxonomy are built: freeze them out of the collector
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def _web(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from connectors.web import build_from_settings

    uvicorn.run(
        build_from_settings(settings),
        host=settings.web.host,
        port=settings.web.port,
        log_level="info",
        proxy_headers=True,
    )
    return 0


def _outbound(settings: Settings, _args: argparse.Namespace) -> int:
    """Replies to citizens and reminders to units (``sinks.outbound``) until SIGTERM."""
    import signal

    from sinks import outbound

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await outbound.run(settings, stop)

    return asyncio.run(run())


def _record(settings: Settings, _args: argparse.Namespace) -> int:
    """The case store's writer on ``intake.cases`` (``sinks.recorder``) until SIGTERM."""
    import signal

    from sinks import recorder

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await recorder.run(settings, stop)

    return asyncio.run(run())


def _up(settings: Settings, _args: argparse.Namespace) -> int:
    from infra.supervisor import Supervisor

    return Supervisor(settings).run()


def _inject(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.inject import inject_file
    from connectors.publisher import KafkaPublisher

    async def run() -> list[str]:
        publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
        await publisher.start()
        try:
            return await inject_file(Path(args.file), publisher)
        finally:
            await publisher.stop()

    from connectors.errors import RejectedLines

    try:
        accepted = asyncio.run(run())
    except RejectedLines as exc:
        for tracking in exc.tracking_numbers:
            print(tracking)
        for line, reason in exc.rejected:
            print(
                f"{args.file}:{line}: rejected (sent to intake.deadletter): {reason}",
                file=sys.stderr,
            )
        return 1
    for tracking in accepted:
        print(tracking)
    return 0


CONNECTORS = ("imap", "twitter", "calls")


def _connector(settings: Settings, args: argparse.Namespace) -> int:
    """Run one polling connector (``connectors.<name>.run``) until SIGTERM or Ctrl-C."""
    import importlib
    import signal

    module = importlib.import_module(f"connectors.{args.name}")

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return int(await module.run(settings, stop))

    return asyncio.run(run())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _connectors_status(settings: Settings, _args: argparse.Namespace) -> int:
    """Cursor, last success, last message and outbox backlog of every connector that ran."""
    from connectors.state import ConnectorState

    report: dict[str, dict[str, object]] = {}
    for name in (*CONNECTORS, "whatsapp"):
        path = settings.connector_state_dir / f"{name}.sqlite3"
        if not path.is_file():
            report[name] = {"state": "never ran"}
            continue
        state = ConnectorState(path)
        health = state.health(name)
        report[name] = {
            "cursor": state.cursor(name),
            "last_success_at": _iso(health.last_success_at),
            "last_message_at": _iso(health.last_message_at),
            "outbox_backlog": state.pending_count(),
        }
        state.close()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


DEADLINE_BASES = ("bilgi-edinme", "bilgi-edinme-uzatma", "dilekce", "cimer", "sikayet")


def _deadline(settings: Settings, args: argparse.Namespace) -> int:
    """Print the legal due dates of one application as one JSON object."""
    from streams.deadlines import WorkingCalendar, compute_deadline

    try:
        received = datetime.fromisoformat(args.received)
        deadline = compute_deadline(
            args.basis, received, WorkingCalendar(settings.deadlines), unit=args.unit
        )
    except ValueError as exc:  # naive or malformed time (NaiveReceivedTime is a ValueError)
        print(f"intake deadline: {exc}", file=sys.stderr)
        return 2
    print(deadline.to_json())
    return 0


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    """Classify JSON lines from stdin, or evaluate a labelled CSV, or train the model."""
    from streams.classify.cli import run_classify

    return run_classify(
        settings.classifier, train=args.train, evaluate=args.evaluate, corpus=args.corpus
    )


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    """Throughput, CPU and latency of passthrough, forwarding agent and full pipeline."""
    from infra.bench.cli import bench_command

    return bench_command(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description="Alo 153 multichannel intake")
    sub = parser.add_subparsers(dest="command", required=True)
    kafka = sub.add_parser("kafka", help="the bundled single-node Apache Kafka")
    kafka.add_argument("action", choices=["fetch", "start", "stop", "status"])
    kafka.set_defaults(run=_kafka)
    topics = sub.add_parser("topics", help="the contract's topics")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(run=_topics)
    schemas = sub.add_parser("schemas", help="JSON Schema files for unit systems")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("dir")
    schemas.add_argument("--check", action="store_true", help="fail when DIR is stale")
    schemas.set_defaults(run=_schemas)
    db = sub.add_parser("db", help="the case store")
    db.add_argument("action", choices=["migrate"])
    db.set_defaults(run=_db)
    sub.add_parser("worker", help="run the stream worker").set_defaults(run=_worker)
    sub.add_parser("web", help="run the web server (intake API)").set_defaults(run=_web)
    sub.add_parser("outbound", help="send replies to citizens and reminders to units").set_defaults(
        run=_outbound
    )
    sub.add_parser("record", help="write intake.cases to the case store").set_defaults(run=_record)
    sub.add_parser(
        "up", help="broker, topics, case store, then worker, recorder, web and outbound together"
    ).set_defaults(run=_up)
    connector = sub.add_parser("connector", help="run one channel connector")
    connector.add_argument("name", choices=CONNECTORS)
    connector.set_defaults(run=_connector)
    deadline = sub.add_parser("deadline", help="legal due dates of an application (JSON)")
    deadline.add_argument("--basis", required=True, choices=DEADLINE_BASES)
    deadline.add_argument(
        "--received", required=True, help="ISO datetime with offset, e.g. 2026-05-22T14:00:00+03:00"
    )
    deadline.add_argument("--unit", help="unit code (service target for --basis sikayet)")
    deadline.set_defaults(run=_deadline)
    classify = sub.add_parser(
        "classify", help="classify JSON lines {id, text} from stdin into JSON lines on stdout"
    )
    mode = classify.add_mutually_exclusive_group()
    mode.add_argument(
        "--evaluate", type=Path, metavar="FILE.csv", help="score a labelled CSV (label,text)"
    )
    mode.add_argument("--train", action="store_true", help="train on the corpus, save the model")
    classify.add_argument(
        "--corpus", type=Path, help="corpus for --train (default data/corpus/messages.csv)"
    )
    classify.set_defaults(run=_classify)
    bench = sub.add_parser("bench", help="benchmark against the real broker (interleaved rounds)")
    from infra.bench.cli import add_arguments as add_bench_arguments

    add_bench_arguments(bench)
    bench.set_defaults(run=_bench)
    status = sub.add_parser("connectors", help="health of the channel connectors")
    status.add_argument("action", choices=["status"])
    status.set_defaults(run=_connectors_status)
    inject = sub.add_parser("inject", help="publish sample submissions from a JSON-lines file")
    inject.add_argument("file")
    inject.set_defaults(run=_inject)
    add_operator_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``intake`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"intake: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.worker.log_level)
    try:
        return int(args.run(settings, args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's edge: one clear line instead of a trace
        from infra.errors import InfraError

        if isinstance(exc, InfraError):
            print(f"intake: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
