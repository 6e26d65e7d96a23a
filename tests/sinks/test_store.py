"""The case store against SQLite: idempotent replays, any order, monotonic status, UTC times.

The ``check_*`` scenarios take a migrated, empty store and its URL; the PostgreSQL
integration test runs the very same list (``STORE_SCENARIOS``) against a real server.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from schemas.case import (
    CaseEvent,
    CaseEventKind,
    Classification,
    MessageType,
    Responsible,
    Route,
    TargetKind,
)
from schemas.common import AttachmentRef, Channel, CitizenContact, GeoPoint
from schemas.ids import case_event_id, message_id, tracking_number
from schemas.message import CitizenMessage
from sinks.errors import StoreUnavailable, UnknownCase
from sinks.store import CaseStatus, CaseStore, derive_case
from sinks.store.models import Base
from sinks.store.rows import case_values, event_values, report_values

T0 = datetime(2025, 3, 3, 7, 15, 0, 123456, tzinfo=UTC)  # a Monday morning
ISTANBUL = timezone(timedelta(hours=3))
PIPE_BURST = "Seyhan Reşatbey Mahallesi'nde su borusu patladı, sokak göl oldu"
SAME_PIPE = "Reşatbey'de Atatürk Caddesi'nde su fışkırıyor, yol çöktü çökecek!"

Scenario = Callable[[CaseStore, str], None]


def make_message(provider_id: str, body: str, *, at: datetime, channel: Channel) -> CitizenMessage:
    """A normalized citizen message with contact data, a location and a photo."""
    msg_id = message_id(channel.value, provider_id)
    return CitizenMessage(
        message_id=msg_id,
        tracking_number=tracking_number(msg_id),
        channel=channel,
        source="alo153" if channel is Channel.CALLS else None,
        received_at=at,
        subject="Su arızası",
        text=body,
        text_folded=body.lower(),
        citizen=CitizenContact(
            name="Ayşe Çelik", phone="+905321234567", tc_kimlik_no="10000000146"
        ),
        location=GeoPoint(lat=36.9914, lon=35.3308, address="Reşatbey Mah., Seyhan/Adana"),
        attachments=(
            AttachmentRef(
                sha256="ab" * 32,
                size=48213,
                content_type="image/jpeg",
                filename="Çukurova_fotoğraf.jpg",
            ),
        ),
    )


CLASSIFIED = Classification(
    unit="su-kanalizasyon",
    type=MessageType.SIKAYET,
    district="seyhan",
    responsible=Responsible.METROPOLITAN,
    confidence=0.92,
    method="keyword-rule-v0",
)
TO_ASKI = Route(kind=TargetKind.UNIT, target="su-kanalizasyon", topic="units.su-kanalizasyon")


class Case:
    """Builds the events of one case, with ids derived as the pipeline derives them."""

    def __init__(self, provider_id: str = "wamid.HBgM905321234567") -> None:
        self.first = make_message(provider_id, PIPE_BURST, at=T0, channel=Channel.WHATSAPP)
        self.case_id = f"case:{self.first.message_id}"

    def event(
        self, kind: CaseEventKind, at: datetime, step: str = "", **fields: object
    ) -> CaseEvent:
        return CaseEvent(
            event_id=case_event_id(self.case_id, kind.value, step),
            case_id=self.case_id,
            tracking_number=self.first.tracking_number,
            kind=kind,
            at=at,
            **fields,  # type: ignore[arg-type]
        )

    def created(self, at: datetime = T0) -> CaseEvent:
        return self.event(CaseEventKind.CREATED, at, message=self.first, classification=CLASSIFIED)

    def attached(self, at: datetime, provider_id: str = "call-7781") -> CaseEvent:
        report = make_message(provider_id, SAME_PIPE, at=at, channel=Channel.CALLS)
        return self.event(CaseEventKind.ATTACHED, at, report.message_id, message=report)

    def routed(self, at: datetime, step: str = "") -> CaseEvent:
        due = datetime(2025, 3, 24, 20, 59, 59, tzinfo=UTC)
        return self.event(
            CaseEventKind.ROUTED, at, step, classification=CLASSIFIED, route=TO_ASKI, due=due
        )

    def plain(self, kind: CaseEventKind, at: datetime, step: str = "") -> CaseEvent:
        return self.event(kind, at, step, note="Ekip yönlendirildi, arıza giderildi.")


def report_ids(url: str, case_id: str) -> list[str]:
    """The message ids in ``case_reports`` for a case, read with plain SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT message_id FROM case_reports WHERE case_id = :c ORDER BY 1")
            return list(conn.execute(query, {"c": case_id}).scalars())
    finally:
        engine.dispose()


def check_replay_is_idempotent(store: CaseStore, url: str) -> None:
    case = Case()
    batch = [case.created(), case.routed(T0 + timedelta(minutes=2))]
    assert store.apply(batch) == 2
    before = store.get_case(case.case_id)
    assert before is not None
    assert before.text == PIPE_BURST
    assert before.tracking_number == case.first.tracking_number
    assert before.status is CaseStatus.OPEN
    assert (before.unit, before.district) == ("su-kanalizasyon", "seyhan")
    assert before.citizen.name == "Ayşe Çelik"
    assert before.attachments[0].filename == "Çukurova_fotoğraf.jpg"
    assert before.due == datetime(2025, 3, 24, 20, 59, 59, tzinfo=UTC)

    assert store.apply(batch) == 0
    assert store.apply([*batch, *reversed(batch)]) == 0
    assert (store.count_cases(), store.count_events()) == (1, 2)
    assert store.get_case(case.case_id) == before
    assert report_ids(url, case.case_id) == [case.first.message_id]


def check_out_of_order_batch(store: CaseStore, url: str) -> None:
    case = Case()
    created, attached = case.created(), case.attached(T0 + timedelta(minutes=5))
    routed = case.routed(T0 + timedelta(minutes=1))
    answered = case.plain(CaseEventKind.ANSWERED, T0 + timedelta(days=2))
    closed = case.plain(CaseEventKind.CLOSED, T0 + timedelta(days=3))
    assert store.apply([closed, routed, attached, answered, created, routed]) == 5

    record = store.get_case(case.case_id)
    assert record is not None
    assert record.status is CaseStatus.CLOSED
    assert record.text == PIPE_BURST  # the created report founds the case, not the attached one
    assert record.channel is Channel.WHATSAPP
    assert (record.created_at, record.updated_at) == (created.at, closed.at)
    assert attached.message is not None
    reports = sorted([case.first.message_id, attached.message.message_id])
    assert report_ids(url, case.case_id) == reports


def check_attached_before_created(store: CaseStore, url: str) -> None:
    case = Case()
    attached = case.attached(T0 + timedelta(minutes=5))
    assert store.apply([attached]) == 1
    provisional = store.get_case(case.case_id)
    assert provisional is not None and provisional.text == SAME_PIPE
    assert provisional.unit is None  # nothing classified it yet

    assert store.apply([case.created()]) == 1
    record = store.get_case(case.case_id)
    assert record is not None
    assert (record.text, record.channel) == (PIPE_BURST, Channel.WHATSAPP)
    assert record.unit == "su-kanalizasyon"
    assert record.created_at == T0
    assert store.count_cases() == 1


def check_orphan_events_wait_for_their_case(store: CaseStore, url: str) -> None:
    case = Case()
    routed = case.routed(T0 + timedelta(minutes=1))
    with pytest.raises(UnknownCase):  # no report founds the case: refused, not lost
        store.apply([routed])
    assert (store.count_cases(), store.count_events()) == (0, 0)
    assert store.apply([case.created()]) == 1
    assert store.apply([routed]) == 1  # redelivered after its case exists: recorded
    assert [e.kind for e in store.history(case.case_id)] == ["created", "routed"]


def check_status_never_goes_back(store: CaseStore, url: str) -> None:
    case = Case()
    routed = case.routed(T0 + timedelta(minutes=1))
    answered = case.plain(CaseEventKind.ANSWERED, T0 + timedelta(days=1))
    assert store.apply([case.created(), routed, answered]) == 3
    assert store.apply([routed]) == 0
    rerouted_late = case.routed(T0 + timedelta(days=1, hours=1), step="second")
    assert store.apply([rerouted_late]) == 1
    record = store.get_case(case.case_id)
    assert record is not None and record.status is CaseStatus.ANSWERED

    assert store.apply([case.plain(CaseEventKind.CLOSED, T0 + timedelta(days=2))]) == 1
    assert store.apply([case.plain(CaseEventKind.REPLIED, T0 + timedelta(days=3))]) == 1
    record = store.get_case(case.case_id)
    assert record is not None and record.status is CaseStatus.CLOSED


def check_history_order(store: CaseStore, url: str) -> None:
    case = Case()
    created = case.created()
    routed = case.routed(T0)  # same instant: the life-cycle order decides
    reminded = case.plain(CaseEventKind.REMINDED, T0 + timedelta(days=10))
    answered = case.plain(CaseEventKind.ANSWERED, T0 + timedelta(days=12))
    with pytest.raises(UnknownCase):  # unknown case yet: refused
        store.apply([answered, reminded])
    assert store.apply([answered, routed, reminded, created]) == 4
    assert store.history(case.case_id) == [created, routed, reminded, answered]
    assert store.history("case:yok") == []


def check_datetimes_are_aware_utc(store: CaseStore, url: str) -> None:
    case = Case()
    local = datetime(2025, 3, 3, 10, 45, 30, 654321, tzinfo=ISTANBUL)
    store.apply([case.created(), case.routed(local)])
    record = store.get_case(case.case_id)
    assert record is not None
    stamps = (record.received_at, record.created_at, record.updated_at, record.due)
    for stamp in stamps:
        assert stamp is not None and stamp.utcoffset() == timedelta(0)
    assert record.updated_at == local
    assert record.updated_at.hour == 7 and record.updated_at.microsecond == 654321
    assert all(event.at.tzinfo is not None for event in store.history(case.case_id))


def check_migrate_twice_is_harmless(store: CaseStore, url: str) -> None:
    case = Case()
    store.apply([case.created()])
    store.migrate()
    assert (store.count_cases(), store.count_events()) == (1, 1)


def check_reports_of_a_case(store: CaseStore, url: str) -> None:
    case = Case()
    attached = case.attached(T0 + timedelta(minutes=5))
    assert attached.message is not None
    store.apply([attached, case.created()])
    reports = store.reports_of(case.case_id)
    assert [r.message_id for r in reports] == [case.first.message_id, attached.message.message_id]
    first, second = reports
    assert (first.channel, second.channel) == (Channel.WHATSAPP, Channel.CALLS)
    assert first.subject == "Su arızası" and first.received_at == T0
    assert first.tracking_number == case.first.tracking_number != second.tracking_number
    assert first.citizen.phone == "+905321234567"
    assert store.reports_of("case:yok") == []


def check_open_cases_with_due(store: CaseStore, url: str) -> None:
    later, sooner, unrouted, answered = (Case(f"wamid.{n}") for n in range(4))
    store.apply([c.created() for c in (later, sooner, unrouted, answered)])
    soon_due = sooner.routed(T0)  # due 2025-03-24 20:59:59Z
    late_due = later.event(
        CaseEventKind.ROUTED, T0, classification=CLASSIFIED, due=datetime(2025, 4, 1, tzinfo=UTC)
    )
    store.apply([late_due, soon_due, answered.routed(T0)])
    store.apply([answered.plain(CaseEventKind.ANSWERED, T0 + timedelta(days=1))])
    due = store.open_cases_with_due()
    assert [r.case_id for r in due] == [sooner.case_id, later.case_id]
    assert due[0].due == datetime(2025, 3, 24, 20, 59, 59, tzinfo=UTC)


def check_what_a_chaser_sees(store: CaseStore, url: str) -> None:
    case, other = Case(), Case("wamid.other")
    reminded = case.plain(CaseEventKind.REMINDED, T0 + timedelta(days=8), step="birim")
    store.apply([case.created(), case.routed(T0), reminded, other.created()])
    assert store.kinds_recorded(case.case_id) == {
        CaseEventKind.CREATED,
        CaseEventKind.ROUTED,
        CaseEventKind.REMINDED,
    }
    assert store.kinds_recorded("case:yok") == set()
    ids = store.event_ids_of([case.case_id, other.case_id, "case:yok"])
    assert ids == {
        case.case_id: {e.event_id for e in store.history(case.case_id)},
        other.case_id: {other.created().event_id},
        "case:yok": set(),
    }
    assert reminded.event_id in ids[case.case_id]


STORE_SCENARIOS: tuple[Scenario, ...] = (
    check_replay_is_idempotent,
    check_out_of_order_batch,
    check_attached_before_created,
    check_orphan_events_wait_for_their_case,
    check_status_never_goes_back,
    check_history_order,
    check_datetimes_are_aware_utc,
    check_migrate_twice_is_harmless,
    check_reports_of_a_case,
    check_open_cases_with_due,
    check_what_a_chaser_sees,
)


def check_migration_0002_fills_report_subjects(url: str) -> None:
    """A store of revision 0001 with reports gets their subjects when migrated to head."""
    case = Case()
    call = make_message("call-9", SAME_PIPE, at=T0 + timedelta(minutes=5), channel=Channel.CALLS)
    call = call.model_copy(update={"subject": "Yol çöktü"})
    attached = case.event(CaseEventKind.ATTACHED, call.received_at, "call-9", message=call)
    record = derive_case([case.created(), attached])
    assert record is not None
    with CaseStore(url) as old:
        old.migrate_to("0001")
        with old.writing() as conn:  # rows as revision 0001 wrote them: no subject column
            conn.execute(Base.metadata.tables["cases"].insert(), case_values(record))
            events = [event_values(e, recorded_at=T0) for e in (case.created(), attached)]
            conn.execute(Base.metadata.tables["case_events"].insert(), events)
            reports = [
                {k: v for k, v in report_values(case.case_id, m).items() if k != "subject"}
                for m in (case.first, call)
            ]
            conn.execute(Base.metadata.tables["case_reports"].insert(), reports)
        old.migrate()
        subjects = {r.message_id: r.subject for r in old.reports_of(case.case_id)}
    assert subjects == {case.first.message_id: "Su arızası", call.message_id: "Yol çöktü"}


def check_models_match_migrations(url: str) -> None:
    """The tables the revisions create are the tables the models declare."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def scenario_id(scenario: Scenario) -> str:
    """Test id of a scenario: its name without ``check_``."""
    return scenario.__name__.removeprefix("check_")


@pytest.mark.parametrize("scenario", STORE_SCENARIOS, ids=scenario_id)
def test_store_on_sqlite(scenario: Scenario, store: CaseStore, sqlite_url: str) -> None:
    scenario(store, sqlite_url)


def test_migration_0002_fills_report_subjects(sqlite_url: str) -> None:
    check_migration_0002_fills_report_subjects(sqlite_url)


def test_models_match_migrations_on_sqlite(store: CaseStore, sqlite_url: str) -> None:
    check_models_match_migrations(sqlite_url)


def test_sqlite_uses_wal(store: CaseStore, sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_process_that_opens_the_store_while_another_migrates_it_waits(tmp_path: Path) -> None:
    # `intake worker` and `intake record` both migrate at start; on a new file, one of them
    # switches it to WAL while the other holds a write lock: it must wait, not crash.
    path = tmp_path / "cases.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_process (x)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with CaseStore(f"sqlite:///{path}") as second:
            second.migrate()
            assert second.count_cases() == 0
    finally:
        release.join()
        holder.close()


def test_unreachable_store_is_retriable(tmp_path: Path) -> None:
    broken = CaseStore(f"sqlite:///{tmp_path}")  # a directory is not a database
    with broken, pytest.raises(StoreUnavailable) as caught:
        broken.count_cases()
    assert caught.value.retriable


def test_unmigrated_store_is_a_bug_not_an_outage(sqlite_url: str) -> None:
    with CaseStore(sqlite_url) as fresh, pytest.raises(Exception) as caught:
        fresh.count_cases()
    assert not isinstance(caught.value, StoreUnavailable)


def test_derive_case_needs_a_report() -> None:
    case = Case()
    assert derive_case([]) is None
    assert derive_case([case.routed(T0)]) is None
    record = derive_case([case.routed(T0 + timedelta(hours=1)), case.created()])
    assert record is not None and record.due is not None


def test_derive_case_refuses_mixed_cases() -> None:
    with pytest.raises(ValueError, match="several cases"):
        derive_case([Case().created(), Case("wamid.other").created()])


def test_a_notice_sent_to_the_citizen_leaves_the_case_open() -> None:
    """'replied' follows notices too (forwarded, extended): only an answer closes the loop."""
    case = Case()
    notice = case.event(CaseEventKind.REPLIED, T0 + timedelta(minutes=1), "notice")
    record = derive_case([case.created(), notice])
    assert record is not None and record.status is CaseStatus.OPEN
    answered = case.event(CaseEventKind.ANSWERED, T0 + timedelta(days=1), "answer")
    record = derive_case([case.created(), notice, answered])
    assert record is not None and record.status is CaseStatus.ANSWERED
