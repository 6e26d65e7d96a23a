"""Fixtures of the sink tests: a migrated SQLite case store in the test's own directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.store import CaseStore


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL in a directory that does not exist yet (the store makes it)."""
    return f"sqlite:///{tmp_path}/not-yet-there/cases.sqlite3"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[CaseStore]:
    """A migrated case store, closed after the test."""
    with CaseStore(sqlite_url) as case_store:
        case_store.migrate()
        yield case_store
