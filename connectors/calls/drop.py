"""The drop directory: call-record files the call-centre software exports, read record by
record and moved aside when read to the end.

Which files are read (the completeness convention): regular files named ``*.csv`` (with a
header row) or ``*.jsonl`` / ``*.ndjson`` (one JSON object a line), not hidden, whose last
modification is at least ``STABLE_AFTER_S`` old. A writer should create ``<name>.csv.part`` or
``<name>.csv.tmp`` and rename it when complete (a rename is atomic in one file system); those
suffixes are never read, and the age rule covers writers that copy in place. File names should
be unique (a date and time in them): files are read in name order.

The cursor is ``"<file name>:<byte offset>"`` of the next unread record, saved by the runner only
after Kafka acknowledged the batch. A file read to the end is moved to ``processed_dir`` in
``confirm``; the next fetch, finding the cursor's file gone, starts the next file from the top.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from connectors.calls.cdr import CdrIndex
from connectors.calls.records import (
    call_event,
    describe_problems,
    detect_encoding,
    is_call_id,
    parse_call,
    parse_csv_header,
    parse_csv_record,
    parse_json_record,
    record_end,
)
from connectors.errors import InvalidSubmission
from connectors.runtime import Batch, dead_record, raw_record
from connectors.state import OutRecord
from infra.settings import CallsSettings
from schemas.common import Channel, utc_now

__all__ = [
    "BATCH_RECORDS",
    "PROCESSED_DIR_NAME",
    "STABLE_AFTER_S",
    "CallLogConnector",
    "format_cursor",
    "parse_cursor",
]

log = logging.getLogger(__name__)

#: Records (lines) per batch: one Kafka round trip and one cursor save each.
BATCH_RECORDS = 100
#: A file modified more recently than this many seconds may still be being written.
STABLE_AFTER_S = 1.0
#: ``processed_dir`` when the setting is not given: ``<drop_dir>/islenen``.
PROCESSED_DIR_NAME = "islenen"
CSV_SUFFIXES = frozenset({".csv"})
#: How a CSV file's records are split: its header and delimiter (None: JSON lines).
_Layout = tuple[tuple[str, ...], str] | None


@dataclass
class _File:
    """The file being read: its identity, bytes, encoding, layout and where its first record
    starts, and the line number at the offset where the last batch stopped."""

    name: str
    size: int
    mtime_ns: int
    data: bytes
    encoding: str
    layout: _Layout
    first: int
    lines: dict[int, int] = field(default_factory=dict)


JSON_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def parse_cursor(cursor: str | None) -> tuple[str | None, int]:
    """``(file name, byte offset)`` of a cursor; ``(None, 0)`` for none; ``ValueError``."""
    if not cursor:
        return None, 0
    name, sep, offset = cursor.rpartition(":")
    if not (sep and name and offset.isdigit()):
        raise ValueError(f"not a <file name>:<byte offset> cursor: {cursor!r}")
    return name, int(offset)


def format_cursor(name: str, offset: int) -> str:
    """The cursor of byte ``offset`` in file ``name``."""
    return f"{name}:{offset}"


class CallLogConnector:
    """Reads call records dropped in ``settings.drop_dir``; the runner saves the cursor."""

    name = "calls"
    channel = Channel.CALLS

    def __init__(
        self,
        settings: CallsSettings,
        *,
        batch_size: int | None = None,
        stable_after_s: float = STABLE_AFTER_S,
        cdrs: CdrIndex | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if settings.drop_dir is None:
            raise ValueError("the calls connector needs a drop directory")
        self.settings = settings
        self.drop_dir = settings.drop_dir
        self.processed_dir = settings.processed_dir or self.drop_dir / PROCESSED_DIR_NAME
        self.batch_size = batch_size or BATCH_RECORDS
        self.stable_after_s = stable_after_s
        self.cdrs = cdrs or CdrIndex(settings.cdr_file)
        self._clock = clock
        self._file: _File | None = None

    async def open(self) -> None:
        """Make sure the drop and processed directories exist."""
        await asyncio.to_thread(self.processed_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.drop_dir.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        """Nothing to disconnect."""

    async def wait(self) -> None:
        """Look at the directory again after the poll interval."""
        await asyncio.sleep(self.settings.poll_interval_s)

    async def fetch(self, cursor: str | None) -> Batch:
        """The next records after ``cursor`` (file I/O in a thread)."""
        return await asyncio.to_thread(self._fetch, cursor)

    async def confirm(self, batch: Batch) -> None:
        """The batch is durable: a file read to the end is moved aside."""
        if isinstance(batch.token, Path):
            await asyncio.to_thread(self._move_aside, batch.token)

    def ready_files(self) -> list[Path]:
        """The complete call-record files in the drop directory, in name order."""
        now = time.time()
        cdr_file = self.settings.cdr_file.resolve() if self.settings.cdr_file else None
        ready = []
        for path in self.drop_dir.iterdir():
            suffix = path.suffix.lower()
            if path.name.startswith(".") or suffix not in CSV_SUFFIXES | JSON_SUFFIXES:
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < self.stable_after_s:
                continue
            if cdr_file is not None and path.resolve() == cdr_file:
                continue
            ready.append(path)
        return sorted(ready, key=lambda p: p.name)

    def _fetch(self, cursor: str | None) -> Batch:
        try:
            name, offset = parse_cursor(cursor)
        except ValueError as exc:
            log.warning("calls: %s; starting from the first file", exc)
            name, offset = None, 0
        ready = self.ready_files()
        if name is not None and (self.drop_dir / name).is_file():
            path = self.drop_dir / name
            if path not in ready:  # being rewritten: read it when it is complete again
                return Batch([])
        elif ready:
            path, offset = ready[0], 0
        else:  # nothing to read; a finished file's cursor is cleared
            return Batch([], cursor="" if name else None)
        return self._read(path, offset)

    def _load(self, path: Path) -> _File:
        """The file's bytes, encoding and layout, kept while it is being read (it is complete,
        so it does not change; a changed size or time means it was replaced)."""
        info = path.stat()
        known = self._file
        identity = (path.name, info.st_size, info.st_mtime_ns)
        if known and (known.name, known.size, known.mtime_ns) == identity:
            return known
        data = path.read_bytes()
        encoding = detect_encoding(data)
        layout: _Layout = None
        first = 0
        if path.suffix.lower() in CSV_SUFFIXES:
            first = record_end(data, 0, quoted=True)
            layout = parse_csv_header(data[:first].decode(encoding, "replace"))
        log.info("calls: reading %s (%s)", path.name, encoding)
        self._file = _File(path.name, info.st_size, info.st_mtime_ns, data, encoding, layout, first)
        return self._file

    def _read(self, path: Path, offset: int) -> Batch:
        file = self._load(path)
        data, layout = file.data, file.layout
        if offset > len(data) or (0 < offset < len(data) and data[offset - 1] != ord("\n")):
            log.warning(
                "calls: offset %d is no line start in %s; reading it again", offset, path.name
            )
            offset = 0
        offset = max(offset, file.first)
        self.cdrs.refresh()
        now = self._clock()
        line = file.lines.get(offset) or data.count(b"\n", 0, offset) + 1
        records: list[OutRecord] = []
        messages = 0
        while offset < len(data) and len(records) < self.batch_size:
            end = record_end(data, offset, quoted=layout is not None)
            chunk, at = data[offset:end], line
            offset, line = end, line + chunk.count(b"\n")
            if chunk.strip():
                record, ok = self._record(chunk, file.encoding, layout, path.name, at, now)
                records.append(record)
                messages += ok
        file.lines = {offset: line}
        return Batch(
            records,
            cursor=format_cursor(path.name, offset),
            messages=messages,
            more=True,
            token=path if offset >= len(data) else None,
        )

    def _record(
        self, chunk: bytes, encoding: str, layout: _Layout, file: str, line: int, now: datetime
    ) -> tuple[OutRecord, bool]:
        """The raw event of one record, or its dead letter naming the file and line."""
        key: str | None = None
        try:
            text = chunk.decode(encoding).rstrip("\r\n")
            row = parse_json_record(text) if layout is None else parse_csv_record(text, *layout)
            record, problems = parse_call(row)
            key = record.get("call_id")
            if problems:
                raise InvalidSubmission(describe_problems(problems))
            event = call_event(record, self.cdrs.lookup(record["call_id"]), now)
            return raw_record(event), True
        except (ValueError, InvalidSubmission) as exc:  # ValueError: JSON, Unicode, pydantic
            log.warning("calls: %s line %d sent to the dead-letter topic: %s", file, line, exc)
            key = key if is_call_id(key) else None
            return dead_record(self.name, key, chunk, exc, now, file=file, line=line), False

    def _move_aside(self, path: Path) -> None:
        if not path.exists():
            return
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        target = self.processed_dir / path.name
        if target.exists():
            target = target.with_name(f"{path.stem}.{self._clock():%Y%m%dT%H%M%S%f}{path.suffix}")
        shutil.move(path, target)
        if self._file is not None and self._file.name == path.name:
            self._file = None
        log.info("calls: %s read to the end, moved to %s", path.name, target)
