"""Alo 153 call-centre records → ``intake.raw.calls``, keyed by call id.

Two ways in: files dropped in ``settings.connectors.calls.drop_dir`` (``CallLogConnector``,
run by ``intake connector calls``; see ``connectors.calls.drop`` for which files are read and
how the cursor works) and ``POST /api/v1/calls`` (``build_calls_router``, mounted by the web
server). Both join the Asterisk CDR file (``cdr_file``) by call id for the switch's times and
disposition (``connectors.calls.cdr``). The caller's number stays in the payload (the
normalizer makes it the citizen's phone) and is never logged.
"""

from __future__ import annotations

import asyncio
import logging

from connectors.calls.cdr import CdrIndex, index_cdrs, merge_cdrs, parse_cdr_line
from connectors.calls.drop import CallLogConnector, format_cursor, parse_cursor
from connectors.calls.http import CALLS_PATH, build_calls_router
from connectors.calls.records import call_event, call_tracking_number, column_key, parse_call
from connectors.runtime import EXIT_CONFIG, run_connector
from infra.settings import Settings

__all__ = [
    "CALLS_PATH",
    "CallLogConnector",
    "CdrIndex",
    "build_calls_router",
    "call_event",
    "call_tracking_number",
    "column_key",
    "format_cursor",
    "index_cdrs",
    "merge_cdrs",
    "parse_call",
    "parse_cdr_line",
    "parse_cursor",
    "run",
]

log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """``intake connector calls``: 0 when stopped, 78 when no drop directory is configured."""
    section = settings.connectors.calls
    if not section.configured:
        log.error("calls: set INTAKE_CONNECTORS__CALLS__DROP_DIR")
        return EXIT_CONFIG
    return await run_connector(
        CallLogConnector(section, batch_size=section.batch_size), settings, stop
    )
