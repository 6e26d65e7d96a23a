"""The monthly report: what happened to the cases received in one month, per unit.

Definitions (every number counts the month's *cohort*: the cases received in the month):

- **month**: a calendar month in Europe/Istanbul time, ``[1st 00:00, next 1st 00:00)`` local
  time, not UTC: a case received on 31 October 23:30 in Istanbul (20:30Z) is October's, one
  received on 1 November 00:30 in Istanbul (31 October 21:30Z) is November's. "Received" is
  the first report's ``received_at``.
- **received** (alınan): cases of the month.
- **answered** (yanıtlanan): of those, cases with a unit's answer (``answered_cases``) given
  at or before the report time ``now``.
- **on time / late** (zamanında / geç): answered cases with ``answered_at <= due`` / after
  it; answered cases without a due date count in neither, so ``on_time + late <= answered``.
- **open** (açık): cases not answered by ``now`` and not finished otherwise.
- **open past due** (süresi geçmiş açık): open cases whose due date is before ``now``.
- **finished without answer** (yanıtsız kapanan): cases closed, or settled with a reply,
  without a unit's answer (e.g. forwarded to an outside body with a notice to the citizen).
  ``received = answered + open + finished without answer`` on every line.
- **median time to answer** (medyan yanıt süresi): the median, in hours rounded to one
  decimal, of ``answered_at - received_at`` over the answered cases (an answer stamped before
  the receipt, a clock skew, counts as 0); empty when nothing was answered.

Breakdowns: by unit (the case's current unit), by channel and by message type, plus a total.
:func:`summarize` is a pure function over :class:`~sinks.store.records.CaseOutcome` values;
:func:`build_report` reads them from the store. Files: :mod:`sinks.store.report_files`.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from schemas.case import MessageType
from schemas.common import Channel
from schemas.taxonomy import taxonomy
from sinks.store.records import CaseOutcome, CaseStatus

__all__ = [
    "CHANNEL_LABELS",
    "TYPE_LABELS",
    "MonthlyReport",
    "OutcomeSource",
    "ReportLine",
    "build_report",
    "month_bounds",
    "month_title",
    "previous_month",
    "summarize",
]

ISTANBUL = ZoneInfo("Europe/Istanbul")
UNCLASSIFIED = "Sınıflandırılmamış"
MONTH_NAMES = (
    "Ocak",
    "Şubat",
    "Mart",
    "Nisan",
    "Mayıs",
    "Haziran",
    "Temmuz",
    "Ağustos",
    "Eylül",
    "Ekim",
    "Kasım",
    "Aralık",
)
CHANNEL_LABELS: dict[Channel, str] = {
    Channel.EMAIL: "E-posta",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TWITTER: "X (Twitter)",
    Channel.CALLS: "Telefon (Alo 153)",
    Channel.API: "Web / API",
}
TYPE_LABELS: dict[MessageType, str] = {
    MessageType.SIKAYET: "Şikâyet",
    MessageType.TALEP: "Talep",
    MessageType.ONERI: "Öneri",
    MessageType.IHBAR: "İhbar",
    MessageType.BILGI_EDINME: "Bilgi edinme",
    MessageType.TESEKKUR: "Teşekkür",
}
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class OutcomeSource(Protocol):
    """What :func:`build_report` needs from the store (``CaseStore`` is one)."""

    def outcomes_received_between(self, start: datetime, end: datetime) -> list[CaseOutcome]:
        """The cases received in ``[start, end)`` with their answers."""
        ...


@dataclass(frozen=True, slots=True)
class ReportLine:
    """The numbers of one group of cases (a unit, a channel, a type, or all of them)."""

    key: str
    label: str
    received: int
    answered: int
    on_time: int
    late: int
    open: int
    open_past_due: int
    finished_without_answer: int
    median_hours: float | None


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """One month's report; ``start``/``end`` are the month's bounds as UTC instants."""

    month: str
    title: str
    start: datetime
    end: datetime
    generated_at: datetime
    total: ReportLine
    by_unit: tuple[ReportLine, ...]
    by_channel: tuple[ReportLine, ...]
    by_type: tuple[ReportLine, ...]


def _parse_month(month: str) -> tuple[int, int]:
    match = _MONTH.match(month.strip())
    if not match:
        raise ValueError(f"month must be YYYY-MM (e.g. 2026-11), not {month!r}")
    return int(match.group(1)), int(match.group(2))


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC instants where the Istanbul calendar month ``YYYY-MM`` starts and ends."""
    year, number = _parse_month(month)
    following = (year + 1, 1) if number == 12 else (year, number + 1)
    start = datetime(year, number, 1, tzinfo=ISTANBUL)
    end = datetime(*following, 1, tzinfo=ISTANBUL)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_title(month: str) -> str:
    """The report's Turkish title, e.g. ``Aylık Başvuru Raporu — Kasım 2026``."""
    year, number = _parse_month(month)
    return f"Aylık Başvuru Raporu — {MONTH_NAMES[number - 1]} {year}"


def previous_month(now: datetime) -> str:
    """The last complete Istanbul calendar month before ``now`` as ``YYYY-MM`` (a default)."""
    local = now.astimezone(ISTANBUL)
    year, number = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return f"{year:04d}-{number:02d}"


def _line(key: str, label: str, outcomes: Sequence[CaseOutcome], now: datetime) -> ReportLine:
    answered = [o for o in outcomes if o.answered_at is not None and o.answered_at <= now]
    unanswered = [o for o in outcomes if o.answered_at is None or o.answered_at > now]
    still_open = [
        o
        for o in unanswered
        # closed, or settled by a reply, without a unit's answer: finished, not open
        if o.status is CaseStatus.OPEN or o.answered_at is not None
    ]
    hours = [
        max((o.answered_at - o.received_at).total_seconds(), 0.0) / 3600
        for o in answered
        if o.answered_at is not None
    ]
    return ReportLine(
        key=key,
        label=label,
        received=len(outcomes),
        answered=len(answered),
        on_time=sum(1 for o in answered if o.on_time is True),
        late=sum(1 for o in answered if o.on_time is False),
        open=len(still_open),
        open_past_due=sum(1 for o in still_open if o.due is not None and o.due < now),
        finished_without_answer=len(unanswered) - len(still_open),
        median_hours=round(statistics.median(hours), 1) if hours else None,
    )


def _grouped(
    outcomes: Iterable[CaseOutcome],
    key: Callable[[CaseOutcome], str],
    order: Sequence[str],
    label: Callable[[str], str],
    now: datetime,
) -> tuple[ReportLine, ...]:
    groups: dict[str, list[CaseOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[key(outcome)].append(outcome)
    rank = {code: index for index, code in enumerate(order)}
    # Known codes in their usual order, unknown codes by name, unclassified ("") last.
    keys = sorted(groups, key=lambda k: (k == "", rank.get(k, len(rank)), k))
    return tuple(_line(k, label(k), groups[k], now) for k in keys)


def summarize(outcomes: Iterable[CaseOutcome], month: str, now: datetime) -> MonthlyReport:
    """The report of ``month`` as of ``now`` from the cases' outcomes (others are ignored)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    start, end = month_bounds(month)
    cohort = [o for o in outcomes if start <= o.received_at < end]
    units = taxonomy().units
    return MonthlyReport(
        month=month.strip(),
        title=month_title(month),
        start=start,
        end=end,
        generated_at=now.astimezone(UTC),
        total=_line("", "Toplam", cohort, now),
        by_unit=_grouped(
            cohort,
            lambda o: o.unit or "",
            list(units),
            lambda code: units.get(code, code) if code else UNCLASSIFIED,
            now,
        ),
        by_channel=_grouped(
            cohort,
            lambda o: o.channel.value,
            [c.value for c in Channel],
            lambda code: CHANNEL_LABELS.get(Channel(code), code),
            now,
        ),
        by_type=_grouped(
            cohort,
            lambda o: o.type.value if o.type else "",
            [t.value for t in MessageType],
            lambda code: TYPE_LABELS[MessageType(code)] if code else UNCLASSIFIED,
            now,
        ),
    )


def build_report(store: OutcomeSource, month: str, now: datetime) -> MonthlyReport:
    """Read the month's cases from the store and summarize them as of ``now``."""
    start, end = month_bounds(month)
    return summarize(store.outcomes_received_between(start, end), month, now)
