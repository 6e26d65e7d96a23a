"""The clustering window in a Faust table, with an index in memory beside it.

Table ``cluster-window``: one entry per report, key ``<partition key>#<message id>``
(:func:`entry_key`), value the report's fingerprint as a compact JSON array (about 360
bytes, :func:`encode_fingerprint`). A write is one small changelog record (compacted topic
``<app id>-cluster-window-changelog``, declared by Faust), and an expired report is one
tombstone. A restarted or newly assigned worker rebuilds the table from that changelog
before it consumes again; :class:`ClusterWindow` then rebuilds its index
(:class:`~streams.cluster.window.KeyWindow` per partition key) from the table, so the
index never decides on anything but the table's content.

Rules for the agent that calls :meth:`ClusterWindow.step`:

* it consumes a topic keyed by the partition key with as many partitions as the table
  (Faust writes a changelog record to the partition of the event being processed, so the
  source and the changelog must be co-partitioned; Faust checks it), one event at a time,
  with ``concurrency=1`` (each step reads, decides and writes back one key);
* it publishes the decision's result through ``emit``, which the step awaits *before*
  writing the table, and passes the event's ``source`` (partition, offset). ``emit`` need
  not wait for the broker's acknowledgement: the table's changelog record and the emitted
  records leave through the same producer in no guaranteed order, so a crash can keep the
  entry and lose what was emitted. Each entry therefore records the source and the verdict
  it was decided with; when the uncommitted event is consumed again after the crash, the
  step finds its own entry and emits the same verdict again (event ids are stable, so what
  did arrive is overwritten by itself) instead of dropping it as a duplicate. A provider's
  second delivery of a message is another record at another offset, and is dropped.

Rule 1 (the same provider message twice) is the window itself: a re-delivered message has
the same text and classification, hence the same key, and its message id is still there.

Day buckets of an earlier version (key ``<partition key>#YYYY-MM-DD``, value
``{"v": 1, "r": [...]}``) are read into the index and rewritten as entries by the next
step on their key.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TableT

from streams.cluster.logic import ClusterSettings, Decision, DecisionKind, Fingerprint, joined
from streams.cluster.window import KeyWindow

__all__ = [
    "ClusterTable",
    "ClusterWindow",
    "Source",
    "declare_cluster_table",
    "decode_fingerprint",
    "decode_verdict",
    "decode_window",
    "encode_fingerprint",
    "entry_key",
    "source_of",
]

log = logging.getLogger(__name__)

_LEGACY_FORMAT = 1
_FIELDS = 11  # a fingerprint's fields in a row; a table entry's verdict follows them

#: Where a report was read from: (partition, offset) of its record on the source topic.
Source = tuple[int, int]

ClusterTable = TableT[str, bytes]
Emit = Callable[[Decision], Awaitable[None]]


def encode_fingerprint(
    fp: Fingerprint, decided: Decision | None = None, source: Source | None = None
) -> bytes:
    """One fingerprint as a positional JSON array (field names would double its size).

    A table entry also carries the ``source`` record it was decided from and the ``decided``
    verdict (:func:`decode_verdict`), so that a replay of that record after a crash emits
    the same verdict again; the header the intake agent writes carries neither."""
    row = _row(fp)
    if decided is not None and source is not None:
        verdict = [decided.kind.value, decided.reason, decided.score, decided.matched]
        row += [*source, *verdict]
    return json.dumps(row, separators=(",", ":")).encode("utf-8")


def _row(fp: Fingerprint) -> list[Any]:
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


def _from_row(row: list[Any]) -> Fingerprint:
    mid, case, unit, district, cell, lat, lon, citizen, at, sig, numbers = row[:_FIELDS]
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


def decode_fingerprint(data: bytes) -> Fingerprint:
    """The fingerprint of a table entry (:func:`encode_fingerprint`'s inverse)."""
    return _from_row(json.loads(data))


def decode_verdict(data: bytes) -> tuple[Source, Decision] | None:
    """The source record and verdict a table entry was decided with (None: not recorded,
    as in entries written before verdicts were kept, or unreadable)."""
    try:
        row = json.loads(data)
        if not isinstance(row, list) or len(row) < _FIELDS + 6:
            return None
        partition, offset, kind, reason, score, matched = row[_FIELDS : _FIELDS + 6]
        decision = Decision(DecisionKind(kind), row[1], reason, score, matched)
        return (int(partition), int(offset)), decision
    except (ValueError, TypeError):
        return None


def source_of(message: Any) -> Source:
    """The ``source`` of :meth:`ClusterWindow.step`: a Faust message's partition and offset."""
    return message.partition, message.offset


def decode_window(data: bytes | None) -> list[Fingerprint]:
    """The fingerprints of an earlier version's day bucket (an unknown format reads as empty)."""
    if not data:
        return []
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("v") != _LEGACY_FORMAT:
        return []
    return [_from_row(row) for row in doc["r"]]


def entry_key(key: str, message_id: str) -> str:
    """The table key of one report: ``<partition key>#<message id>``."""
    return f"{key}#{message_id}"


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
        help="recent report fingerprints, one entry per report (deduplication, clustering)",
    )


class ClusterWindow:
    """The table and its index: decide a report, emit, record it, expire what is old.

    ``table`` is the Faust table (or, in unit tests, a dict). The index is rebuilt from the
    table after every recovery (Faust calls back once a rebalance's changelog is restored)
    and on first use.
    """

    def __init__(self, table: ClusterTable, settings: ClusterSettings) -> None:
        self.table = table
        self.settings = settings
        self._keys: dict[str, KeyWindow] = {}
        self._legacy: dict[str, list[str]] = {}  # partition key → day buckets to rewrite
        self._stale = True
        on_recover = getattr(table, "on_recover", None)
        if on_recover is not None:
            on_recover(self._recovered)

    async def _recovered(self) -> None:
        self._stale = True

    def rebuild(self) -> None:
        """Index what the table holds (called before the first step after a recovery)."""
        self._keys.clear()
        self._legacy.clear()
        reports = 0
        for name, value in list(self.table.items()):
            key = name.partition("#")[0]
            try:
                if value[:1] == b"{":  # an earlier version's day bucket
                    found = decode_window(value)
                    self._legacy.setdefault(key, []).append(name)
                else:
                    found = [decode_fingerprint(value)]
            except (ValueError, TypeError) as exc:
                log.warning("cluster window: an unreadable entry of %s skipped: %s", key, exc)
                continue
            window = self._window(key)
            for fp in found:
                window.add(fp)
                reports += 1
        self._stale = False
        log.info("cluster window rebuilt: %d reports under %d keys", reports, len(self._keys))

    @property
    def reports(self) -> int:
        """How many reports the index holds (all keys)."""
        return sum(len(w) for w in self._keys.values())

    def window(self, key: str) -> Sequence[Fingerprint]:
        """The reports of ``key``, oldest first (for inspection and tests)."""
        if self._stale:
            self.rebuild()
        found = self._keys.get(key)
        return list(found) if found is not None else []

    def _window(self, key: str) -> KeyWindow:
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = KeyWindow(self.settings.num_perm)
        return found

    async def step(
        self,
        key: str,
        candidate: Fingerprint,
        now: datetime,
        emit: Emit | None = None,
        source: Source | None = None,
    ) -> Decision:
        """Decide what ``candidate`` is against its key's window, emit, then record it.

        Must run inside the iteration of a stream keyed by ``key`` (Faust writes the
        changelog to that event's partition); ``source`` is that event's (partition,
        offset). A duplicate is not recorded again; but the record an entry was decided
        from, read again (a replay after a crash), gets that entry's verdict again, emitted
        and returned. The window is pruned by event time (the newest report of the key,
        never later than ``now``), so a backlog processed after an outage is clustered as it
        would have been live.
        """
        if self._stale:
            self.rebuild()
        window = self._window(key)
        decision = window.decide(candidate, self.settings, now)
        if (
            decision.kind is DecisionKind.DUPLICATE
            and source is not None
            and (verdict := self._replayed(key, candidate.message_id, source))
        ):
            if emit is not None:
                await emit(verdict)
            return verdict
        if emit is not None:
            await emit(decision)
        if decision.kind is DecisionKind.DUPLICATE:
            return decision
        kept = joined(candidate, decision)
        window.add(kept)
        self.table[entry_key(key, kept.message_id)] = encode_fingerprint(kept, decision, source)
        if key in self._legacy:
            self._rewrite_legacy(key, window)
        newest = datetime.fromtimestamp(window.newest(), UTC)
        for old in window.prune(min(newest, now), self.settings):
            self._delete(entry_key(key, old.message_id))
        if not len(window):
            del self._keys[key]
        return decision

    def _replayed(self, key: str, message_id: str, source: Source) -> Decision | None:
        """The verdict recorded for ``message_id`` if it was decided from ``source``."""
        data = self.table.get(entry_key(key, message_id))
        found = decode_verdict(data) if data else None
        if found is None or found[0] != source:
            return None
        log.info("cluster window: %s read again after a restart; its verdict re-emitted", key)
        return found[1]

    def _rewrite_legacy(self, key: str, window: KeyWindow) -> None:
        for fp in window:
            name = entry_key(key, fp.message_id)
            if name not in self.table:
                self.table[name] = encode_fingerprint(fp)
        for bucket in self._legacy.pop(key):
            self._delete(bucket)

    def _delete(self, name: str) -> None:
        if name in self.table:
            del self.table[name]
