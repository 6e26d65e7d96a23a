"""One partition key's window in memory, indexed so a decision does not walk it in Python.

:func:`streams.cluster.logic.decide` states the rules over a plain list; :class:`KeyWindow`
gives the same decision (a test holds the two together on random windows) at a cost that
barely grows with the window:

* rule 1 (the same message) is a dictionary lookup by message id;
* rule 2 (the same citizen) looks up the salted citizen keys;
* rules 3 and 4 (similar text, same place) are screened for the whole window at once with
  numpy: signature agreement, time gaps and distances as columns. Only the few reports that
  pass the screen are checked by the exact rules of ``logic`` (the screen is a superset: its
  distance bounds have a metre of slack for rounding).

Reports are kept in slots (columns grow by doubling, freed slots are reused) and, for
pruning, in two lists sorted by time: reports with a citizen key (kept for the attach
window) and anonymous ones (kept only for the cluster and place windows).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import numpy as np

from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    DecisionKind,
    Fingerprint,
    districts_differ,
    numbers_agree,
    report_distance,
    same_text,
)

__all__ = ["KeyWindow"]

_SIG = np.dtype("<u2")
_EARTH_RADIUS_M = 6_371_008.8
_SLACK_M = 1.0  # the screen's distances are numpy's; the exact check uses logic's
_M_PER_DEGREE = _EARTH_RADIUS_M * math.pi / 180  # of latitude


class KeyWindow:
    """The reports of one partition key, in time order, with columns for screening."""

    def __init__(self, num_perm: int) -> None:
        self.num_perm = num_perm
        self._count_type = np.uint8 if num_perm < 256 else np.uint16
        self._fps: list[Fingerprint | None] = []
        self._free: list[int] = []
        self._seq = 0
        self._order: dict[int, tuple[int, int]] = {}  # slot → (received_at, arrival)
        self._named: list[tuple[int, int, int]] = []  # (received_at, arrival, slot)
        self._anonymous: list[tuple[int, int, int]] = []
        self._by_message: dict[str, int] = {}
        self._by_citizen: dict[str, set[int]] = {}
        self._by_case: dict[str, set[int]] = {}
        self._case_first: dict[str, int] = {}
        capacity = 8
        self._at = np.zeros(capacity, dtype=np.int64)
        self._arrival = np.zeros(capacity, dtype=np.int64)
        self._lat = np.full(capacity, np.nan)
        self._lon = np.full(capacity, np.nan)
        # one row per permutation, one column per slot: the agreement of a candidate is then a
        # sum of num_perm rows (vectorised adds), about 2.5× faster for 1,000 reports than
        # summing num_perm values along each report's row
        self._sig = np.zeros((num_perm, capacity), dtype=_SIG)
        self._has_sig = np.zeros(capacity, dtype=bool)
        self._live = np.zeros(capacity, dtype=bool)

    def __len__(self) -> int:
        return len(self._by_message)

    def __iter__(self) -> Iterator[Fingerprint]:
        """The reports, oldest first (ties in arrival order)."""
        for _, _, slot in sorted([*self._named, *self._anonymous]):
            fp = self._fps[slot]
            assert fp is not None
            yield fp

    def newest(self) -> int:
        """The latest ``received_at`` in the window (0 when it is empty)."""
        return max([o[-1][0] for o in (self._named, self._anonymous) if o], default=0)

    def get(self, message_id: str) -> Fingerprint | None:
        """The report with this message id, if it is in the window."""
        slot = self._by_message.get(message_id)
        return None if slot is None else self._fps[slot]

    # -- changes -----------------------------------------------------------------------------

    def add(self, fp: Fingerprint) -> None:
        """Keep ``fp`` (a report already in the window is replaced)."""
        if fp.message_id in self._by_message:
            self.remove(fp.message_id)
        slot = self._slot()
        self._fps[slot] = fp
        arrival, self._seq = self._seq, self._seq + 1
        self._order[slot] = (fp.received_at, arrival)
        ordered = self._named if fp.citizen else self._anonymous
        bisect.insort(ordered, (fp.received_at, arrival, slot))
        self._by_message[fp.message_id] = slot
        for key in fp.citizen:
            self._by_citizen.setdefault(key, set()).add(slot)
        self._by_case.setdefault(fp.case_id, set()).add(slot)
        first = self._case_first.get(fp.case_id)
        if first is not None and fp.received_at < first:
            self._case_first[fp.case_id] = fp.received_at
        self._at[slot] = fp.received_at
        self._arrival[slot] = arrival
        located = fp.lat is not None and fp.lon is not None
        self._lat[slot] = fp.lat if located else np.nan
        self._lon[slot] = fp.lon if located else np.nan
        usable = len(fp.signature) == 2 * self.num_perm
        self._has_sig[slot] = usable
        if usable:
            self._sig[:, slot] = np.frombuffer(fp.signature, dtype=_SIG)
        self._live[slot] = True

    def remove(self, message_id: str) -> Fingerprint | None:
        """Forget a report; returns it (None when it was not in the window)."""
        slot = self._by_message.pop(message_id, None)
        if slot is None:
            return None
        fp = self._fps[slot]
        assert fp is not None
        at, arrival = self._order.pop(slot)
        ordered = self._named if fp.citizen else self._anonymous
        del ordered[bisect.bisect_left(ordered, (at, arrival, slot))]
        for key in fp.citizen:
            _discard(self._by_citizen, key, slot)
        _discard(self._by_case, fp.case_id, slot)
        if self._case_first.get(fp.case_id) == at:
            del self._case_first[fp.case_id]  # recomputed when next asked
        self._fps[slot] = None
        self._live[slot] = False
        self._has_sig[slot] = False
        self._free.append(slot)
        return fp

    def prune(self, reference: datetime, settings: ClusterSettings) -> list[Fingerprint]:
        """Drop what can no longer matter (as :func:`streams.cluster.logic.prune`); returns
        the dropped reports, so their table entries can be deleted."""
        now = int(reference.timestamp())
        cutoff_all = now - int(settings.horizon.total_seconds())
        cutoff_anonymous = now - int(
            max(settings.cluster_window, settings.place_window).total_seconds()
        )
        dropped: list[Fingerprint] = []
        for ordered, cutoff in ((self._named, cutoff_all), (self._anonymous, cutoff_anonymous)):
            while ordered and ordered[0][0] < cutoff:
                dropped.append(self._drop(ordered[0][2]))
        while len(self) > settings.max_reports_per_key:
            fronts = [o[0] for o in (self._named, self._anonymous) if o]
            dropped.append(self._drop(min(fronts)[2]))
        return dropped

    def _drop(self, slot: int) -> Fingerprint:
        fp = self._fps[slot]
        assert fp is not None
        self.remove(fp.message_id)
        return fp

    def _slot(self) -> int:
        if self._free:
            return self._free.pop()
        slot = len(self._fps)
        self._fps.append(None)
        if slot >= self._at.size:
            self._grow(2 * self._at.size)
        return slot

    def _grow(self, capacity: int) -> None:
        extra = capacity - self._at.size
        self._at = np.concatenate([self._at, np.zeros(extra, dtype=np.int64)])
        self._arrival = np.concatenate([self._arrival, np.zeros(extra, dtype=np.int64)])
        self._lat = np.concatenate([self._lat, np.full(extra, np.nan)])
        self._lon = np.concatenate([self._lon, np.full(extra, np.nan)])
        self._sig = np.concatenate(
            [self._sig, np.zeros((self.num_perm, extra), dtype=_SIG)], axis=1
        )
        self._has_sig = np.concatenate([self._has_sig, np.zeros(extra, dtype=bool)])
        self._live = np.concatenate([self._live, np.zeros(extra, dtype=bool)])

    # -- the decision ------------------------------------------------------------------------

    def decide(self, candidate: Fingerprint, settings: ClusterSettings, now: datetime) -> Decision:
        """What ``candidate`` is: the same verdict as ``logic.decide`` over this window."""
        seen = self.get(candidate.message_id)
        if seen is not None:
            return Decision(DecisionKind.DUPLICATE, seen.case_id, matched=seen.message_id)
        at = min(candidate.received_at, int(now.timestamp()))
        attached = self._same_citizen(candidate, at, settings)
        if attached is not None:
            return attached
        best: tuple[float, int, int] | None = None  # (score, -first seen of master, -position)
        decision = Decision(DecisionKind.NEW, candidate.case_id)
        slots, estimates, similarity = self._screen(candidate, at, settings)
        # Best estimate first (ties in window order); once the estimates fall below the best
        # exact score, nothing later can win, so a dense spot is not walked report by report.
        for position in np.argsort(-estimates, kind="stable").tolist():
            if best is not None and estimates[position] < best[0] - 1e-6:
                break
            fp = self._fps[slots[position]]
            assert fp is not None
            scored = self._score(candidate, fp, similarity[position], at, settings)
            if scored is None:
                continue
            score, reason = scored
            rank = (round(score, 6), -self._first_seen(fp.case_id), -position)
            if best is None or rank > best:
                decision = Decision(
                    DecisionKind.CLUSTER, fp.case_id, reason, round(score, 3), fp.message_id
                )
                best = rank
        return decision

    @staticmethod
    def _score(
        candidate: Fingerprint, fp: Fingerprint, jac: float, at: int, settings: ClusterSettings
    ) -> tuple[float, Literal["text", "place"]] | None:
        """Rules 3 and 4 exactly as ``logic.decide`` applies them to one report (``jac``:
        the signatures' agreement, computed as ``features.jaccard`` does)."""
        if fp.unit != candidate.unit:
            return None
        dt, dist = abs(at - fp.received_at), report_distance(fp, candidate)
        options: list[tuple[float, Literal["text", "place"]]] = []
        if same_text(candidate, fp, jac, dt, dist, settings):
            options.append((jac, "text"))
        near = dist is not None and dist <= settings.place_radius_m
        recent = dt <= settings.place_window.total_seconds()
        if near and recent and numbers_agree(candidate, fp):
            options.append((1.0 - (dist or 0.0) / settings.place_radius_m, "place"))
        return max(options) if options else None

    def _same_citizen(
        self, candidate: Fingerprint, at: int, settings: ClusterSettings
    ) -> Decision | None:
        """Rule 2: the citizen's newest matching report (ties: the first in window order),
        looked for newest first."""
        slots = set().union(*(self._by_citizen.get(key, ()) for key in candidate.citizen))
        window = settings.attach_window.total_seconds()
        newest: Fingerprint | None = None
        for slot in sorted(slots, key=self._order.__getitem__, reverse=True):
            fp = self._fps[slot]
            assert fp is not None
            if newest is not None and fp.received_at < newest.received_at:
                break
            if (
                fp.unit == candidate.unit
                and abs(at - fp.received_at) <= window
                and not districts_differ(fp, candidate)
                and (report_distance(fp, candidate) or 0.0) <= settings.citizen_radius_m
            ):
                newest = fp
        if newest is None:
            return None
        return Decision(DecisionKind.ATTACH_SAME_CITIZEN, newest.case_id, matched=newest.message_id)

    def _screen(
        self, candidate: Fingerprint, at: int, settings: ClusterSettings
    ) -> tuple[list[int], np.ndarray, list[float]]:
        """Slots that may match by text or place, in window order (a superset of the
        matches), with an estimate of each one's score (within rounding of the exact one)
        and its signature agreement."""
        n = len(self._fps)
        if n == 0:
            return [], np.zeros(0), []
        dt = np.abs(self._at[:n] - at)
        agree = np.zeros(n)
        similar = np.zeros(n, dtype=bool)
        if len(candidate.signature) == 2 * self.num_perm:
            mine = np.frombuffer(candidate.signature, dtype=_SIG)
            # counted in small integers (about twice as fast as a mean over floats); the
            # division gives the same float as ``features.jaccard``
            equal = (self._sig[:, :n] == mine[:, None]).sum(axis=0, dtype=self._count_type)
            agree = equal / self.num_perm
            similar = (
                self._has_sig[:n]
                & (agree >= settings.jaccard_threshold)
                & (dt <= settings.cluster_window.total_seconds())
            )
        dist = self._distances(candidate, n, similar, settings.place_radius_m + _SLACK_M)
        text = similar & ~(dist > settings.text_radius_m + _SLACK_M)  # NaN is never far
        place = (dist <= settings.place_radius_m + _SLACK_M) & (
            dt <= settings.place_window.total_seconds()
        )
        hits = np.flatnonzero(self._live[:n] & (text | place))
        hits = hits[np.lexsort((self._arrival[hits], self._at[hits]))]
        with np.errstate(invalid="ignore"):
            by_place = np.where(place[hits], 1.0 - dist[hits] / settings.place_radius_m, -1.0)
        estimates = np.maximum(np.where(text[hits], agree[hits], -1.0), by_place)
        similarity = np.where(self._has_sig[hits], agree[hits], 0.0)
        return hits.tolist(), estimates, similarity.tolist()

    def _distances(
        self, candidate: Fingerprint, n: int, wanted: np.ndarray, within_m: float
    ) -> np.ndarray:
        """Metres from the candidate: NaN where either is unlocated; computed for the
        ``wanted`` rows and those that may lie ``within_m`` (by latitude alone: a great
        circle is never shorter than its north-south part), +inf for the rest."""
        if candidate.lat is None or candidate.lon is None:
            return np.full(n, np.nan)
        lat, lon = self._lat[:n], self._lon[:n]
        with np.errstate(invalid="ignore"):
            near = np.abs(lat - candidate.lat) <= within_m / _M_PER_DEGREE * 1.001 + 1e-9
        rows = np.flatnonzero(near | (wanted & ~np.isnan(lat)))
        dist = np.where(np.isnan(lat), np.nan, np.inf)
        p1, p2 = math.radians(candidate.lat), np.radians(lat[rows])
        dp, dl = p2 - p1, np.radians(lon[rows] - candidate.lon)
        h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        dist[rows] = 2 * _EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        return dist

    def _first_seen(self, case_id: str) -> int:
        """When the case's oldest report in the window arrived (cached until it leaves)."""
        first = self._case_first.get(case_id)
        if first is None:
            first = self._case_first[case_id] = min(
                self._order[slot][0] for slot in self._by_case[case_id]
            )
        return first


def _discard(index: dict[str, set[int]], key: str, slot: int) -> None:
    slots = index.get(key)
    if slots is not None:
        slots.discard(slot)
        if not slots:
            del index[key]
