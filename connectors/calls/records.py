"""Call records as the call centre exports them, read with pure functions: column names in
Turkish or English, CSV (any of ``,`` ``;`` tab ``|``) or JSON lines, UTF-8 (BOM or not) or
windows-1254, and the raw event of one call.

Column names are matched without case, spaces or Turkish letters (``Çağrı ID`` = ``cagri_id``)
and stored under canonical English names; values are kept as the text read. Anything the
normalizer could not read (a bad time or flag, no call id, no notes and no category) makes the
record invalid here, so it goes to the dead-letter topic instead of the pipeline.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.calls.cdr import JOINED_FIELDS
from schemas.common import Channel
from schemas.ids import message_id, tracking_number
from schemas.raw import RawEvent
from streams.normalizers.calls import parse_call_time, parse_flag
from streams.text import fold_ascii, turkish_casefold

__all__ = [
    "FIELD_ALIASES",
    "call_event",
    "call_tracking_number",
    "column_key",
    "describe_problems",
    "detect_encoding",
    "is_call_id",
    "parse_call",
    "parse_csv_header",
    "parse_csv_record",
    "parse_json_record",
    "record_end",
]

#: Canonical field → the column names it is known by (folded: lower case, ASCII, ``_``).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "call_id": ("cagri_id", "cagri_no", "cagri_numarasi", "call_id", "callid", "uniqueid", "id"),
    "caller": (
        "arayan",
        "arayan_no",
        "arayan_numara",
        "arayan_numarasi",
        "arayan_telefon",
        "telefon",
        "caller",
        "caller_number",
        "caller_id",
        "phone",
    ),
    "start": ("baslangic", "baslangic_zamani", "baslama", "start", "start_time", "started_at"),
    "end": ("bitis", "bitis_zamani", "end", "end_time", "ended_at"),
    "operator": ("operator", "operator_id", "temsilci", "agent"),
    "queue": ("kuyruk", "queue"),
    "category": ("kategori", "konu", "category", "subject"),
    "notes": ("notlar", "not", "aciklama", "notes", "note"),
    "address": ("adres", "address"),
    "resolved": ("hatta_cozuldu", "cozuldu", "resolved", "resolved_on_line"),
}
_CANONICAL = {alias: field for field, aliases in FIELD_ALIASES.items() for alias in aliases}
_CALL_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_LIMITS = {"caller": 32, "address": 1000}  # CitizenContact.phone, GeoPoint.address
MAX_VALUE_CHARS = 20_000
#: A quoted CSV field may hold line breaks; past this many lines the quote is taken as broken.
MAX_RECORD_LINES = 50
_DELIMITERS = (",", ";", "\t", "|")
_BOM = b"\xef\xbb\xbf"


def column_key(name: str) -> str:
    """The canonical field a column name stands for, else the name as read (trimmed)."""
    name = name.strip().lstrip("\ufeff").strip()
    folded = _NOT_NAME.sub("_", fold_ascii(turkish_casefold(name))).strip("_")
    return _CANONICAL.get(folded, name)


def detect_encoding(data: bytes) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` when the bytes are valid UTF-8, else windows-1254."""
    if data.startswith(_BOM):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1254"
    return "utf-8"


def _line_end(data: bytes, pos: int) -> int:
    found = data.find(b"\n", pos)
    return len(data) if found < 0 else found + 1


def record_end(data: bytes, pos: int, *, quoted: bool) -> int:
    """Where the record starting at byte ``pos`` ends (after its newline). With ``quoted``
    (CSV) a record goes on while a quote is open, up to ``MAX_RECORD_LINES`` lines; an
    unclosed quote past that is the first line's problem, and the next line starts afresh."""
    end = _line_end(data, pos)
    if not quoted:
        return end
    stop, lines = end, 1
    while data.count(b'"', pos, stop) % 2 and stop < len(data) and lines < MAX_RECORD_LINES:
        stop, lines = _line_end(data, stop), lines + 1
    return end if data.count(b'"', pos, stop) % 2 else stop


def parse_csv_header(line: str) -> tuple[tuple[str, ...], str]:
    """The column names of a CSV header line and its delimiter (the most frequent candidate)."""
    delimiter = max(_DELIMITERS, key=line.count)
    rows = list(csv.reader(io.StringIO(line.lstrip("\ufeff"), newline=""), delimiter=delimiter))
    return (tuple(rows[0]) if rows else ()), delimiter


def parse_csv_record(text: str, header: tuple[str, ...], delimiter: str) -> dict[str, str]:
    """One CSV record as column → value; ``ValueError`` on broken quoting or a wrong width."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ValueError(f"not a CSV record: {exc}") from None
    if len(rows) != 1:
        raise ValueError("not a single CSV record")
    if len(rows[0]) != len(header):
        raise ValueError(f"{len(rows[0])} fields where the header has {len(header)}")
    return dict(zip(header, rows[0], strict=True))


def parse_json_record(text: str) -> dict[str, Any]:
    """One JSON line as an object; ``ValueError`` when it is not a JSON object."""
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"a line must be a JSON object, not {type(document).__name__}")
    return document


def _as_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise ValueError("must be text")


def parse_call(row: Mapping[str, object]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The canonical record of a row (column → value) and its problems as ``(field, reason)``;
    no value appears in a reason (they may be personal data)."""
    record: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for column, value in row.items():
        key = column_key(str(column))
        if key == "call_id" and isinstance(value, float):
            problems.append((key, "must be a string (as a number it may lose digits)"))
            continue
        try:
            text = None if value is None else _as_text(value)
        except ValueError as exc:
            problems.append((key, str(exc)))
            continue
        if not text:
            continue
        limit = _LIMITS.get(key, MAX_VALUE_CHARS)
        if key in record:
            problems.append((key, "given twice (under two column names)"))
        elif len(text) > limit:
            problems.append((key, f"longer than {limit} characters"))
        else:
            record[key] = text
    checks = {"start": parse_call_time, "end": parse_call_time, "resolved": parse_flag}
    for key, check in checks.items():
        if key in record:
            try:
                check(record[key])
            except ValueError as exc:
                problems.append((key, str(exc)))
    call_id = record.get("call_id")
    if call_id is None:
        problems.append(("call_id", "missing (column cagri_id or call_id)"))
    elif not is_call_id(call_id):
        problems.append(("call_id", "must be 1 to 128 visible ASCII characters"))
    if not (record.get("notes") or record.get("category")):
        problems.append(("notes", "a call needs notes or a category"))
    return record, problems


def is_call_id(text: str | None) -> bool:
    """Whether ``text`` can be a call id (the Kafka key): 1 to 128 visible ASCII characters."""
    return text is not None and _CALL_ID.match(text) is not None


def describe_problems(problems: list[tuple[str, str]]) -> str:
    """``parse_call``'s problems in one line."""
    return "; ".join(f"{field}: {reason}" for field, reason in problems)


def call_event(
    record: Mapping[str, str], cdr: Mapping[str, str] | None, received_at: datetime
) -> RawEvent:
    """The raw event of a call (key: its call id), with the switch's CDR fields under ``cdr``."""
    payload: dict[str, Any] = dict(record)
    if cdr:
        payload["cdr"] = {k: cdr[k] for k in JOINED_FIELDS if cdr.get(k)}
    return RawEvent(
        channel=Channel.CALLS,
        provider_id=record["call_id"],
        received_at=received_at,
        payload=payload,
    )


def call_tracking_number(call_id: str) -> str:
    """The citizen-facing tracking number of a call."""
    return tracking_number(message_id(Channel.CALLS.value, call_id))
