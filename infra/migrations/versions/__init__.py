"""Alembic revisions of the case store, oldest first (Alembic skips this file)."""
