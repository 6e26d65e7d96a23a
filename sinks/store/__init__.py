"""The case store: every case event recorded once, every case's state derived from them.

SQLite by default, PostgreSQL in production; the schema comes from the Alembic revisions in
``infra/migrations`` (:meth:`CaseStore.migrate`). No Faust here: agents call these objects.
"""

from sinks.store.records import CaseRecord, CaseStatus, derive_case, event_order
from sinks.store.store import CaseStore, migrations_dir

__all__ = ["CaseRecord", "CaseStatus", "CaseStore", "derive_case", "event_order", "migrations_dir"]
