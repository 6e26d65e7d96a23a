"""Answered-case records: one row per answered case, derived from its events, safe to replay.

The ``check_*`` scenarios take a migrated, empty store and its URL; the PostgreSQL
integration test (``tests/integration/test_records_postgres.py``) runs the same list.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from schemas.case import CaseEvent, CaseEventKind, UnitResponse
from schemas.common import AttachmentRef, Channel
from sinks.store import AnsweredRecord, CaseStatus, CaseStore, derive_answer, derive_case
from tests.sinks.test_store import T0, Case, Scenario, scenario_id

DUE = datetime(2025, 3, 24, 20, 59, 59, tzinfo=UTC)  # what Case.routed sets
PHOTO = AttachmentRef(sha256="cd" * 32, size=1024, content_type="image/jpeg")


def response(case: Case, at: datetime, answer: str, **fields: object) -> UnitResponse:
    """The water utility's answer to ``case``, given at ``at``."""
    values: dict[str, object] = {
        "case_id": case.case_id,
        "unit": "su-kanalizasyon",
        "status": "resolved",
        "answer": answer,
        "responded_at": at,
        "responder": "ASKİ Seyhan Şube",
    }
    return UnitResponse(**(values | fields))  # type: ignore[arg-type]


def answered(
    case: Case, at: datetime, answer: str = "Arıza giderildi.", **fields: object
) -> CaseEvent:
    """An ``answered`` event carrying the unit's response (arrives a minute after it)."""
    reply = response(case, at, answer, **fields)
    return case.event(
        CaseEventKind.ANSWERED, at + timedelta(minutes=1), at.isoformat(), response=reply
    )


def rows_of(url: str, case_id: str) -> list[dict[str, object]]:
    """The ``answered_cases`` rows of a case, read with plain SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT * FROM answered_cases WHERE case_id = :c")
            return [dict(row._mapping) for row in conn.execute(query, {"c": case_id})]
    finally:
        engine.dispose()


def wipe(url: str) -> None:
    """Empty the case tables, children first, so a history can be applied again."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in ("answered_cases", "case_reports", "case_events", "cases"):
                conn.execute(text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def check_answer_upsert_is_idempotent(store: CaseStore, url: str) -> None:
    case = Case()
    answer = answered(case, T0 + timedelta(days=2), after_photos=(PHOTO, PHOTO))
    batch = [case.created(), case.routed(T0 + timedelta(minutes=2)), answer]
    assert store.apply(batch) == 3
    record = store.get_answer(case.case_id)
    assert record == AnsweredRecord(
        case_id=case.case_id,
        tracking_number=case.first.tracking_number,
        unit="su-kanalizasyon",
        channel=Channel.WHATSAPP,
        source=None,
        type=case.created().classification.type,  # type: ignore[union-attr]
        district="seyhan",
        received_at=T0,
        due=DUE,
        answered_at=T0 + timedelta(days=2),
        answer_event_id=answer.event_id,
        answered_by="su-kanalizasyon",
        response_status="resolved",
        answer="Arıza giderildi.",
        responder="ASKİ Seyhan Şube",
        after_photos=2,
        on_time=True,
        reporters=1,
        updated_at=answer.at,
    )
    case_row = store.get_case(case.case_id)
    assert case_row is not None and case_row.status is CaseStatus.ANSWERED
    before = rows_of(url, case.case_id)
    assert store.apply(batch) == 0
    assert store.apply([*reversed(batch), answer]) == 0
    assert rows_of(url, case.case_id) == before
    assert len(before) == 1


def check_replay_in_another_order_gives_the_same_row(store: CaseStore, url: str) -> None:
    case = Case()
    history = [
        case.created(),
        case.routed(T0 + timedelta(minutes=2)),
        case.attached(T0 + timedelta(hours=3)),
        answered(case, T0 + timedelta(days=2)),
        answered(case, T0 + timedelta(days=3), "Düzeltme: boru değiştirildi."),
        case.plain(CaseEventKind.REPLIED, T0 + timedelta(days=3, hours=1)),
    ]
    store.apply(history)
    expected = rows_of(url, case.case_id)
    assert expected[0]["answer"] == "Düzeltme: boru değiştirildi."
    shuffler = random.Random(153)
    for _ in range(3):  # whole history in one batch, in other orders
        wipe(url)
        store.apply(shuffler.sample(history, len(history)))
        assert rows_of(url, case.case_id) == expected
    wipe(url)
    for item in [history[0], history[4], history[2], history[5], history[1], history[3]]:
        store.apply([item])  # one at a time: the correction arrives first
    assert rows_of(url, case.case_id) == expected


def check_latest_answer_wins(store: CaseStore, url: str) -> None:
    case = Case()
    first = answered(case, DUE - timedelta(days=1), "Ekip yönlendirildi.")
    correction = answered(case, DUE + timedelta(hours=2), "Düzeltme: arıza ertesi gün giderildi.")
    store.apply([case.created(), case.routed(T0), correction])
    store.apply([first])  # the older answer arrives last: it does not win
    record = store.get_answer(case.case_id)
    assert record is not None
    assert record.answer == "Düzeltme: arıza ertesi gün giderildi."
    assert record.answer_event_id == correction.event_id
    assert record.answered_at == DUE + timedelta(hours=2)
    assert record.on_time is False  # the winner decides: it came after the due date


def check_on_time_against_the_due_date(store: CaseStore, url: str) -> None:
    exact, late, undated = Case("wamid.exact"), Case("wamid.late"), Case("wamid.undated")
    store.apply([c.created() for c in (exact, late, undated)])
    store.apply([exact.routed(T0), late.routed(T0)])
    store.apply(
        [
            answered(exact, DUE),  # on the last second of the period: on time
            answered(late, DUE + timedelta(seconds=1)),
            answered(undated, T0 + timedelta(days=40)),
        ]
    )
    on_time = {c: store.get_answer(c.case_id) for c in (exact, late, undated)}
    assert {c.case_id: r.on_time if r else "none" for c, r in on_time.items()} == {
        exact.case_id: True,
        late.case_id: False,
        undated.case_id: None,
    }


def check_answer_without_unit_response(store: CaseStore, url: str) -> None:
    case = Case()
    on_the_line = case.event(
        CaseEventKind.ANSWERED,
        T0 + timedelta(minutes=4),
        "on-the-line",
        note="çağrı sırasında hatta çözüldü",
    )
    store.apply([case.created(), on_the_line])
    record = store.get_answer(case.case_id)
    assert record is not None
    assert (record.answered_at, record.answer) == (on_the_line.at, "çağrı sırasında hatta çözüldü")
    assert (record.response_status, record.answered_by, record.after_photos) == (None, None, 0)
    assert record.on_time is None and record.unit == "su-kanalizasyon"


def check_duplicates_after_the_answer_are_counted(store: CaseStore, url: str) -> None:
    case = Case()
    store.apply([case.created(), case.routed(T0), answered(case, T0 + timedelta(days=1))])
    before = store.get_answer(case.case_id)
    assert before is not None and before.reporters == 1
    store.apply([case.attached(T0 + timedelta(days=2))])
    after = store.get_answer(case.case_id)
    assert after is not None and after.reporters == 2
    assert after.answered_at == before.answered_at


def check_no_answer_no_row(store: CaseStore, url: str) -> None:
    case = Case()
    extended = case.event(
        CaseEventKind.EXTENDED,
        T0 + timedelta(days=5),
        response=response(case, T0 + timedelta(days=5), "Ek süre: kazı izni bekleniyor."),
    )
    store.apply([case.created(), case.routed(T0), extended])
    assert store.get_answer(case.case_id) is None
    assert rows_of(url, case.case_id) == []


ANSWER_SCENARIOS: tuple[Scenario, ...] = (
    check_answer_upsert_is_idempotent,
    check_replay_in_another_order_gives_the_same_row,
    check_latest_answer_wins,
    check_on_time_against_the_due_date,
    check_answer_without_unit_response,
    check_duplicates_after_the_answer_are_counted,
    check_no_answer_no_row,
)


@pytest.mark.parametrize("scenario", ANSWER_SCENARIOS, ids=scenario_id)
def test_answers_on_sqlite(scenario: Scenario, store: CaseStore, sqlite_url: str) -> None:
    scenario(store, sqlite_url)


def test_derive_answer_is_order_free_and_needs_an_answer() -> None:
    case = Case()
    first, second = answered(case, T0 + timedelta(days=1)), answered(case, T0 + timedelta(days=2))
    events = [case.created(), case.routed(T0), first, second, second]
    record = derive_case(events)
    assert record is not None
    assert derive_answer(record, events[:2]) is None
    forward, backward = derive_answer(record, events), derive_answer(record, events[::-1])
    assert forward is not None and forward == backward
    assert forward.answer_event_id == second.event_id and forward.reporters == 1


def test_derive_answer_breaks_ties_by_event_id() -> None:
    case = Case()
    same_time = T0 + timedelta(days=1)
    one = answered(case, same_time, "Bir")
    other = replace_event_id(one, "f" * 32, "İki")
    record = derive_case([case.created()])
    assert record is not None
    winners = {
        derive_answer(record, order).answer  # type: ignore[union-attr]
        for order in ([one, other], [other, one])
    }
    assert winners == {"İki"}  # the larger event id, whichever came first


def replace_event_id(event: CaseEvent, event_id: str, answer: str) -> CaseEvent:
    """``event`` with another id and answer text, the same times."""
    assert event.response is not None
    reply = event.response.model_copy(update={"answer": answer})
    return event.model_copy(update={"event_id": event_id, "response": reply})
