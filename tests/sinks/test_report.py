"""The monthly report: Istanbul calendar months, the numbers of a hand-built month, the files.

``check_monthly_report_from_the_store`` runs on SQLite here and on PostgreSQL in
``tests/integration/test_records_postgres.py`` (``REPORT_SCENARIOS``).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.case import CaseEvent, CaseEventKind, Classification, MessageType, UnitResponse
from schemas.common import Channel
from schemas.ids import case_event_id
from sinks.store import CaseOutcome, CaseStatus, CaseStore
from sinks.store.report import (
    ReportLine,
    build_report,
    month_bounds,
    month_title,
    previous_month,
    summarize,
)
from sinks.store.report_files import run_report, to_csv, to_html
from tests.sinks.test_store import Scenario, make_message, scenario_id

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def month_case(
    name: str,
    received: datetime,
    channel: Channel,
    unit: str | None,
    kind: MessageType | None,
    *,
    due: datetime | None = None,
    answered: datetime | None = None,
    closed: datetime | None = None,
) -> list[CaseEvent]:
    """The events of one case: created (classified when ``unit``), routed, answered, closed."""
    message = make_message(name, f"Başvuru {name}", at=received, channel=channel)
    case_id = f"case:{message.message_id}"
    classification = (
        Classification(unit=unit, type=kind, confidence=0.9, method="test")
        if unit and kind
        else None
    )

    def event(kind_: CaseEventKind, at: datetime, **fields: object) -> CaseEvent:
        return CaseEvent(
            event_id=case_event_id(case_id, kind_.value),
            case_id=case_id,
            tracking_number=message.tracking_number,
            kind=kind_,
            at=at,
            **fields,  # type: ignore[arg-type]
        )

    events = [
        event(CaseEventKind.CREATED, received, message=message, classification=classification)
    ]
    if due is not None:
        events.append(event(CaseEventKind.ROUTED, received + timedelta(seconds=1), due=due))
    if answered is not None:
        response = UnitResponse(
            case_id=case_id,
            unit=unit or "diger",
            status="resolved",
            answer="Giderildi.",
            responded_at=answered,
        )
        events.append(event(CaseEventKind.ANSWERED, answered, response=response))
    if closed is not None:
        events.append(event(CaseEventKind.CLOSED, closed))
    return events


WATER, CLEANING = "su-kanalizasyon", "temizlik"
SIKAYET, TALEP, ONERI = MessageType.SIKAYET, MessageType.TALEP, MessageType.ONERI
DUE_1DEC = utc(2026, 12, 1, 20, 59, 59)
#: November 2026 in Istanbul is [2026-10-31 21:00Z, 2026-11-30 21:00Z).
MONTH = [
    # 23:30 on 31 October in Istanbul: October's, although its UTC date is 31 October too.
    month_case("oct-edge", utc(2026, 10, 31, 20, 30), Channel.WHATSAPP, WATER, SIKAYET),
    # 00:30 on 1 November in Istanbul (31 October in UTC): November's. Answered in 72 h.
    month_case(
        "nov-first",
        utc(2026, 10, 31, 21, 30),
        Channel.WHATSAPP,
        WATER,
        SIKAYET,
        due=utc(2026, 11, 20, 20, 59, 59),
        answered=utc(2026, 11, 3, 21, 30),
    ),
    # 23:59 on 30 November in Istanbul: November's. Answered late, after 156 h.
    month_case(
        "nov-last",
        utc(2026, 11, 30, 20, 59),
        Channel.EMAIL,
        CLEANING,
        TALEP,
        due=utc(2026, 12, 5, 20, 59, 59),
        answered=utc(2026, 12, 7, 8, 59),
    ),
    # 00:00 on 1 December in Istanbul: December's.
    month_case("dec-edge", utc(2026, 11, 30, 21, 0), Channel.EMAIL, CLEANING, TALEP),
    month_case("past-due", utc(2026, 11, 10, 9), Channel.CALLS, WATER, SIKAYET, due=DUE_1DEC),
    month_case(
        "not-due-yet",
        utc(2026, 11, 12, 9),
        Channel.CALLS,
        CLEANING,
        MessageType.BILGI_EDINME,
        due=utc(2026, 12, 20, 20, 59, 59),
    ),
    month_case("unclassified", utc(2026, 11, 15, 9), Channel.API, None, None),
    month_case(
        "closed", utc(2026, 11, 16, 9), Channel.TWITTER, WATER, ONERI, closed=utc(2026, 11, 17)
    ),
    # Answered a day after the report time: still open (and past due) in the report.
    month_case(
        "answered-later",
        utc(2026, 11, 5, 9),
        Channel.WHATSAPP,
        WATER,
        SIKAYET,
        due=DUE_1DEC,
        answered=utc(2026, 12, 11, 9),
    ),
    # No due date: answered, but neither on time nor late. Answered in 12 h.
    month_case(
        "no-due",
        utc(2026, 11, 20, 9),
        Channel.WHATSAPP,
        CLEANING,
        MessageType.TESEKKUR,
        answered=utc(2026, 11, 20, 21),
    ),
]


def line(key: str, label: str, *numbers: int | float | None) -> ReportLine:
    return ReportLine(key, label, *numbers)  # type: ignore[arg-type]


def check_monthly_report_from_the_store(store: CaseStore, url: str) -> None:
    for events in MONTH:
        store.apply(events)
    report = build_report(store, "2026-11", NOW)
    assert report.title == "Aylık Başvuru Raporu — Kasım 2026"
    assert (report.start, report.end) == (utc(2026, 10, 31, 21), utc(2026, 11, 30, 21))
    #          received answered on_time late open past_due finished median_h
    assert report.total == line("", "Toplam", 8, 3, 1, 1, 4, 2, 1, 72.0)
    assert report.by_unit == (
        line(WATER, "Su ve Kanalizasyon (ASKİ)", 4, 1, 1, 0, 2, 2, 1, 72.0),
        line(CLEANING, "Temizlik İşleri", 3, 2, 0, 1, 1, 0, 0, 84.0),
        line("", "Sınıflandırılmamış", 1, 0, 0, 0, 1, 0, 0, None),
    )
    assert report.by_channel == (
        line("email", "E-posta", 1, 1, 0, 1, 0, 0, 0, 156.0),
        line("whatsapp", "WhatsApp", 3, 2, 1, 0, 1, 1, 0, 42.0),
        line("twitter", "X (Twitter)", 1, 0, 0, 0, 0, 0, 1, None),
        line("calls", "Telefon (Alo 153)", 2, 0, 0, 0, 2, 1, 0, None),
        line("api", "Web / API", 1, 0, 0, 0, 1, 0, 0, None),
    )
    assert [(t.key, t.received) for t in report.by_type] == [
        ("sikayet", 3),
        ("talep", 1),
        ("oneri", 1),
        ("bilgi-edinme", 1),
        ("tesekkur", 1),
        ("", 1),
    ]
    assert build_report(store, "2026-10", NOW).total.received == 1
    december = build_report(store, "2026-12", NOW)
    assert (december.total.received, december.total.open) == (1, 1)
    # A month later the late answer is in, and the case due on 20 December is past due too.
    later = build_report(store, "2026-11", NOW + timedelta(days=30))
    assert (later.total.answered, later.total.late, later.total.open_past_due) == (4, 2, 2)


REPORT_SCENARIOS: tuple[Scenario, ...] = (check_monthly_report_from_the_store,)


@pytest.mark.parametrize("scenario", REPORT_SCENARIOS, ids=scenario_id)
def test_report_on_sqlite(scenario: Scenario, store: CaseStore, tmp_path: Path) -> None:
    scenario(store, f"sqlite:///{tmp_path}/cases.sqlite3")


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2026-11", utc(2026, 10, 31, 21), utc(2026, 11, 30, 21)),
        ("2026-12", utc(2026, 11, 30, 21), utc(2026, 12, 31, 21)),  # the year rolls over
        ("2014-11", utc(2014, 10, 31, 22), utc(2014, 11, 30, 22)),  # winter time (UTC+2) then
    ],
)
def test_month_bounds_follow_istanbul(month: str, start: datetime, end: datetime) -> None:
    assert month_bounds(month) == (start, end)


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-11", "2026-11-01", "Kasım", ""])
def test_month_must_be_year_and_month(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds(bad)


def test_month_title_in_turkish() -> None:
    assert month_title("2026-02") == "Aylık Başvuru Raporu — Şubat 2026"


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (utc(2026, 12, 10, 9), "2026-11"),
        (utc(2026, 11, 30, 21, 30), "2026-11"),  # 00:30 on 1 December in Istanbul
        (utc(2026, 11, 30, 20, 30), "2026-10"),
        (utc(2027, 1, 5), "2026-12"),
    ],
)
def test_previous_month_in_istanbul(now: datetime, month: str) -> None:
    assert previous_month(now) == month


def outcome(unit: str | None, answered: datetime | None, **fields: object) -> CaseOutcome:
    values: dict[str, object] = {
        "case_id": f"case:{unit}:{answered}",
        "unit": unit,
        "channel": Channel.WHATSAPP,
        "type": SIKAYET,
        "status": CaseStatus.ANSWERED if answered else CaseStatus.OPEN,
        "received_at": utc(2026, 11, 2),
        "due": utc(2026, 11, 20),
        "answered_at": answered,
        "on_time": None if answered is None else answered <= utc(2026, 11, 20),
    }
    return CaseOutcome(**(values | fields))  # type: ignore[arg-type]


def test_summarize_ignores_other_months_and_clamps_clock_skew() -> None:
    skewed = outcome(WATER, utc(2026, 11, 1, 23))  # stamped an hour before its receipt
    outside = outcome(WATER, None, received_at=utc(2026, 10, 31, 20, 59))
    report = summarize([skewed, outside], "2026-11", NOW)
    assert (report.total.received, report.total.median_hours) == (1, 0.0)


def test_html_page_escapes_every_value(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>&'
    report = summarize([outcome(hostile, utc(2026, 11, 3))], "2026-11", NOW)
    page = to_html(report, tmp_path / "rapor.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "<title>Aylık Başvuru Raporu — Kasım 2026</title>" in page
    assert "<h1>Aylık Başvuru Raporu — Kasım 2026</h1>" in page
    assert 'lang="tr"' in page and "Dönem: 01.11.2026 – 30.11.2026" in page
    for external in ("src=", "href=", "http://", "https://", "@import", "url("):
        assert external not in page
    assert page.count("<table>") == 3


def test_csv_reads_back_and_defuses_formulas(tmp_path: Path) -> None:
    report = summarize(
        [outcome("=HYPERLINK(1)", utc(2026, 11, 3)), outcome(WATER, None)], "2026-11", NOW
    )
    path = to_csv(report, tmp_path / "rapor.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read UTF-8
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    assert rows[0][:4] == ["bölüm", "kod", "ad", "alınan"]
    assert rows[1] == ["toplam", "", "Toplam", "2", "1", "1", "0", "1", "1", "0", "24.0"]
    units = {row[1]: row for row in rows if row[0] == "birim"}
    assert set(units) == {WATER, "'=HYPERLINK(1)"}
    assert units[WATER][2] == "Su ve Kanalizasyon (ASKİ)"


def test_run_report_writes_both_files(store: CaseStore, tmp_path: Path) -> None:
    for events in MONTH:
        store.apply(events)
    out = tmp_path / "raporlar"
    csv_path, html_path = run_report(store, "2026-11", out, NOW)
    assert (csv_path.name, html_path.name) == ("rapor-2026-11.csv", "rapor-2026-11.html")
    assert sorted(p.name for p in out.iterdir()) == ["rapor-2026-11.csv", "rapor-2026-11.html"]
    assert "Su ve Kanalizasyon (ASKİ)" in html_path.read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        run_report(store, "../../etc", out, NOW)
    assert len(list(out.iterdir())) == 2
