"""Asterisk call detail records (the ``cdr_csv`` backend's ``Master.csv``), joined to the
operators' call records by call id, to add the switch's times and disposition.

cdr_csv writes no header row. Its column order (asterisk/asterisk ``cdr/cdr_csv.c``,
``build_csv_record``; also listed in Asterisk's ``README.cdr``) is: accountcode, src, dst,
dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end, duration, billsec,
disposition, amaflags; then ``uniqueid`` only with ``loguniqueid=yes`` and ``userfield`` only
with ``loguserfield=yes`` in the ``[csv]`` section of ``cdr.conf`` (both default to "no"),
then peeraccount, linkedid, sequence with ``newcdrcolumns=yes``. Times are
``%Y-%m-%d %H:%M:%S`` in the server's local time (GMT with ``usegmtime=yes``); ``answer`` is
empty for a call nobody answered.

The join needs ``loguniqueid=yes``: a line without a uniqueid cannot be matched and is skipped.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "CDR_COLUMNS",
    "DISPOSITIONS",
    "JOINED_FIELDS",
    "CdrIndex",
    "index_cdrs",
    "merge_cdrs",
    "parse_cdr_line",
]

#: cdr_csv's columns with ``loguniqueid=yes`` and ``loguserfield=yes``.
CDR_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
_UNIQUEID = CDR_COLUMNS.index("uniqueid")
#: The CDR fields a call's payload gets, under ``cdr`` (no numbers or names: they stay out).
JOINED_FIELDS = ("start", "answer", "end", "duration", "billsec", "disposition")
#: What ``ast_cdr_disp2str`` writes, best first: a call answered on any leg was answered.
DISPOSITIONS = ("ANSWERED", "BUSY", "NO ANSWER", "CONGESTION", "FAILED")
#: CDRs kept in memory; the oldest are forgotten first (a call is joined soon after it ends).
MAX_CDRS = 200_000


def parse_cdr_line(line: str) -> dict[str, str] | None:
    """The joined fields and ``uniqueid`` of one ``Master.csv`` line; None without a uniqueid."""
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) <= _UNIQUEID:
        return None
    values = rows[0]
    fields = {name: values[CDR_COLUMNS.index(name)].strip() for name in JOINED_FIELDS}
    fields["uniqueid"] = values[_UNIQUEID].strip()
    return fields if fields["uniqueid"] else None


def _rank(disposition: str) -> int:
    upper = disposition.upper()
    return DISPOSITIONS.index(upper) if upper in DISPOSITIONS else len(DISPOSITIONS)


def merge_cdrs(first: Mapping[str, str], second: Mapping[str, str]) -> dict[str, str]:
    """One call's CDR from two of its legs (queues and transfers write a CDR per leg):
    the earliest start and answer, the latest end, the longest leg's duration and billsec,
    and the best disposition (ANSWERED over BUSY over NO ANSWER …)."""
    merged = dict(first)
    merged["start"] = min(filter(None, [first.get("start"), second.get("start")]), default="")
    merged["answer"] = min(filter(None, [first.get("answer"), second.get("answer")]), default="")
    merged["end"] = max(filter(None, [first.get("end"), second.get("end")]), default="")
    for number in ("duration", "billsec"):
        values = [first.get(number, ""), second.get(number, "")]
        merged[number] = max(values, key=lambda v: int(v) if v.isdigit() else -1)
    dispositions = [first.get("disposition", ""), second.get("disposition", "")]
    merged["disposition"] = min(dispositions, key=_rank)
    return merged


def index_cdrs(
    lines: Iterable[str], into: dict[str, dict[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """CDRs by uniqueid (legs merged), from ``Master.csv`` lines; unusable lines are skipped."""
    index: dict[str, dict[str, str]] = {} if into is None else into
    for line in lines:
        cdr = parse_cdr_line(line)
        if cdr is None:
            continue
        uniqueid = cdr.pop("uniqueid")
        known = index.pop(uniqueid, None)
        index[uniqueid] = merge_cdrs(known, cdr) if known else cdr
    while len(index) > MAX_CDRS:
        del index[next(iter(index))]
    return index


class CdrIndex:
    """``Master.csv`` read incrementally: Asterisk only appends to it, so each refresh reads
    the new complete lines; a new inode or a shorter file (log rotation) is read from the top,
    keeping what was already learnt. Thread-safe; without a path it knows no CDR."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cdrs: dict[str, dict[str, str]] = {}
        self._inode: int | None = None
        self._offset = 0

    def refresh(self) -> None:
        """Read what was appended since the last refresh (blocking file I/O)."""
        if self.path is None:
            return
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    stat = os.fstat(handle.fileno())
                    if stat.st_ino != self._inode or stat.st_size < self._offset:
                        self._inode, self._offset = stat.st_ino, 0
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                return
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
            lines = complete.decode("utf-8", "replace").splitlines()
            index_cdrs(lines, self._cdrs)

    def lookup(self, call_id: str) -> dict[str, str] | None:
        """The joined CDR fields of ``call_id`` (a copy), or None when the switch has none."""
        with self._lock:
            cdr = self._cdrs.get(call_id)
            return dict(cdr) if cdr is not None else None
