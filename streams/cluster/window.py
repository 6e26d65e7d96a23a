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


class KeyWindow:
    """The reports of one partition key, in time order, with columns for screening."""

    def __init__(self, num_perm: int) -> None:
        self.num_perm = num_perm
        self._fps: list[Fingerprint | None] = []
        self._free: list[int] = []
        self._seq = 0
        self._order: dict[int, tuple[int, int]] = {}  # slot → (received_at, arrival)
        self._named: list[tuple[int, int, int]] = []  # (received_at, arrival, slot)
        self._anonymous: list[tuple[int, int, int]] = []
        self._by_message: dict[str, int] = {}
        self._by_citizen: dict[str, set[int]] = {}
        self._by_case: dict[str, set[int]] = {}
        capacity = 8
        self._at = np.zeros(capacity, dtype=np.int64)
        self._lat = np.full(capacity, np.nan)
        self._lon = np.full(capacity, np.nan)
        self._sig = np.zeros((capacity, num_perm), dtype=_SIG)
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
        self._at[slot] = fp.received_at
        located = fp.lat is not None and fp.lon is not None
        self._lat[slot] = fp.lat if located else np.nan
        self._lon[slot] = fp.lon if located else np.nan
        usable = len(fp.signature) == 2 * self.num_perm
        self._has_sig[slot] = usable
        if usable:
            self._sig[slot] = np.frombuffer(fp.signature, dtype=_SIG)
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
        self._lat = np.concatenate([self._lat, np.full(extra, np.nan)])
        self._lon = np.concatenate([self._lon, np.full(extra, np.nan)])
        self._sig = np.concatenate([self._sig, np.zeros((extra, self.num_perm), dtype=_SIG)])
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
        best: tuple[float, int, Decision] | None = None
        for slot in self._screen(candidate, at, settings):
            fp = self._fps[slot]
            assert fp is not None
            if fp.unit != candidate.unit:
                continue
            jac = _jaccard(candidate, self._sig[slot]) if self._has_sig[slot] else 0.0
            dt, dist = abs(at - fp.received_at), report_distance(fp, candidate)
            options: list[tuple[float, str]] = []
            if same_text(candidate, fp, jac, dt, dist, settings):
                options.append((jac, "text"))
            near = dist is not None and dist <= settings.place_radius_m
            recent = dt <= settings.place_window.total_seconds()
            if near and recent and numbers_agree(candidate, fp):
                options.append((1.0 - (dist or 0.0) / settings.place_radius_m, "place"))
            if not options:
                continue
            score, reason = max(options)
            rank = (round(score, 6), -self._first_seen(fp.case_id))
            if best is None or rank > best[:2]:
                decision = Decision(
                    DecisionKind.CLUSTER,
                    fp.case_id,
                    "text" if reason == "text" else "place",
                    round(score, 3),
                    fp.message_id,
                )
                best = (rank[0], rank[1], decision)
        return best[2] if best is not None else Decision(DecisionKind.NEW, candidate.case_id)

    def _same_citizen(
        self, candidate: Fingerprint, at: int, settings: ClusterSettings
    ) -> Decision | None:
        slots = set().union(*(self._by_citizen.get(key, ()) for key in candidate.citizen))
        window = settings.attach_window.total_seconds()
        matches = []
        for slot in sorted(slots, key=self._order.__getitem__):
            fp = self._fps[slot]
            assert fp is not None
            if (
                fp.unit == candidate.unit
                and abs(at - fp.received_at) <= window
                and not districts_differ(fp, candidate)
                and (report_distance(fp, candidate) or 0.0) <= settings.citizen_radius_m
            ):
                matches.append(fp)
        if not matches:
            return None
        newest = max(matches, key=lambda fp: fp.received_at)
        return Decision(DecisionKind.ATTACH_SAME_CITIZEN, newest.case_id, matched=newest.message_id)

    def _screen(self, candidate: Fingerprint, at: int, settings: ClusterSettings) -> list[int]:
        """Slots that may match by text or place, oldest first (a superset of the matches)."""
        n = len(self._fps)
        if n == 0:
            return []
        live = self._live[:n]
        dt = np.abs(self._at[:n] - at)
        dist = self._distances(candidate, n)
        text = np.zeros(n, dtype=bool)
        if len(candidate.signature) == 2 * self.num_perm:
            mine = np.frombuffer(candidate.signature, dtype=_SIG)
            agree = (self._sig[:n] == mine).mean(axis=1)
            far = dist > settings.text_radius_m + _SLACK_M  # NaN (unlocated) is never far
            text = (
                self._has_sig[:n]
                & (agree >= settings.jaccard_threshold)
                & (dt <= settings.cluster_window.total_seconds())
                & ~far
            )
        near = dist <= settings.place_radius_m + _SLACK_M
        place = near & (dt <= settings.place_window.total_seconds())
        slots = np.flatnonzero(live & (text | place)).tolist()
        return sorted(slots, key=self._order.__getitem__)

    def _distances(self, candidate: Fingerprint, n: int) -> np.ndarray:
        if candidate.lat is None or candidate.lon is None:
            return np.full(n, np.nan)
        p1, p2 = math.radians(candidate.lat), np.radians(self._lat[:n])
        dp, dl = p2 - p1, np.radians(self._lon[:n] - candidate.lon)
        h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        with np.errstate(invalid="ignore"):
            return 2 * _EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))

    def _first_seen(self, case_id: str) -> int:
        return min(self._order[slot][0] for slot in self._by_case[case_id])


def _jaccard(candidate: Fingerprint, row: np.ndarray) -> float:
    """As ``features.jaccard``: the share of agreeing minima (0 without a signature)."""
    if len(candidate.signature) != row.size * row.itemsize:
        return 0.0
    mine = np.frombuffer(candidate.signature, dtype=_SIG)
    return float((row == mine).mean())


def _discard(index: dict[str, set[int]], key: str, slot: int) -> None:
    slots = index.get(key)
    if slots is not None:
        slots.discard(slot)
        if not slots:
            del index[key]
