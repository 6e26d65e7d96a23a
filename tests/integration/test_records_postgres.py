"""Answered-case records, the reply log, callbacks and the monthly report on a real PostgreSQL.

The same scenarios as on SQLite (``tests/sinks/test_answers.py``, ``test_callbacks.py``,
``test_report.py``), plus the 0001 → 0002 data migration and two concurrent writers.
(``test_store_postgres.py`` checks that the migrations match the models.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from schemas.common import Channel
from sinks.store import CaseStore, ReplyStatus
from tests.integration.postgres import PostgresServer
from tests.sinks.test_answers import ANSWER_SCENARIOS, answered
from tests.sinks.test_callbacks import REPLY_SCENARIOS, reply
from tests.sinks.test_report import REPORT_SCENARIOS
from tests.sinks.test_store import (
    T0,
    Case,
    Scenario,
    check_migration_0002_fills_report_subjects,
    scenario_id,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server for each test."""
    return postgres_server.create_database()


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    with CaseStore(database_url) as case_store:
        case_store.migrate()
        yield case_store


@pytest.mark.parametrize(
    "scenario", [*ANSWER_SCENARIOS, *REPLY_SCENARIOS, *REPORT_SCENARIOS], ids=scenario_id
)
def test_records_on_postgres(scenario: Scenario, store: CaseStore, database_url: str) -> None:
    assert store.dialect == "postgresql"
    scenario(store, database_url)


def test_migration_0002_fills_report_subjects(database_url: str) -> None:
    check_migration_0002_fills_report_subjects(database_url)


def test_concurrent_writers_keep_one_row_each(store: CaseStore, database_url: str) -> None:
    """Two processes' worth of writers replaying the same answers and replies at once."""
    case = Case()
    store.apply([case.created(), case.routed(T0)])
    answers = [answered(case, T0 + timedelta(days=n)) for n in range(1, 4)]
    requests = [reply(f"r{n}", case=case) for n in range(20)]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with CaseStore(database_url) as other:
                for request in requests:
                    other.apply(answers)
                    other.record_reply(request, ReplyStatus.SENT, provider_id=request.reply_id)
                    other.add_callback(
                        reply(f"cb-{request.reply_id}", case=case, channel=Channel.CALLS)
                    )
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    record = store.get_answer(case.case_id)
    assert record is not None and record.answer_event_id == answers[-1].event_id
    assert store.sent_reply_ids(r.reply_id for r in requests) == {r.reply_id for r in requests}
    assert len(store.list_callbacks()) == 20
    assert store.count_events() == 2 + len(answers)
