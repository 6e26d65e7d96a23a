"""Alembic environment of the case store; run it with ``CaseStore.migrate()``."""
