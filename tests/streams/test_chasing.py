"""Chasing units that do not answer: the planner on the Turkish calendar, the loop, real SMTP.

2026 calendar used below: Gençlik ve Spor Bayramı Tue 19 May; arife Tue 26 May (half day);
Kurban Bayramı Wed 27 - Sat 30 May; Sun 31 May; Mon 1 Jun. A bilgi-edinme application received
Wed 6 May 10:00 is due Tue 2 Jun (15 working days: 7, 8, 11-15, 18, 20-22, 25, 26 May, 1, 2 Jun).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.case import CaseEvent, CaseEventKind, MessageType
from schemas.common import Channel, CitizenContact, GeoPoint
from schemas.ids import tracking_number
from sinks.mail import MailError, SmtpMailer, SmtpSettings
from sinks.store.records import CaseRecord, CaseStatus
from streams.chasing import (
    ChaseCandidate,
    Chaser,
    ChaseSummary,
    ChasingSettings,
    LadderStep,
    candidate_from,
    plan_chase,
    step_event_id,
)
from streams.deadlines import DeadlineSettings, WorkingCalendar
from tests.integration.services import free_port

TRT = timezone(timedelta(hours=3))
TRACKING = tracking_number("email:chase-1")
DUE = date(2026, 6, 2)
ASKI = "aski-takip@adana.bel.tr"
DEFAULTS = {
    "birim": "birim-takip@adana.bel.tr",
    "daire-baskani": "daire-takip@adana.bel.tr",
    "genel-sekreter-yardimcisi": "gsy-takip@adana.bel.tr",
}
SETTINGS = ChasingSettings(default_contacts=DEFAULTS, contacts={"su-kanalizasyon": {"birim": ASKI}})
CALENDAR = WorkingCalendar()
CITIZEN = CitizenContact(
    name="Ayşe Çelik",
    phone="+905321234567",
    email="ayse.celik@example.com",
    tc_kimlik_no="10000000146",
    address="Reşatbey Mah. 12. Sokak No 4, Seyhan",
)
PROBLEM = "Sokakta su borusu patladı, bilgi edinmek istiyorum"


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment on the Istanbul clock (+03:00)."""
    return datetime(year, month, day, hour, minute, tzinfo=TRT)


def on(day: date, hour: int = 10) -> datetime:
    return at(day.year, day.month, day.day, hour)


def make_candidate(**changes: object) -> ChaseCandidate:
    base = ChaseCandidate(
        case_id=TRACKING,
        tracking_number=TRACKING,
        unit="su-kanalizasyon",
        type=MessageType.BILGI_EDINME,
        received_at=datetime(2026, 5, 6, 7, tzinfo=UTC),  # 10:00 in Istanbul
        due=DUE,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def make_record(status: CaseStatus = CaseStatus.OPEN, n: int = 1) -> CaseRecord:
    number = tracking_number(f"email:record-{n}")
    received = at(2026, 5, 6)
    return CaseRecord(
        case_id=number,
        tracking_number=number,
        channel=Channel.EMAIL,
        source=None,
        unit="su-kanalizasyon",
        type=MessageType.BILGI_EDINME,
        urgency=None,
        district="seyhan",
        responsible=None,
        status=status,
        received_at=received,
        created_at=received,
        updated_at=received,
        due=datetime(2026, 6, 2, tzinfo=TRT).astimezone(UTC),  # 1 Jun 21:00 UTC
        subject="Bilgi edinme başvurusu",
        text=PROBLEM,
        citizen=CITIZEN,
        location=GeoPoint(address="Reşatbey Mah., Seyhan"),
        attachments=(),
    )


def simulate(
    candidate: ChaseCandidate,
    calendar: WorkingCalendar,
    settings: ChasingSettings = SETTINGS,
    start: date = date(2026, 5, 1),
) -> dict[date, list[tuple[str, str]]]:
    """Look twice a day from ``start`` to 30 June, recording every planned step as done."""
    recorded: set[str] = set()
    out: dict[date, list[tuple[str, str]]] = {}
    day = start
    while day <= date(2026, 6, 30):
        for hour in (9, 16):
            now = on(day, hour)
            seen = replace(candidate, event_ids=frozenset(recorded))
            for step in plan_chase(seen, now, calendar, settings):
                out.setdefault(day, []).append((step.kind.value, step.level))
                recorded.add(step.event_id)
        day += timedelta(days=1)
    return out


LADDER_DAYS = {
    date(2026, 6, 3): [("escalated", "birim")],  # 1st working day after the due date
    date(2026, 6, 5): [("escalated", "daire-baskani")],  # 3rd: 2 full working days passed
    date(2026, 6, 10): [("escalated", "genel-sekreter-yardimcisi")],  # 6th (3, 4, 5, 8, 9, 10)
}


@pytest.mark.parametrize(
    ("arife_counts", "reminder_day"),
    # 2 working days left: (26 May, 2 Jun] = 1, 2 Jun. Without the arife, 25 May: 1, 2 Jun.
    [(True, date(2026, 5, 26)), (False, date(2026, 5, 25))],
)
def test_reminder_n_working_days_before_and_the_ladder_across_kurban_bayrami(
    arife_counts: bool, reminder_day: date
) -> None:
    calendar = WorkingCalendar(DeadlineSettings(arife_counts_as_working_day=arife_counts))
    timeline = simulate(make_candidate(), calendar)
    assert timeline == {reminder_day: [("reminded", "birim")], **LADDER_DAYS}


def test_bayram_days_are_not_counted_towards_the_reminder() -> None:
    # Due Thu 4 Jun, 3 days before: on the arife 26 May and all through 27-31 May 4 working
    # days are left (1-4 Jun); Mon 1 Jun is the first day with 3 left.
    settings = SETTINGS.model_copy(update={"remind_working_days_before": 3})
    timeline = simulate(make_candidate(due=date(2026, 6, 4)), CALENDAR, settings)
    assert min(timeline) == date(2026, 6, 1)
    assert timeline[date(2026, 6, 1)] == [("reminded", "birim")]


@pytest.mark.parametrize("first_look", [date(2026, 5, 28), date(2026, 5, 31)])
def test_a_case_first_seen_on_a_holiday_waits_for_the_next_working_day(first_look: date) -> None:
    # Due Tue 2 Jun: on Thu 28 May (Kurban Bayramı) or Sun 31 May 2 working days are left.
    timeline = simulate(make_candidate(), CALENDAR, start=first_look)
    assert min(timeline) == date(2026, 6, 1)
    assert timeline[date(2026, 6, 1)] == [("reminded", "birim")]
    # Late steps wait over a weekend too: first look on Sat 6 Jun, three working days late.
    weekend = simulate(make_candidate(), CALENDAR, start=date(2026, 6, 6))
    assert weekend[date(2026, 6, 8)] == [("escalated", "birim"), ("escalated", "daire-baskani")]
    assert min(weekend) == date(2026, 6, 8)


def test_the_day_is_the_istanbul_one() -> None:
    # 22:30 UTC on Mon 25 May is 01:30 on Tue 26 May in Istanbul: the reminder day.
    late_evening_utc = datetime(2026, 5, 25, 22, 30, tzinfo=UTC)
    assert [s.kind for s in plan_chase(make_candidate(), late_evening_utc, CALENDAR, SETTINGS)] == [
        CaseEventKind.REMINDED
    ]
    early_utc = datetime(2026, 5, 25, 20, 30, tzinfo=UTC)  # 23:30 on the 25th
    assert plan_chase(make_candidate(), early_utc, CALENDAR, SETTINGS) == []


def test_steps_due_together_come_all_in_ladder_order_and_never_twice() -> None:
    now = at(2026, 6, 12)  # first look long after the due date: no late reminder
    steps = plan_chase(make_candidate(), now, CALENDAR, SETTINGS)
    assert [(s.kind, s.level, s.rung) for s in steps] == [
        (CaseEventKind.ESCALATED, "birim", 1),
        (CaseEventKind.ESCALATED, "daire-baskani", 2),
        (CaseEventKind.ESCALATED, "genel-sekreter-yardimcisi", 3),
    ]
    assert [s.recipient for s in steps] == [
        ASKI,
        DEFAULTS["daire-baskani"],
        DEFAULTS["genel-sekreter-yardimcisi"],
    ]
    first_only = make_candidate(event_ids=frozenset({steps[0].event_id}))
    assert [s.level for s in plan_chase(first_only, now, CALENDAR, SETTINGS)] == [
        "daire-baskani",
        "genel-sekreter-yardimcisi",
    ]
    everything = make_candidate(event_ids=frozenset(s.event_id for s in steps))
    assert plan_chase(everything, now, CALENDAR, SETTINGS) == []


def test_event_ids_are_stable_short_and_follow_unit_and_due() -> None:
    now = at(2026, 6, 12)
    ids = [s.event_id for s in plan_chase(make_candidate(), now, CALENDAR, SETTINGS)]
    assert ids == [s.event_id for s in plan_chase(make_candidate(), now, CALENDAR, SETTINGS)]
    assert len(set(ids)) == 3 and all(8 <= len(i) <= 64 for i in ids)
    assert ids[0] == step_event_id(
        TRACKING, CaseEventKind.ESCALATED, "escalate:birim", "su-kanalizasyon", DUE
    )
    moved = plan_chase(make_candidate(unit="imar"), now, CALENDAR, SETTINGS)
    extended = plan_chase(make_candidate(due=date(2026, 6, 3)), now, CALENDAR, SETTINGS)
    assert not {s.event_id for s in moved} & set(ids)
    assert not {s.event_id for s in extended} & set(ids)


@pytest.mark.parametrize("status", ["answered", "closed"])
def test_answered_or_closed_cases_are_not_chased(status: str) -> None:
    for day in (at(2026, 5, 26), at(2026, 6, 12)):
        assert plan_chase(make_candidate(status=status), day, CALENDAR, SETTINGS) == []
    record = make_record(CaseStatus(status))
    assert plan_chase(candidate_from(record, []), at(2026, 6, 12), CALENDAR, SETTINGS) == []


def test_a_unit_without_own_contacts_gets_the_defaults() -> None:
    steps = plan_chase(make_candidate(unit="imar"), at(2026, 6, 12), CALENDAR, SETTINGS)
    assert [s.recipient for s in steps] == list(DEFAULTS.values())
    assert [s.email["To"] for s in steps if s.email is not None] == list(DEFAULTS.values())


def test_a_level_without_any_address_is_recorded_without_an_email() -> None:
    settings = ChasingSettings(default_contacts={"birim": DEFAULTS["birim"]})
    steps = plan_chase(make_candidate(unit="imar"), at(2026, 6, 5), CALENDAR, settings)
    assert [(s.level, s.email is None) for s in steps] == [
        ("birim", False),
        ("daire-baskani", True),
    ]
    assert steps[1].event.note is not None
    assert steps[1].event.note.endswith("e-posta gönderilemedi: bu kademe için adres tanımlı değil")


def test_reminder_text_event_and_email() -> None:
    now = at(2026, 5, 26, 9)
    (step,) = plan_chase(make_candidate(), now, CALENDAR, SETTINGS)
    event, mail = step.event, step.email
    assert mail is not None
    assert mail["Subject"] == (
        f"Hatırlatma: {TRACKING} numaralı başvurunun süresi 02.06.2026 tarihinde doluyor"
    )
    assert mail["To"] == ASKI and mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    for line in (
        f"Takip numarası: {TRACKING}",
        "Birim: Su ve Kanalizasyon (ASKİ) (su-kanalizasyon)",
        "Başvuru türü: Bilgi edinme (4982 s. Kanun)",
        "Başvuru tarihi: 06.05.2026 10:00",
        "Son gün: 02.06.2026",
        "Kalan süre: 2 iş günü",
    ):
        assert line in body.splitlines()
    assert (event.kind, event.case_id, event.at) == (CaseEventKind.REMINDED, TRACKING, now)
    assert event.note == (
        "Hatırlatma: Birim yetkilisi (Su ve Kanalizasyon (ASKİ)); süre 02.06.2026 tarihinde "
        "doluyor (2 iş günü kaldı), yanıt yok; e-posta gönderildi"
    )


def test_escalation_text_names_the_rung_and_who_was_told_before() -> None:
    steps = plan_chase(make_candidate(), at(2026, 6, 5), CALENDAR, SETTINGS)
    second = steps[1]
    assert second.email is not None
    assert second.email["Subject"] == (
        f"Süre aşımı (2. kademe): {TRACKING} numaralı başvurunun süresi 02.06.2026 tarihinde doldu"
    )
    body = second.email.get_content()
    assert "Gecikme: 3 iş günü" in body  # 3, 4, 5 June
    assert "Daha önce bilgilendirilenler: Birim yetkilisi." in body
    assert second.event.note is not None and second.event.note.startswith(
        "Süre aşımı (2. kademe): Daire Başkanı (Su ve Kanalizasyon (ASKİ)); süre 02.06.2026"
    )


def test_no_citizen_data_leaves_the_case_record() -> None:
    candidate = candidate_from(make_record(), ["x" * 32])
    assert candidate.due == DUE and candidate.event_ids == frozenset({"x" * 32})
    steps = plan_chase(candidate, at(2026, 6, 12), CALENDAR, SETTINGS)
    assert len(steps) == 3
    for step in steps:
        assert step.email is not None
        texts = [step.email.as_string(), step.email.get_content(), step.event.model_dump_json()]
        for secret in ("Ayşe", "5321234567", "ayse.celik", "10000000146", "Reşatbey", "borusu"):
            assert not any(secret in text for text in texts), secret


def test_a_case_without_due_date_is_not_chased() -> None:
    assert simulate(make_candidate(due=None), CALENDAR) == {}
    undated = candidate_from(replace(make_record(), due=None), [])
    assert undated.due is None and plan_chase(undated, at(2026, 6, 12), CALENDAR, SETTINGS) == []


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        plan_chase(make_candidate(), datetime(2026, 6, 12, 10), CALENDAR, SETTINGS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"contacts": {"su-kanal": {"birim": ASKI}}}, "unknown unit code 'su-kanal'"),
        ({"default_contacts": {"daire-baskan": ASKI}}, "unknown level 'daire-baskan'"),
        ({"default_contacts": {"birim": "aski.adana.bel.tr"}}, "is not an e-mail address"),
        (
            {
                "ladder": [
                    {"level": "b", "after_working_days": 3},
                    {"level": "c", "after_working_days": 1},
                ]
            },
            "climb in order",
        ),
        (
            {
                "ladder": [
                    {"level": "b", "after_working_days": 0},
                    {"level": "b", "after_working_days": 1},
                ]
            },
            "repeats a level",
        ),
    ],
)
def test_settings_refuse_typos(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ChasingSettings.model_validate(changes)


def test_settings_from_the_environment_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    class Root(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="INTAKE_", env_nested_delimiter="__")
        chasing: ChasingSettings = ChasingSettings()

    monkeypatch.setenv("INTAKE_CHASING__INTERVAL_S", "60")
    monkeypatch.setenv("INTAKE_CHASING__REMIND_WORKING_DAYS_BEFORE", "3")
    monkeypatch.setenv(
        "INTAKE_CHASING__LADDER",
        '[{"level": "birim", "after_working_days": 0},'
        ' {"level": "baskan-yardimcisi", "after_working_days": 4}]',
    )
    monkeypatch.setenv(
        "INTAKE_CHASING__DEFAULT_CONTACTS", '{"baskan-yardimcisi": "by@adana.bel.tr"}'
    )
    monkeypatch.setenv("INTAKE_CHASING__CONTACTS", f'{{"su-kanalizasyon": {{"birim": "{ASKI}"}}}}')
    chasing = Root().chasing
    assert (chasing.interval_s, chasing.remind_working_days_before) == (60.0, 3)
    assert chasing.ladder == [
        LadderStep(level="birim", after_working_days=0),
        LadderStep(level="baskan-yardimcisi", after_working_days=4),
    ]
    assert chasing.address("su-kanalizasyon", "birim") == ASKI
    assert chasing.address("imar", "baskan-yardimcisi") == "by@adana.bel.tr"
    assert chasing.address("imar", "birim") is None
    assert chasing.title("baskan-yardimcisi") == "Başkan Yardımcısı"


# The loop, with in-memory twins of the mailer and of intake.cases.


class Journal:
    """Records, in order, the e-mails sent and the events emitted."""

    def __init__(self, fail: dict[str, list[MailError]] | None = None) -> None:
        self.entries: list[tuple[str, str]] = []
        self.mails: list[EmailMessage] = []
        self.events: list[CaseEvent] = []
        #: Recipient → errors to raise, one per attempt.
        self.fail = fail or {}
        self.emit_fails = 0

    async def send_async(self, message: EmailMessage) -> str:
        errors = self.fail.get(str(message["To"]), [])
        if errors:
            raise errors.pop(0)
        self.mails.append(message)
        self.entries.append(("mail", str(message["Subject"])))
        return f"<{len(self.mails)}@test>"

    async def emit(self, event: CaseEvent) -> None:
        if self.emit_fails:
            self.emit_fails -= 1
            raise ConnectionError("broker unreachable")
        self.events.append(event)
        self.entries.append(("event", event.kind.value))


def chaser_for(journal: Journal, *candidates: ChaseCandidate, **settings: object) -> Chaser:
    async def source() -> list[ChaseCandidate]:
        return list(candidates)

    return Chaser(SETTINGS.model_copy(update=settings), CALENDAR, source, journal, journal.emit)


async def test_each_step_is_mailed_then_recorded_and_the_store_lag_repeats_nothing() -> None:
    journal = Journal()
    chaser = chaser_for(journal, make_candidate())  # the source never shows the new events
    summary = await chaser.run_once(at(2026, 6, 5))
    assert [kind for kind, _ in journal.entries] == ["mail", "event", "mail", "event"]
    assert [e.kind for e in journal.events] == [CaseEventKind.ESCALATED] * 2
    assert all(e.note and e.note.endswith("; e-posta gönderildi") for e in journal.events)
    assert (summary.candidates, summary.planned, summary.sent, summary.recorded) == (1, 2, 2, 2)
    again = await chaser.run_once(at(2026, 6, 5, 16))
    assert (again.sent, again.recorded, len(journal.mails)) == (0, 0, 2)


async def test_transient_failure_defers_the_case_and_keeps_the_ladder_in_order() -> None:
    relay_busy = MailError("SMTP 451: try again later", permanent=False)
    journal = Journal(fail={ASKI: [relay_busy]})
    chaser = chaser_for(journal, make_candidate())
    first = await chaser.run_once(at(2026, 6, 5))
    assert (first.deferred, first.sent, journal.events) == (1, 0, [])  # rung 2 waits for rung 1
    second = await chaser.run_once(at(2026, 6, 5, 11))
    assert [m["To"] for m in journal.mails] == [ASKI, DEFAULTS["daire-baskani"]]
    assert (second.sent, second.recorded) == (2, 2)


async def test_permanent_failure_is_recorded_once_with_a_masked_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = MailError(f"SMTP 550: 5.1.1 <{ASKI}>: mailbox unavailable", permanent=True)
    journal = Journal(fail={ASKI: [refused]})
    chaser = chaser_for(journal, make_candidate())
    with caplog.at_level(logging.DEBUG):
        summary = await chaser.run_once(at(2026, 6, 3))
    (event,) = journal.events
    assert event.kind is CaseEventKind.ESCALATED and event.note is not None
    assert "e-posta gönderilemedi: SMTP 550" in event.note and ASKI not in event.note
    assert ASKI not in caplog.text and TRACKING in caplog.text
    assert (summary.undelivered, summary.sent, summary.recorded) == (1, 0, 1)
    recorded = make_candidate(event_ids=frozenset({event.event_id}))
    later = await chaser_for(journal, recorded).run_once(at(2026, 6, 3, 15))
    assert later == ChaseSummary(candidates=1)


async def test_too_many_transient_failures_stop_the_round() -> None:
    down = [MailError("SMTP unreachable: ConnectionRefusedError", permanent=False)] * 10
    journal = Journal(fail={ASKI: list(down), DEFAULTS["birim"]: list(down)})
    cases = [
        make_candidate(case_id=f"case-{n}", unit="su-kanalizasyon" if n % 2 else "imar")
        for n in range(6)
    ]
    summary = await chaser_for(journal, *cases, max_transient_failures=2).run_once(at(2026, 6, 3))
    assert summary.stopped and summary.deferred == 3 and journal.events == []


async def test_a_failed_emit_stops_the_round_and_is_recorded_without_a_second_mail() -> None:
    journal = Journal()
    journal.emit_fails = 1
    cases = [make_candidate(), make_candidate(case_id="case-2")]
    chaser = chaser_for(journal, *cases)
    first = await chaser.run_once(at(2026, 6, 3))
    assert first.stopped and first.errors == 1 and (len(journal.mails), journal.events) == (1, [])
    second = await chaser.run_once(at(2026, 6, 3, 15))
    assert len(journal.mails) == 2  # only case-2's mail; case 1's is not sent again
    assert sorted(e.case_id for e in journal.events) == sorted([TRACKING, "case-2"])
    assert second.recorded == 2 and not second.stopped


async def test_one_bad_case_does_not_stop_the_round() -> None:
    journal = Journal()
    bad = make_candidate(case_id="bad", due="2026-06-02")  # a string where a date belongs
    summary = await chaser_for(journal, bad, make_candidate()).run_once(at(2026, 6, 3))
    assert summary.errors == 1 and [e.case_id for e in journal.events] == [TRACKING]


async def test_a_blocking_candidate_source_runs_in_a_thread() -> None:
    journal = Journal()
    loop_thread: list[bool] = []

    def from_store() -> list[ChaseCandidate]:
        try:
            asyncio.get_running_loop()
            loop_thread.append(True)
        except RuntimeError:
            loop_thread.append(False)
        return [candidate_from(make_record(), [])]

    chaser = Chaser(SETTINGS, CALENDAR, from_store, journal, journal.emit)
    summary = await chaser.run_once(at(2026, 6, 3))
    assert loop_thread == [False] and summary.recorded == 1


async def test_run_forever_ticks_until_stopped_and_disabled_does_nothing() -> None:
    journal = Journal()
    calls: list[datetime] = []

    def source() -> list[ChaseCandidate]:
        calls.append(datetime.now(UTC))
        return [make_candidate()]

    stop = asyncio.Event()
    settings = SETTINGS.model_copy(update={"interval_s": 0.05})
    chaser = Chaser(settings, CALENDAR, source, journal, journal.emit, clock=lambda: at(2026, 6, 3))
    task = asyncio.create_task(chaser.run_forever(stop))
    while len(calls) < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert len(journal.mails) == 1  # three rounds, one step
    disabled = Chaser(
        settings.model_copy(update={"enabled": False}), CALENDAR, source, journal, journal.emit
    )
    before = len(calls)
    await asyncio.wait_for(disabled.run_forever(asyncio.Event()), timeout=1)
    assert len(calls) == before


# A real SMTP server on loopback.


class Inbox:
    """aiosmtpd handler: keeps every message; refuses one mailbox for good."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(refused=DEFAULTS["genel-sekreter-yardimcisi"])
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_mails_through_a_real_smtp_server(
    smtp_server: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, timeout_s=5), tmp_path)
    records = [make_record(n=1), replace(make_record(n=2), unit="imar")]
    events: list[CaseEvent] = []

    async def emit(event: CaseEvent) -> None:
        events.append(event)

    chaser = Chaser(
        SETTINGS, CALENDAR, lambda: [candidate_from(r, []) for r in records], mailer, emit
    )
    summary = await chaser.run_once(at(2026, 6, 12))
    # Two cases, three rungs each; the third rung's mailbox refuses: recorded, not sent.
    assert (summary.sent, summary.undelivered, summary.recorded) == (4, 2, 6)
    assert [to for to, _ in inbox.received] == [
        [ASKI],
        [DEFAULTS["daire-baskani"]],
        [DEFAULTS["birim"]],
        [DEFAULTS["daire-baskani"]],
    ]
    parsed = [
        email.message_from_bytes(raw, policy=email.policy.default) for _, raw in inbox.received
    ]
    first = records[0].tracking_number
    assert parsed[1]["Subject"] == (
        f"Süre aşımı (2. kademe): {first} numaralı başvurunun süresi 02.06.2026 tarihinde doldu"
    )
    assert all(raw.split(b"\r\n\r\n")[0].isascii() for _, raw in inbox.received)  # RFC 2047
    senders = {
        (m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec) for m in parsed
    }
    assert senders == {("Adana Büyükşehir Belediyesi Alo 153", "alo153@adana.bel.tr")}
    for message, (_, raw) in zip(parsed, inbox.received, strict=True):
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content() + str(message["Subject"])
        assert "Takip numarası: 153-" in text
        for secret in ("Ayşe", "Çelik", "5321234567", "ayse.celik", "10000000146", "Reşatbey"):
            assert secret not in text and secret.encode() not in raw, secret
    failed = [e for e in events if e.note and "gönderilemedi" in e.note]
    assert [e.tracking_number for e in failed] == [first, records[1].tracking_number]
    assert all("SMTP" in (e.note or "") or "550" in (e.note or "") for e in failed)


async def test_an_unexpected_mailer_error_skips_only_that_case() -> None:
    journal = Journal()
    send = journal.send_async

    async def flaky(message: EmailMessage) -> str:
        if message["To"] == ASKI:
            raise OSError("outbox disk full")
        return await send(message)

    journal.send_async = flaky  # type: ignore[method-assign]
    cases = [make_candidate(), make_candidate(case_id="case-2", unit="imar")]
    summary = await chaser_for(journal, *cases).run_once(at(2026, 6, 3))
    assert summary.errors == 1 and [e.case_id for e in journal.events] == ["case-2"]
