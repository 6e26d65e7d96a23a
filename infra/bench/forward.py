"""The benchmark's Faust baseline: one agent that forwards raw bytes, nothing else.

``python -m infra.bench.forward worker --input T --output U`` runs a Faust worker built like
the product's (``streams.app.create_app``: same delivery guarantee, acks, commit interval and
session timeout) whose only agent sends each event's key, value and headers on to ``U``
(through ``streams.faust_tuning.send_raw``, as the product's agents send). The
app id and data directory come from the environment (``INTAKE_WORKER__APP_ID``,
``INTAKE_DATA_DIR``); the worker writes the same ready file as ``intake worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import faust

from infra.settings import Settings, load_settings
from streams.app import create_app, ready_file
from streams.faust_tuning import send_raw

__all__ = ["build_forward_app", "main"]


def build_forward_app(settings: Settings, input_topic: str, output_topic: str) -> faust.App:
    """A Faust app with one forwarding agent and the ready signal."""
    app = create_app(settings)
    source = app.topic(input_topic, key_serializer="raw", value_serializer="raw")
    sink = app.topic(output_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="forward")
    async def forward(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await send_raw(sink, event.key, event.value, event.headers)

    marker = ready_file(settings)
    marker.unlink(missing_ok=True)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # the stub wants signal=
    async def _mark_ready(sender: faust.App, *_: Any, **__: Any) -> None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        assigned = len(sender.consumer.assignment())
        marker.write_text(json.dumps({"pid": os.getpid(), "partitions": assigned}))

    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m infra.bench.forward worker``."""
    parser = argparse.ArgumentParser(prog="python -m infra.bench.forward")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    from streams.faust_tuning import tune_gc, use_uvloop

    use_uvloop()  # as the worker does
    app = build_forward_app(settings, args.input, args.output)
    tune_gc()  # the app and its modules are built: freeze them out of the collector
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
