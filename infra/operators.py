"""Commands for the people who run the desk: callbacks, a case's history, the monthly report.

``intake callbacks`` lists the calls the feedback operators must make (and ``done`` marks one
made); ``intake case ID`` prints a case's whole history, its replies and their failures;
``intake report --month YYYY-MM`` writes the monthly report per unit (CSV and HTML).
Staff see Turkish text; the phone number appears only where the operator must dial it.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.settings import Settings

__all__ = ["add_operator_commands"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _store(settings: Settings) -> Any:
    from sinks.store import CaseStore

    store = CaseStore(settings.database_url)
    store.migrate()
    return store


def _local(moment: datetime | None) -> str:
    from streams.deadlines import ISTANBUL

    return moment.astimezone(ISTANBUL).strftime("%d.%m.%Y %H:%M") if moment else "-"


def _callbacks(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.store.callbacks import CallbackStatus, UnknownCallback, format_callbacks

    store = _store(settings)
    if args.action == "done":
        if not args.id or not args.operator:
            print("intake callbacks done ID --operator AD [--note METİN]", file=sys.stderr)
            return 2
        try:
            done = store.complete_callback(args.id, args.operator, args.note)
        except UnknownCallback:
            print(f"intake: böyle bir geri arama yok: {args.id}", file=sys.stderr)
            return 1
        print(format_callbacks([done]))
        return 0
    status = None if args.all else CallbackStatus.OPEN
    rows = store.list_callbacks(status)
    if not rows:
        print("Bekleyen geri arama yok.")
        return 0
    for cb in rows:
        name = cb.citizen_name or "-"
        state = "bekliyor" if cb.status is CallbackStatus.OPEN else f"yapıldı ({cb.operator})"
        print(
            f"{cb.callback_id}  {cb.tracking_number}  {_local(cb.created_at)}  {cb.phone}  {name}"
        )
        print(f"    {state}: {cb.text}")
    return 0


def _case(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    record = store.get_case(args.id)
    if record is None:
        print(f"intake: böyle bir başvuru yok: {args.id}", file=sys.stderr)
        return 1
    print(
        f"{record.tracking_number}  {record.channel.value}  birim={record.unit or '-'}  "
        f"durum={record.status.value}  son tarih={_local(record.due)}"
    )
    for event in store.history(args.id):
        where = f" → {event.route.topic}" if event.route else ""
        note = f"  {event.note}" if event.note else ""
        print(f"  {_local(event.at)}  {event.kind.value}{where}{note}")
    for reply in store.replies_for(args.id):
        error = f"  HATA: {reply.error}" if reply.error else ""
        print(
            f"  yanıt {reply.channel.value} {reply.recipient_masked}: {reply.status.value} "
            f"({reply.attempts} deneme){error}"
        )
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.common import utc_now
    from sinks.store.report_files import run_report

    if not _MONTH.match(args.month):
        print("intake: --month YYYY-MM biçiminde olmalı, ör. 2026-11", file=sys.stderr)
        return 2
    paths = run_report(
        _store(settings), args.month, args.out or settings.data_dir / "reports", utc_now()
    )
    for path in paths:
        print(path)
    return 0


def add_operator_commands(sub: Any) -> None:
    """Add ``callbacks``, ``case`` and ``report`` to the ``intake`` parser."""
    callbacks = sub.add_parser("callbacks", help="calls the feedback operators must make")
    callbacks.add_argument("action", nargs="?", choices=["list", "done"], default="list")
    callbacks.add_argument("id", nargs="?", help="callback id (for done)")
    callbacks.add_argument("--operator", help="who made the call (for done)")
    callbacks.add_argument("--note", help="what the citizen said (for done)")
    callbacks.add_argument("--all", action="store_true", help="also the calls already made")
    callbacks.set_defaults(run=_callbacks)
    case = sub.add_parser("case", help="a case's history, replies and failures")
    case.add_argument("id", help="tracking number, e.g. 153-XXXXX-XXXXXX")
    case.set_defaults(run=_case)
    report = sub.add_parser("report", help="monthly report per unit (CSV and HTML)")
    report.add_argument("--month", required=True, help="YYYY-MM (Istanbul calendar month)")
    report.add_argument("--out", type=Path, help="directory for the files (default var/reports)")
    report.set_defaults(run=_report)
