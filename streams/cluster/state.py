"""The clustering window in a Faust table: thin glue around :mod:`streams.cluster.logic`.

One table, ``cluster-window``: key = :func:`~streams.cluster.logic.partition_key` and a UTC day
(:func:`bucket_key`), value = that day's fingerprints of the key as compact JSON bytes
(``{"v": 1, "r": [[…], …]}``, ~360 bytes per report). The in-memory store keeps exactly
those bytes, so memory per report is the encoded size. Every write also goes to the
compacted changelog topic ``<app id>-cluster-window-changelog`` (declared by Faust), from
which a restarted or newly assigned worker rebuilds the table before it consumes again.

Rules for the agent that calls :func:`cluster_step`:

* it consumes a topic keyed by the partition key with as many partitions as the table
  (Faust writes a key's changelog record to the partition of the event being processed, so
  the source and the changelog must be co-partitioned; Faust checks it);
* it runs with ``concurrency=1`` (each step reads, decides and writes back one key);
* it publishes the decision's result through ``emit``, which :func:`cluster_step` awaits
  *before* writing the table: a crash between the two replays the event to the same,
  stable result instead of finding it already recorded and dropping it as a duplicate.

Rule 1 (the same provider message twice) is folded into the window rather than kept in a
second table: a re-delivered message has the same text and classification, hence the same
key, and its message id is still in the window; this saves a second changelog write per
event. If a re-delivery ever lands on another key (the classifier changed in between) it
opens a case with the same id and event id as before, which the case store upserts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TableT

from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    DecisionKind,
    Fingerprint,
    decide,
    joined,
    prune,
)

__all__ = [
    "MAX_VALUE_BYTES",
    "ClusterTable",
    "bucket_key",
    "cluster_step",
    "declare_cluster_table",
    "decode_window",
    "encode_fingerprint",
    "encode_window",
]

#: Keeps one changelog record below the producer's default 1 MB request size.
MAX_VALUE_BYTES = 900_000
_FORMAT = 1

ClusterTable = TableT[str, bytes]
Emit = Callable[[Decision], Awaitable[None]]


def encode_fingerprint(fp: Fingerprint) -> list[Any]:
    """One fingerprint as a positional JSON array (field names would double its size)."""
    return [
        fp.message_id,
        fp.case_id,
        fp.unit,
        fp.district,
        fp.cell,
        fp.lat,
        fp.lon,
        list(fp.citizen),
        fp.received_at,
        base64.b64encode(fp.signature).decode("ascii"),
        list(fp.numbers),
    ]


def _decode_fingerprint(row: list[Any]) -> Fingerprint:
    mid, case, unit, district, cell, lat, lon, citizen, at, sig, numbers = row
    return Fingerprint(
        message_id=mid,
        case_id=case,
        unit=unit,
        district=district,
        cell=cell,
        lat=lat,
        lon=lon,
        citizen=tuple(citizen),
        received_at=int(at),
        signature=base64.b64decode(sig),
        numbers=tuple(numbers),
    )


def encode_window(window: Sequence[Fingerprint], max_bytes: int = MAX_VALUE_BYTES) -> bytes:
    """The table value of a window; the oldest reports are dropped if it would exceed
    ``max_bytes`` (only reachable with unusually long message ids)."""
    rows = [encode_fingerprint(fp) for fp in window]
    while True:
        data = json.dumps({"v": _FORMAT, "r": rows}, separators=(",", ":")).encode("utf-8")
        if len(data) <= max_bytes or not rows:
            return data
        rows = rows[max(1, len(rows) // 10) :]


def decode_window(data: bytes | None) -> list[Fingerprint]:
    """The fingerprints of a table value; an unknown format reads as an empty window."""
    if not data:
        return []
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("v") != _FORMAT:
        return []
    return [_decode_fingerprint(row) for row in doc["r"]]


def declare_cluster_table(
    app: faust.App, name: str = "cluster-window", partitions: int | None = None
) -> ClusterTable:
    """Declare the window table on ``app`` (no I/O). ``partitions`` must equal the source
    topic's; None means the app's ``topic_partitions``."""
    return app.Table(
        name,
        key_type=str,
        value_type=bytes,  # raw: the value is already JSON, stored and logged as it is
        partitions=partitions,
        help="recent report fingerprints per partition key (deduplication and clustering)",
    )


def bucket_key(key: str, epoch: int) -> str:
    """The table key of one UTC day of a partition key's window: ``<key>#YYYY-MM-DD``."""
    return f"{key}#{datetime.fromtimestamp(epoch, UTC).date().isoformat()}"


def _bucket_keys(key: str, first: int, last: int) -> list[str]:
    day = 86_400
    return [bucket_key(key, at) for at in range(first - first % day, last + 1, day)]


async def cluster_step(
    table: ClusterTable,
    key: str,
    candidate: Fingerprint,
    settings: ClusterSettings,
    now: datetime,
    emit: Emit | None = None,
) -> Decision:
    """Decide what ``candidate`` is against its key's window, emit, then record it (one write).

    The window is kept in day buckets (:func:`bucket_key`): the decision reads every bucket
    of the horizon (plus the next day, for reports that arrive out of order) and the write
    goes to the candidate's own day only, so a changelog record holds one day of one key
    instead of the whole 30-day window; buckets past the horizon are deleted (tombstones),
    so memory per key stays bounded by ``max_reports_per_key`` per day of the horizon.

    Must run inside the iteration of a stream keyed by ``key`` (Faust writes the changelog to
    that event's partition). A duplicate is not recorded again. Each bucket is pruned by event
    time (the newest report of the key, never later than ``now``), so a backlog processed
    after an outage is clustered as it would have been live.
    """
    horizon = int(settings.horizon.total_seconds())
    at = candidate.received_at
    window = [
        fp
        for name in _bucket_keys(key, at - horizon, at + 86_400)
        for fp in _bucket(table, name).fingerprints
    ]
    decision = decide(candidate, window, settings, now)
    if emit is not None:
        await emit(decision)
    if decision.kind is DecisionKind.DUPLICATE:
        return decision
    newest = max([at, *(fp.received_at for fp in window)])
    reference = min(datetime.fromtimestamp(newest, UTC), now)
    own = bucket_key(key, at)
    _write(table, own, _bucket(table, own), joined(candidate, decision), reference, settings)
    for stale in _bucket_keys(key, at - horizon - 31 * 86_400, at - horizon - 86_400):
        if stale in table:
            del table[stale]
    return decision


@dataclass(slots=True)
class _Bucket:
    """A bucket as stored (``data``), decoded, and as encoded rows (None until needed)."""

    data: bytes | None
    fingerprints: list[Fingerprint]
    rows: list[bytes] | None


_EMPTY = _Bucket(None, [], [])
_cache: dict[str, _Bucket] = {}
_CACHE_LIMIT = 4096


def _bucket(table: ClusterTable, name: str) -> _Bucket:
    """The bucket, decoded once per stored value: the table keeps bytes, and the bytes this
    process wrote are kept decoded beside them (a value read back from the changelog after a
    restart or rebalance is a different object, so it is decoded once)."""
    data = table.get(name)
    if data is None:
        return _EMPTY
    hit = _cache.get(name)
    if hit is not None and hit.data is data:
        return hit
    bucket = _Bucket(data, decode_window(data), None)
    _remember(name, bucket)
    return bucket


def _remember(name: str, bucket: _Bucket) -> None:
    if name not in _cache and len(_cache) >= _CACHE_LIMIT:
        _cache.pop(next(iter(_cache)))
    _cache[name] = bucket


def _row(fp: Fingerprint) -> bytes:
    return json.dumps(encode_fingerprint(fp), separators=(",", ":")).encode("utf-8")


def _write(
    table: ClusterTable,
    name: str,
    bucket: _Bucket,
    new: Fingerprint,
    reference: datetime,
    settings: ClusterSettings,
) -> None:
    """Add ``new`` to the bucket, prune it and write it back (one changelog record).

    Only the new report is encoded: the value is the kept rows joined, byte for byte what
    :func:`encode_window` would write.
    """
    rows = bucket.rows if bucket.rows is not None else [_row(fp) for fp in bucket.fingerprints]
    row_of = {id(fp): row for fp, row in zip(bucket.fingerprints, rows, strict=True)}
    row_of[id(new)] = _row(new)
    kept = prune([*bucket.fingerprints, new], reference, settings)
    kept_rows = [row_of[id(fp)] for fp in kept]
    data = b'{"v":%d,"r":[' % _FORMAT + b",".join(kept_rows) + b"]}"
    if len(data) > MAX_VALUE_BYTES:  # unusually long ids: let encode_window drop the oldest
        data = encode_window(kept)
        kept, kept_rows = decode_window(data), None  # type: ignore[assignment]
    table[name] = data
    _remember(name, _Bucket(data, kept, kept_rows))
