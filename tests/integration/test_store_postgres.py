"""The case store against a real PostgreSQL: the same scenarios as on SQLite, plus outages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sinks.errors import StoreUnavailable
from sinks.store import CaseStore
from tests.integration.postgres import PostgresServer
from tests.integration.services import free_port
from tests.sinks.test_store import (
    STORE_SCENARIOS,
    Scenario,
    check_models_match_migrations,
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


@pytest.mark.parametrize("scenario", STORE_SCENARIOS, ids=scenario_id)
def test_store_on_postgres(scenario: Scenario, store: CaseStore, database_url: str) -> None:
    assert store.dialect == "postgresql"
    scenario(store, database_url)


def test_migrations_match_the_models(store: CaseStore, database_url: str) -> None:
    check_models_match_migrations(database_url)


def test_plain_postgresql_url_uses_psycopg(database_url: str) -> None:
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with CaseStore(plain) as case_store:
        case_store.migrate()
        assert case_store.count_cases() == 0


def test_unreachable_server_is_retriable() -> None:
    nobody = f"postgresql+psycopg://intake@127.0.0.1:{free_port()}/intake?connect_timeout=2"
    with CaseStore(nobody) as case_store, pytest.raises(StoreUnavailable) as caught:
        case_store.count_events()
    assert caught.value.retriable
