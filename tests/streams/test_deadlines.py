"""Legal deadline clocks. Every expected date is worked out by hand in the comments.

2026 calendar used below: Fri 22 May; arife Tue 26 May (from 13:00); Kurban Bayramı Wed 27 - Sat 30
May; Mon 1 Jun; Cumhuriyet arife Wed 28 Oct, Cumhuriyet Bayramı Thu 29 Oct; Thu 24 Dec 2026;
Yılbaşı Fri 1 Jan 2027; Demokrasi ve Millî Birlik Günü Wed 15 Jul.
"""

import json
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from streams.deadlines import (
    Basis,
    DeadlineSettings,
    NaiveReceivedTime,
    WorkingCalendar,
    compute_deadline,
    days_left,
)

TRT = timezone(timedelta(hours=3))
NO_ARIFE = DeadlineSettings(arife_counts_as_working_day=False)


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment on the Istanbul clock (+03:00, no DST since 2016)."""
    return datetime(year, month, day, hour, minute, tzinfo=TRT)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_the_package_calendar_this_module_relies_on(cal: WorkingCalendar) -> None:
    assert date(2026, 5, 22).weekday() == 4  # Friday
    assert cal.is_arife(date(2026, 5, 26)) and cal.is_working_day(date(2026, 5, 26))
    assert not any(cal.is_working_day(date(2026, 5, d)) for d in range(27, 32))
    assert cal.is_arife(date(2026, 3, 19)) and cal.is_arife(date(2026, 10, 28))
    assert not WorkingCalendar(NO_ARIFE).is_working_day(date(2026, 5, 26))
    assert not cal.is_working_day(date(2027, 1, 1))


def test_bilgi_edinme_across_kurban_bayrami(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("bilgi-edinme", at(2026, 5, 22, 14), cal)
    # Received Fri 22 May 14:00, before closing: day of receipt 22 May, not counted.
    # 1 Mon 25 May, 2 Tue 26 May (arife counts) -> forward_by; 27-30 May bayram, 31 Sun;
    # 3-7 Mon 1 - Fri 5 Jun, 8-12 Mon 8 - Fri 12 Jun, 13 Mon 15, 14 Tue 16, 15 Wed 17 Jun.
    assert deadline.counted_from == date(2026, 5, 22)
    assert deadline.forward_by == date(2026, 5, 26)
    assert deadline.due == date(2026, 6, 17)
    assert deadline.notice_by is None
    assert deadline.rule.startswith("4982 s. Kanun m.11: 15 iş günü")
    assert "arife: iş günü" in deadline.calendar


def test_bilgi_edinme_across_kurban_bayrami_without_arife() -> None:
    deadline = compute_deadline("bilgi-edinme", at(2026, 5, 22, 14), WorkingCalendar(NO_ARIFE))
    # 1 Mon 25 May; Tue 26 (arife) skipped, 27-30 bayram, 31 Sun; 2 Mon 1 Jun -> forward_by;
    # 3-6 Tue 2 - Fri 5 Jun, 7-11 Mon 8 - Fri 12, 12 Mon 15, 13 Tue 16, 14 Wed 17, 15 Thu 18 Jun.
    assert deadline.forward_by == date(2026, 6, 1)
    assert deadline.due == date(2026, 6, 18)
    assert "arife: tatil" in deadline.calendar


def test_received_on_the_arife_morning_when_it_counts(cal: WorkingCalendar) -> None:
    deadline = compute_deadline(Basis.BILGI_EDINME, at(2026, 5, 26, 10), cal)
    # Tue 26 May 10:00, before the 13:00 half-day close: day of receipt 26 May, not counted.
    # 27-30 bayram, 31 Sun; 1 Mon 1 Jun, 2 Tue 2 Jun -> forward_by; 3-5 Wed 3 - Fri 5,
    # 6-10 Mon 8 - Fri 12, 11-15 Mon 15 - Fri 19 Jun -> due.
    assert deadline.counted_from == date(2026, 5, 26)
    assert deadline.forward_by == date(2026, 6, 2)
    assert deadline.due == date(2026, 6, 19)


def test_received_on_the_arife_when_it_does_not_count() -> None:
    deadline = compute_deadline(Basis.BILGI_EDINME, at(2026, 5, 26, 10), WorkingCalendar(NO_ARIFE))
    # 26 May is not a working day: received on the next working day, Mon 1 Jun (not counted).
    # 1 Tue 2, 2 Wed 3 Jun -> forward_by; 3 Thu 4, 4 Fri 5, 5-9 Mon 8 - Fri 12,
    # 10-14 Mon 15 - Fri 19, 15 Mon 22 Jun -> due.
    assert deadline.received_local_date == date(2026, 5, 26)
    assert deadline.counted_from == date(2026, 6, 1)
    assert deadline.forward_by == date(2026, 6, 3)
    assert deadline.due == date(2026, 6, 22)


def test_received_on_the_arife_afternoon_counts_from_after_the_bayram(
    cal: WorkingCalendar,
) -> None:
    deadline = compute_deadline(Basis.BILGI_EDINME, at(2026, 5, 26, 14), cal)
    # 14:00 is after the arife's 13:00 close: received Mon 1 Jun, so the same dates as above.
    assert deadline.counted_from == date(2026, 6, 1)
    assert deadline.due == date(2026, 6, 22)


def test_bilgi_edinme_across_the_year_boundary(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("bilgi-edinme", at(2026, 12, 24, 10), cal)
    # Thu 24 Dec 2026 not counted. 1 Fri 25 Dec; Sat 26, Sun 27; 2 Mon 28 Dec -> forward_by;
    # 3 Tue 29, 4 Wed 30, 5 Thu 31 Dec; Fri 1 Jan 2027 Yılbaşı, Sat 2, Sun 3;
    # 6-10 Mon 4 - Fri 8 Jan, 11-15 Mon 11 - Fri 15 Jan 2027 -> due.
    assert deadline.forward_by == date(2026, 12, 28)
    assert deadline.due == date(2027, 1, 15)
    assert "tahmini" not in deadline.calendar


def test_extension_to_30_working_days_with_notice(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("bilgi-edinme-uzatma", at(2026, 5, 22, 14), cal)
    # Same count as the Kurban Bayramı case: 2 = Tue 26 May, 15 = Wed 17 Jun -> notice_by;
    # 16 Thu 18, 17 Fri 19, 18-22 Mon 22 - Fri 26 Jun, 23 Mon 29, 24 Tue 30 Jun,
    # 25 Wed 1 Jul, 26 Thu 2, 27 Fri 3, 28 Mon 6, 29 Tue 7, 30 Wed 8 Jul -> due.
    assert deadline.forward_by == date(2026, 5, 26)
    assert deadline.notice_by == date(2026, 6, 17)
    assert deadline.due == date(2026, 7, 8)
    assert "30 iş günü" in deadline.rule


def test_extension_across_15_july(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("bilgi-edinme-uzatma", at(2026, 7, 1, 9), cal)
    # Wed 1 Jul not counted. 1 Thu 2, 2 Fri 3, 3-7 Mon 6 - Fri 10, 8 Mon 13, 9 Tue 14;
    # Wed 15 Jul holiday; 10 Thu 16, 11 Fri 17, 12 Mon 20, 13 Tue 21, 14 Wed 22,
    # 15 Thu 23 Jul -> notice_by; 16 Fri 24, 17-21 Mon 27 - Fri 31 Jul,
    # 22-26 Mon 3 - Fri 7 Aug, 27 Mon 10, 28 Tue 11, 29 Wed 12, 30 Thu 13 Aug -> due.
    assert deadline.notice_by == date(2026, 7, 23)
    assert deadline.due == date(2026, 8, 13)


def test_dilekce_30_calendar_days_landing_on_sunday_moves_to_monday(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("dilekce", at(2026, 6, 5, 10), cal)
    # Fri 5 Jun + 30 days: 25 days to Tue 30 Jun, 5 more to Sun 5 Jul -> Mon 6 Jul.
    assert deadline.due == date(2026, 7, 6)
    assert deadline.forward_by is None and deadline.notice_by is None
    assert deadline.rule.startswith("3071 s. Kanun m.7: 30 gün")


def test_dilekce_landing_in_a_bayram_moves_past_it(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("dilekce", at(2026, 4, 27, 10), cal)
    # Mon 27 Apr + 30 days: 3 days to Thu 30 Apr, 27 more to Wed 27 May (Kurban Bayramı);
    # 28-30 bayram, Sun 31 -> Mon 1 Jun.
    assert deadline.due == date(2026, 6, 1)


def test_cimer_landing_on_cumhuriyet_bayrami(cal: WorkingCalendar) -> None:
    deadline = compute_deadline("cimer", at(2026, 9, 29, 11), cal)
    # Tue 29 Sep + 30 days: 1 to Wed 30 Sep, 29 more to Thu 29 Oct (holiday) -> Fri 30 Oct.
    assert deadline.due == date(2026, 10, 30)
    assert deadline.rule.startswith("CİMER, 3071 s. Kanun m.7")


def test_cimer_landing_on_the_arife_depends_on_the_setting(cal: WorkingCalendar) -> None:
    received = at(2026, 9, 28, 11)
    # Mon 28 Sep + 30 days = Wed 28 Oct, the Cumhuriyet arife. Counted: it stays there.
    assert compute_deadline("cimer", received, cal).due == date(2026, 10, 28)
    # Not counted: 28 Oct skipped, 29 Oct holiday -> Fri 30 Oct.
    assert compute_deadline("cimer", received, WorkingCalendar(NO_ARIFE)).due == date(2026, 10, 30)


def test_received_after_working_hours_counts_from_the_next_working_day(
    cal: WorkingCalendar,
) -> None:
    in_hours = compute_deadline("bilgi-edinme", at(2026, 6, 5, 17, 0), cal)
    # Fri 5 Jun 17:00 < 17:30: 1-5 Mon 8 - Fri 12, 6-10 Mon 15 - Fri 19, 11-15 Mon 22 - Fri 26.
    assert in_hours.counted_from == date(2026, 6, 5)
    assert in_hours.due == date(2026, 6, 26)
    # 18:00 (given in UTC as 15:00Z) is after closing: received Mon 8 Jun, not counted.
    # 1 Tue 9, 2 Wed 10 -> forward_by; 3 Thu 11, 4 Fri 12, 5-9 Mon 15 - Fri 19,
    # 10-14 Mon 22 - Fri 26, 15 Mon 29 Jun -> due.
    late = compute_deadline("bilgi-edinme", datetime(2026, 6, 5, 15, 0, tzinfo=UTC), cal)
    assert late.received.isoformat() == "2026-06-05T18:00:00+03:00"
    assert late.counted_from == date(2026, 6, 8)
    assert late.forward_by == date(2026, 6, 10)
    assert late.due == date(2026, 6, 29)
    # Saturday receipt: also Mon 8 Jun.
    saturday = compute_deadline("bilgi-edinme", at(2026, 6, 6, 10), cal)
    assert saturday.counted_from == date(2026, 6, 8) and saturday.due == date(2026, 6, 29)


def test_strict_reading_keeps_the_calendar_date_of_receipt() -> None:
    strict = WorkingCalendar(DeadlineSettings(office_closes_at=None))
    # Fri 5 Jun 18:00 stays Fri 5 Jun: due Fri 26 Jun as in hours above.
    assert compute_deadline("bilgi-edinme", at(2026, 6, 5, 18), strict).due == date(2026, 6, 26)
    # Sat 6 Jun is the day of receipt: 1-5 Mon 8 - Fri 12, ..., 15 Fri 26 Jun.
    assert compute_deadline("bilgi-edinme", at(2026, 6, 6, 10), strict).due == date(2026, 6, 26)


def test_extra_holiday_from_configuration() -> None:
    # As it arrives from configuration (JSON / environment): ISO date strings as keys.
    settings = DeadlineSettings.model_validate({"extra_holidays": {"2026-06-01": "İdari izin"}})
    cal = WorkingCalendar(settings)
    assert not cal.is_working_day(date(2026, 6, 1))
    deadline = compute_deadline("bilgi-edinme", at(2026, 5, 22, 14), cal)
    # 1 Mon 25, 2 Tue 26 May; 27-31 closed; Mon 1 Jun idari izin; 3-6 Tue 2 - Fri 5 Jun,
    # 7-11 Mon 8 - Fri 12, 12 Mon 15, 13 Tue 16, 14 Wed 17, 15 Thu 18 Jun.
    assert deadline.due == date(2026, 6, 18)
    assert "ek tatiller: 1" in deadline.calendar


def test_complaint_uses_the_unit_target_or_the_default() -> None:
    cal = WorkingCalendar(DeadlineSettings(unit_targets={"temizlik": 5}))
    received = at(2026, 6, 8, 9)
    # Mon 8 Jun not counted. 1 Tue 9, 2 Wed 10, 3 Thu 11, 4 Fri 12, 5 Mon 15 Jun.
    cleaning = compute_deadline("sikayet", received, cal, unit="temizlik")
    assert cleaning.due == date(2026, 6, 15)
    assert cleaning.rule == "Birim hizmet hedefi (temizlik): 5 iş günü"
    # Default 10: 1-4 Tue 9 - Fri 12, 5-9 Mon 15 - Fri 19, 10 Mon 22 Jun.
    parks = compute_deadline("sikayet", received, cal, unit="park-bahce")
    assert parks.due == date(2026, 6, 22)
    assert "varsayılan" in parks.rule


def test_naive_and_unknown_input_is_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(NaiveReceivedTime, match="no time zone"):
        compute_deadline("bilgi-edinme", datetime(2026, 5, 22, 14), cal)
    with pytest.raises(ValueError):
        compute_deadline("istek", at(2026, 5, 22), cal)


def test_estimated_religious_holidays_are_named_in_the_calendar(cal: WorkingCalendar) -> None:
    # Mon 20 Dec 2032 + 30 days = Wed 19 Jan 2033, a year the package marks "(tahmini)".
    deadline = compute_deadline("dilekce", at(2032, 12, 20), cal)
    assert deadline.due == date(2033, 1, 19)
    assert "dinî bayramlar tahmini: 2033" in deadline.calendar


def test_json_output_has_the_required_keys(cal: WorkingCalendar) -> None:
    data = json.loads(compute_deadline("bilgi-edinme", at(2026, 5, 22, 14), cal).to_json())
    assert data["basis"] == "bilgi-edinme"
    assert data["received"] == "2026-05-22T14:00:00+03:00"
    assert data["received_local_date"] == "2026-05-22"
    assert data["forward_by"] == "2026-05-26"
    assert data["due"] == "2026-06-17"
    assert data["notice_by"] is None
    assert data["calendar"].startswith("TR resmî tatiller (holidays ")
    assert "4982" in data["rule"]


def test_working_days_between_and_days_left(cal: WorkingCalendar) -> None:
    # (Fri 22 May, Mon 1 Jun]: Mon 25, Tue 26 (arife), Mon 1 Jun = 3.
    assert cal.working_days_between(date(2026, 5, 22), date(2026, 6, 1)) == 3
    assert cal.working_days_between(date(2026, 6, 1), date(2026, 5, 22)) == -3
    assert cal.working_days_between(date(2026, 6, 1), date(2026, 6, 1)) == 0
    deadline = compute_deadline("bilgi-edinme", at(2026, 5, 22, 14), cal)  # due Wed 17 Jun
    assert days_left(deadline, at(2026, 6, 15), cal) == 2  # Tue 16, Wed 17
    assert days_left(deadline, at(2026, 6, 17, 23, 59), cal) == 0  # due today
    assert days_left(deadline, at(2026, 6, 18), cal) == -1  # Thu 18 is the first late day
    # Sat 20 rolls to Mon 22: Thu 18, Fri 19, Mon 22 after the due date -> -3.
    assert days_left(deadline, at(2026, 6, 20), cal) == -3


def test_arife_closing_time_is_a_setting() -> None:
    cal = WorkingCalendar(DeadlineSettings(arife_closes_at=time(15, 0)))
    # 14:00 on the arife is now within hours: day of receipt Tue 26 May, due Fri 19 Jun as above.
    assert compute_deadline("bilgi-edinme", at(2026, 5, 26, 14), cal).due == date(2026, 6, 19)
