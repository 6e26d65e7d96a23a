"""Legal deadline clocks: when a case must be forwarded, answered or the applicant told (pure).

Every due date is computed on one Turkish working calendar and records the rule and the calendar
that produced it, so a disputed date can be explained later. How Turkish administrative practice
counts, and the choices made here:

- **Day of receipt.** The calendar is Europe/Istanbul whatever offset ``received`` carries; a naive
  datetime is refused, because guessing its zone could move a receipt across midnight. As in
  registry practice (evrak kayıt), an application that arrives after the office closes
  (``office_closes_at``, default 17:30; 13:00 on an arife counted as a half working day) or on a
  non-working day counts as received on the next working day (``counted_from``). Setting
  ``office_closes_at`` to None gives the strict reading: the local calendar date is the day of
  receipt whatever the hour or weekday (earlier due dates).
- **Working days (iş günü, Law 4982 m.11).** The day of receipt is not counted; counting starts on
  the next day and skips weekends (Saturday, Sunday), official holidays and the configured extra
  holidays. The N-th working day so counted is the due date, so it is always a working day.
  Bilgi edinme: forward to the competent unit by the 2nd working day (the product's rule, DESIGN
  §5), answer by the 15th; with an extension (bilgi-edinme-uzatma) answer by the 30th and tell the
  applicant of the extension and its reason by the 15th (``notice_by``).
- **Calendar days (Law 3071 m.7, "en geç otuz gün içinde"; CİMER uses the same rule).** Thirty
  calendar days after the day of receipt; a last day that is not a working day moves to the next
  working day (the general rule for periods ending on a holiday).
- **Other complaints (şikâyet).** A service target in working days per unit (``unit_targets``),
  else ``default_unit_target_days``; counted like Law 4982.
- **Arife.** The package marks the eves of Ramazan and Kurban Bayramı and 28 October as half days
  (from 13:00). With ``arife_counts_as_working_day`` (default) they count as full working days for
  counting; otherwise they are skipped like holidays.
- **Holidays.** ``holidays.country_holidays("TR", language="tr")`` (always Turkish: without the
  language the names follow the system locale, an upstream bug), plus ``extra_holidays`` such as
  administrative leave (idari izin). The package fixes religious holidays through 2032 and marks
  later ones "(tahmini)"; the calendar text names such estimated years when a computation uses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel, ConfigDict, Field

from streams.errors import StageError

__all__ = [
    "ISTANBUL",
    "Basis",
    "Deadline",
    "DeadlineSettings",
    "NaiveReceivedTime",
    "WorkingCalendar",
    "compute_deadline",
    "days_left",
]

#: The zone of the Turkish official calendar.
ISTANBUL = ZoneInfo("Europe/Istanbul")

#: How the package marks a religious holiday whose date is estimated, e.g. "(tahmini)".
_ESTIMATED_MARK = holidays.Turkey.estimated_label.replace("%s", "").strip()

_FORWARD_DAYS = 2
_ANSWER_DAYS = 15
_EXTENDED_DAYS = 30
_PETITION_CALENDAR_DAYS = 30
_CALENDAR_DAY_RULE = "30 gün (takvim günü; son gün tatile denk gelirse ilk iş günü)"


class Basis(StrEnum):
    """The legal basis that sets a case's clock."""

    BILGI_EDINME = "bilgi-edinme"
    BILGI_EDINME_UZATMA = "bilgi-edinme-uzatma"
    DILEKCE = "dilekce"
    CIMER = "cimer"
    SIKAYET = "sikayet"


class NaiveReceivedTime(StageError, ValueError):
    """A receipt time without a zone: the day of receipt cannot be known."""


class DeadlineSettings(BaseModel):
    """How the deadline clocks count (see the module docstring for the rules)."""

    model_config = ConfigDict(frozen=True)

    #: An arife (half day from 13:00) counts as a working day; False skips it like a holiday.
    arife_counts_as_working_day: bool = True
    #: Receipt at or after this local time counts as the next working day; None: never moves.
    office_closes_at: time | None = time(17, 30)
    #: Closing time on an arife that counts as a working day.
    arife_closes_at: time = time(13, 0)
    #: Extra non-working days with their reason, e.g. {"2026-06-01": "İdari izin"}.
    extra_holidays: dict[date, str] = Field(default_factory=dict)
    #: Service target in working days per unit code for complaints (şikâyet).
    unit_targets: dict[str, int] = Field(default_factory=dict)
    default_unit_target_days: int = Field(default=10, ge=1)


class WorkingCalendar:
    """Turkish working days under one ``DeadlineSettings``; holidays are loaded once per year.

    Every new case asks for the same few days again and again, so the answers (working day
    or not, the n-th working day after a day, the calendar's description) are remembered;
    ``settings`` must not change after the calendar is made.
    """

    def __init__(self, settings: DeadlineSettings | None = None) -> None:
        self.settings = settings or DeadlineSettings()
        self._public: dict[int, dict[date, str]] = {}
        self._half_days: dict[int, dict[date, str]] = {}
        self._working: dict[date, bool] = {}
        self._added: dict[tuple[date, int], date] = {}
        self._described: dict[tuple[int, int], str] = {}

    def _load(self, year: int) -> None:
        if year not in self._public:
            public = holidays.country_holidays("TR", years=year, language="tr")
            half = holidays.country_holidays(
                "TR", years=year, language="tr", categories=("half_day",)
            )
            self._public[year] = dict(public)
            self._half_days[year] = dict(half)

    def is_arife(self, day: date) -> bool:
        """Whether ``day`` is a half day (arife, or 28 October) in the package's calendar."""
        self._load(day.year)
        return day in self._half_days[day.year]

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday, not an official or extra holiday, and not a skipped arife."""
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = self._is_working_day(day)
        return known

    def _is_working_day(self, day: date) -> bool:
        if day.weekday() >= 5 or day in self.settings.extra_holidays:
            return False
        self._load(day.year)
        if day in self._public[day.year]:
            return False
        return self.settings.arife_counts_as_working_day or not self.is_arife(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def roll_forward(self, day: date) -> date:
        """``day`` itself when it is a working day, else the next working day."""
        return day if self.is_working_day(day) else self.next_working_day(day)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        found = self._added.get((start, count))
        if found is not None:
            return found
        day = start
        for _ in range(count):
            day = self.next_working_day(day)
        self._added[start, count] = day
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative (days in (end, start]) when ``end`` is earlier."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(
            self.is_working_day(start + timedelta(days=offset))
            for offset in range(1, (end - start).days + 1)
        )

    def counted_from(self, received: datetime) -> date:
        """The day treated as the day of receipt (see the module docstring)."""
        local = _to_local(received)
        day = local.date()
        closes = self.settings.office_closes_at
        if closes is None:
            return day
        if self.settings.arife_counts_as_working_day and self.is_arife(day):
            closes = min(closes, self.settings.arife_closes_at)
        if not self.is_working_day(day) or local.time() >= closes:
            return self.next_working_day(day)
        return day

    def describe(self, first_year: int, last_year: int) -> str:
        """The calendar's settings as staff read them, naming estimated years it used."""
        found = self._described.get((first_year, last_year))
        if found is None:
            found = self._described[first_year, last_year] = self._describe(first_year, last_year)
        return found

    def _describe(self, first_year: int, last_year: int) -> str:
        settings = self.settings
        closes = settings.office_closes_at
        parts = [
            f"TR resmî tatiller (holidays {holidays.__version__}, language=tr)",
            "arife: iş günü" if settings.arife_counts_as_working_day else "arife: tatil",
            f"ek tatiller: {len(settings.extra_holidays)}",
            "hafta sonu: Cumartesi-Pazar",
            f"mesai bitişi: {closes:%H:%M}" if closes else "mesai bitişi: yok (takvim günü)",
            "saat dilimi: Europe/Istanbul",
        ]
        estimated = [year for year in range(first_year, last_year + 1) if self._estimated(year)]
        if estimated:
            parts.append(f"dinî bayramlar tahmini: {', '.join(map(str, estimated))}")
        return ", ".join(parts)

    def _estimated(self, year: int) -> bool:
        self._load(year)
        return any(_ESTIMATED_MARK in name for name in self._public[year].values())


@dataclass(frozen=True, slots=True)
class Deadline:
    """A case's due dates, with the rule and the calendar that produced them."""

    basis: Basis
    received: datetime
    received_local_date: date
    counted_from: date
    due: date
    rule: str
    calendar: str
    forward_by: date | None = None
    notice_by: date | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Plain JSON-ready values (ISO dates); dates that do not apply are None."""

        def iso(value: date | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "basis": self.basis.value,
            "unit": self.unit,
            "received": self.received.isoformat(),
            "received_local_date": self.received_local_date.isoformat(),
            "counted_from": self.counted_from.isoformat(),
            "forward_by": iso(self.forward_by),
            "notice_by": iso(self.notice_by),
            "due": self.due.isoformat(),
            "rule": self.rule,
            "calendar": self.calendar,
        }

    def to_json(self) -> str:
        """One JSON object (Turkish letters kept as they are)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)


def _to_local(moment: datetime) -> datetime:
    """``moment`` on the Istanbul clock; refuses naive datetimes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveReceivedTime(
            f"received time {moment.isoformat()} has no time zone; give an offset, "
            "e.g. 2026-05-22T14:00:00+03:00"
        )
    return moment.astimezone(ISTANBUL)


def compute_deadline(
    basis: Basis | str,
    received: datetime,
    calendar: WorkingCalendar,
    unit: str | None = None,
) -> Deadline:
    """The due dates of an application received at ``received`` under ``basis``.

    ``unit`` only matters for ``sikayet`` (its service target). Raises ``NaiveReceivedTime`` for a
    naive ``received`` and ``ValueError`` for an unknown basis.
    """
    basis = Basis(basis)
    local = _to_local(received)
    start = calendar.counted_from(local)
    forward_by = notice_by = None
    if basis is Basis.BILGI_EDINME:
        forward_by = calendar.add_working_days(start, _FORWARD_DAYS)
        due = calendar.add_working_days(start, _ANSWER_DAYS)
        rule = "4982 s. Kanun m.11: 15 iş günü; yetkili birime iletme: 2 iş günü"
    elif basis is Basis.BILGI_EDINME_UZATMA:
        forward_by = calendar.add_working_days(start, _FORWARD_DAYS)
        notice_by = calendar.add_working_days(start, _ANSWER_DAYS)
        due = calendar.add_working_days(start, _EXTENDED_DAYS)
        rule = (
            "4982 s. Kanun m.11: 30 iş günü (uzatma); uzatma bildirimi ilk 15 iş günü içinde; "
            "yetkili birime iletme: 2 iş günü"
        )
    elif basis in (Basis.DILEKCE, Basis.CIMER):
        due = calendar.roll_forward(start + timedelta(days=_PETITION_CALENDAR_DAYS))
        prefix = "CİMER, " if basis is Basis.CIMER else ""
        rule = f"{prefix}3071 s. Kanun m.7: {_CALENDAR_DAY_RULE}"
    else:
        targets = calendar.settings.unit_targets
        days = targets.get(unit or "", calendar.settings.default_unit_target_days)
        due = calendar.add_working_days(start, days)
        source = unit if unit in targets else f"{unit}, varsayılan" if unit else "varsayılan"
        rule = f"Birim hizmet hedefi ({source}): {days} iş günü"
    return Deadline(
        basis=basis,
        received=local,
        received_local_date=local.date(),
        counted_from=start,
        due=due,
        rule=rule,
        calendar=calendar.describe(local.year, due.year),
        forward_by=forward_by,
        notice_by=notice_by,
        unit=unit,
    )


def days_left(deadline: Deadline, now: datetime, calendar: WorkingCalendar) -> int:
    """Working days left before ``deadline.due`` as seen at ``now``, for chasing.

    0 means due today; N > 0 counts the working days after today up to the due date. When late the
    result is negative: -N when the current (or, on a non-working day, the next) working day is the
    N-th working day after the due date, so a weekend right after a Friday due date is already -1.
    """
    today = _to_local(now).date()
    if today <= deadline.due:
        return calendar.working_days_between(today, deadline.due)
    return -calendar.working_days_between(deadline.due, calendar.roll_forward(today))
