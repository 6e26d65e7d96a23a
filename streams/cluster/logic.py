"""Deduplication and clustering decisions (pure: data in, data out; no Faust).

A report is reduced to a :class:`Fingerprint` (about 360 bytes as JSON, see ``state``); the
recent fingerprints of one partition key form its window; :func:`decide` compares a new
report with the window:

1. the same ``message_id`` → ``DUPLICATE`` (a provider delivered it twice, or a replay);
2. the same citizen (any shared citizen key) and unit within ``attach_window``, not in
   another district nor farther than ``citizen_radius_m`` → ``ATTACH_SAME_CITIZEN`` to the
   case of their newest such report;
3. the same unit and estimated Jaccard ≥ ``jaccard_threshold`` within ``cluster_window``,
   unless the districts differ, both are located farther apart than ``text_radius_m`` or
   both name street/building numbers with none in common → ``CLUSTER`` (reason ``text``);
4. the same unit, both located within ``place_radius_m`` and ``place_window`` → ``CLUSTER``
   (reason ``place``), whatever the texts say;
5. otherwise ``NEW``.

Among clusters the best score wins, then the oldest master case. A fingerprint in a window
carries the case it joined, so a third report joins the first report's case, not the second's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schemas.case import CaseEvent, CaseEventKind, Classification, Urgency
from schemas.ids import case_event_id
from schemas.message import CitizenMessage
from streams.cluster import features as f

__all__ = [
    "ClusterSettings",
    "Decision",
    "DecisionKind",
    "Fingerprint",
    "case_event_for",
    "cluster_key",
    "decide",
    "districts_differ",
    "fingerprints",
    "joined",
    "needs_clustering",
    "numbers_agree",
    "partition_key",
    "prune",
    "report_distance",
    "same_text",
]


class ClusterSettings(BaseModel):
    """Windows and thresholds of deduplication and clustering (``INTAKE_CLUSTER__*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attach_window: timedelta = timedelta(days=30)
    cluster_window: timedelta = timedelta(hours=72)
    jaccard_threshold: float = Field(default=0.6, gt=0.0, le=1.0)
    place_radius_m: float = Field(default=150.0, gt=0)
    place_window: timedelta = timedelta(hours=48)
    #: Similar texts farther apart than this (both located) are different problems.
    text_radius_m: float = Field(default=500.0, gt=0)
    #: The same citizen's reports farther apart than this (both located) are different problems.
    citizen_radius_m: float = Field(default=2000.0, gt=0)
    #: Bound of one key's window (oldest evicted first): about 1 KB of memory each (its
    #: table entry and its index), and the decision screens the whole window with numpy.
    max_reports_per_key: int = Field(default=3000, ge=1, le=20_000)
    num_perm: int = Field(default=64, ge=16, le=256)
    shingle_size: int = Field(default=2, ge=1, le=3)
    cell_size_m: float = Field(default=250.0, gt=0)
    salt: SecretStr = SecretStr("change-me")

    @property
    def horizon(self) -> timedelta:
        """How long a fingerprint can still matter."""
        return max(self.attach_window, self.cluster_window, self.place_window)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What is kept of one report: ids, place, salted citizen keys, text signature. No text."""

    message_id: str
    case_id: str  # the report's own case before deciding; in a window, the case it joined
    unit: str
    district: str | None
    cell: str | None  # ~250 m grid cell
    lat: float | None  # rounded to 4 decimals (~11 m)
    lon: float | None
    citizen: tuple[str, ...]
    received_at: int  # epoch seconds
    signature: bytes  # num_perm × uint16, b"" for a text without words
    numbers: tuple[int, ...] = ()


class DecisionKind(StrEnum):
    """What a new report is."""

    NEW = "new"
    ATTACH_SAME_CITIZEN = "attach-same-citizen"
    CLUSTER = "cluster"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on a report. ``case_id``: its own (NEW), the master, or the first delivery's."""

    kind: DecisionKind
    case_id: str
    reason: Literal["text", "place"] | None = None
    score: float | None = None
    matched: str | None = None  # message id of the report it was matched with


def _point(msg: CitizenMessage) -> tuple[float, float] | None:
    loc = msg.location
    return (loc.lat, loc.lon) if loc and loc.lat is not None and loc.lon is not None else None


def fingerprints(
    reports: Sequence[tuple[CitizenMessage, Classification]], settings: ClusterSettings
) -> list[Fingerprint]:
    """Fingerprints of many reports (signatures computed in one batch)."""
    tokens = [f.text_tokens(msg.text_folded) for msg, _ in reports]
    sigs = f.text_signatures(
        (f.shingles(t, settings.shingle_size) for t in tokens), settings.num_perm
    )
    salt = settings.salt.get_secret_value().encode("utf-8")
    out = []
    for (msg, cls), words, sig in zip(reports, tokens, sigs, strict=True):
        point = _point(msg)
        out.append(
            Fingerprint(
                message_id=msg.message_id,
                case_id=msg.tracking_number,
                unit=cls.unit,
                district=cls.district,
                cell=f.geo_cell(*point, settings.cell_size_m) if point else None,
                lat=round(point[0], 4) if point else None,
                lon=round(point[1], 4) if point else None,
                citizen=f.citizen_keys(msg.citizen, salt),
                received_at=int(msg.received_at.timestamp()),
                signature=sig,
                numbers=f.number_marks(words),
            )
        )
    return out


def partition_key(unit: str, district: str | None, cell: str | None) -> str:
    """The key of the repartition topic and of the window table.

    ``unit|district`` when the district is known, else ``unit|@<4 km cell>``, else
    ``unit|-``. Reports that may be one problem share a key and so a partition and a window.
    Trade-off: when one report of a problem names its district and another does not (or two
    fall on both sides of a 4 km cell edge) they get different keys and are not compared.
    """
    if district:
        return f"{unit}|{district}"
    if cell:
        return f"{unit}|@{f.coarse_cell(cell)}"
    return f"{unit}|-"


def cluster_key(msg: CitizenMessage, cls: Classification, settings: ClusterSettings) -> str:
    """The partition key of a classified report (what the producer of ``intake.cluster`` uses)."""
    point = _point(msg)
    cell = f.geo_cell(*point, settings.cell_size_m) if point else None
    return partition_key(cls.unit, cls.district, cell)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def report_distance(a: Fingerprint, b: Fingerprint) -> float | None:
    """Metres between two reports, None unless both are located."""
    if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
        return None
    return f.distance_m(a.lat, a.lon, b.lat, b.lon)


def districts_differ(a: Fingerprint, b: Fingerprint) -> bool:
    """Both name a district, and not the same one."""
    return a.district is not None and b.district is not None and a.district != b.district


def same_text(
    a: Fingerprint, b: Fingerprint, jac: float, dt: float, dist: float | None, st: ClusterSettings
) -> bool:
    """Rule 3: similar text, recent, not in another district, place or numbered street."""
    return (
        jac >= st.jaccard_threshold
        and dt <= st.cluster_window.total_seconds()
        and not districts_differ(a, b)
        and (dist is None or dist <= st.text_radius_m)
        and numbers_agree(a, b)
    )


def numbers_agree(a: Fingerprint, b: Fingerprint) -> bool:
    """Street, building or door numbers do not contradict: both name none, or share one."""
    return not (a.numbers and b.numbers and not set(a.numbers) & set(b.numbers))


def decide(
    candidate: Fingerprint, window: Sequence[Fingerprint], settings: ClusterSettings, now: datetime
) -> Decision:
    """What ``candidate`` is, given the recent reports of its key (see the module's rules).

    The rules' reference statement: the worker decides with the indexed
    :class:`streams.cluster.window.KeyWindow`, which gives the same verdicts."""
    for seen in window:
        if seen.message_id == candidate.message_id:
            return Decision(DecisionKind.DUPLICATE, seen.case_id, matched=seen.message_id)
    at = min(candidate.received_at, _epoch(now))  # a clock in the future opens no window
    peers = [s for s in window if s.unit == candidate.unit]

    mine = set(candidate.citizen)
    same_citizen = [
        s
        for s in peers
        if mine.intersection(s.citizen)
        and abs(at - s.received_at) <= settings.attach_window.total_seconds()
        and not districts_differ(s, candidate)
        and (report_distance(s, candidate) or 0.0) <= settings.citizen_radius_m
    ]
    if same_citizen:
        newest = max(same_citizen, key=lambda s: s.received_at)
        return Decision(DecisionKind.ATTACH_SAME_CITIZEN, newest.case_id, matched=newest.message_id)

    first_seen: dict[str, int] = {}
    for s in window:
        first_seen[s.case_id] = min(first_seen.get(s.case_id, s.received_at), s.received_at)
    best: tuple[float, int, Decision] | None = None  # (score, -first seen of master, decision)
    similarity = f.jaccard(candidate.signature, [s.signature for s in peers])
    for seen, jac in zip(peers, similarity, strict=True):
        dt, dist = abs(at - seen.received_at), report_distance(seen, candidate)
        options: list[tuple[float, Literal["text", "place"]]] = []
        if same_text(candidate, seen, jac, dt, dist, settings):
            options.append((jac, "text"))
        near = dist is not None and dist <= settings.place_radius_m
        if near and dt <= settings.place_window.total_seconds() and numbers_agree(candidate, seen):
            options.append((1.0 - (dist or 0.0) / settings.place_radius_m, "place"))
        if not options:
            continue
        score, reason = max(options)
        rank = (round(score, 6), -first_seen[seen.case_id])
        if best is None or rank > best[:2]:
            decision = Decision(
                DecisionKind.CLUSTER, seen.case_id, reason, round(score, 3), seen.message_id
            )
            best = (rank[0], rank[1], decision)
    return best[2] if best is not None else Decision(DecisionKind.NEW, candidate.case_id)


def prune(
    window: Sequence[Fingerprint], now: datetime, settings: ClusterSettings
) -> list[Fingerprint]:
    """The window without what can no longer matter, oldest first, at most ``max_reports_per_key``.

    Past the cluster and place windows only the citizen rule needs a report, so anonymous
    reports go first; then everything past the horizon; then the oldest beyond the bound.
    """
    cutoff_all = _epoch(now) - int(settings.horizon.total_seconds())
    cutoff_anonymous = _epoch(now) - int(
        max(settings.cluster_window, settings.place_window).total_seconds()
    )
    kept = [
        s
        for s in window
        if s.received_at >= cutoff_all and (s.citizen or s.received_at >= cutoff_anonymous)
    ]
    kept.sort(key=lambda s: s.received_at)
    return kept[-settings.max_reports_per_key :]


def joined(candidate: Fingerprint, decision: Decision) -> Fingerprint:
    """The candidate as it is kept in the window: carrying the case it joined."""
    return replace(candidate, case_id=decision.case_id)


def needs_clustering(event: CaseEvent) -> bool:
    """Whether a case event goes through clustering: a ``created`` report of normal urgency.

    Follow-ups name their case already; emergencies are handed off at once, never folded into
    an older case; a call resolved on the line is answered as its own case.
    """
    return (
        event.kind is CaseEventKind.CREATED
        and event.message is not None
        and event.classification is not None
        and event.classification.urgency is Urgency.NORMAL
        and not event.message.resolved_on_line
    )


_NOTES = {
    DecisionKind.ATTACH_SAME_CITIZEN: "aynı vatandaşın aynı konudaki yeni bildirimi",
    DecisionKind.CLUSTER: "başka vatandaşın aynı sorun hakkındaki bildirimi",
}


def case_event_for(created: CaseEvent, decision: Decision) -> CaseEvent | None:
    """The ``intake.cases`` event a decision produces from the report's ``created`` event.

    NEW: the ``created`` event as it is. ATTACH/CLUSTER: an ``attached`` event on the master
    case carrying the whole message (its channel, contact and address, so this reporter is
    answered too). DUPLICATE: nothing. Event ids are stable, so a replay overwrites itself.
    """
    if decision.kind is DecisionKind.NEW:
        return created
    if decision.kind is DecisionKind.DUPLICATE or created.message is None:
        return None
    note = _NOTES[decision.kind]
    if decision.reason is not None:
        basis = "metin" if decision.reason == "text" else "konum"
        note += f" (eşleşme: {basis}, skor {decision.score})"
    return CaseEvent(
        event_id=case_event_id(
            decision.case_id, CaseEventKind.ATTACHED, created.message.message_id
        ),
        case_id=decision.case_id,
        tracking_number=decision.case_id,
        kind=CaseEventKind.ATTACHED,
        at=created.message.received_at,
        message=created.message,
        note=note,
    )
