"""Errors raised by the sinks. One root; ``retriable`` says whether trying again can help."""

from __future__ import annotations

__all__ = ["BlobTooLarge", "SinkError", "StoreUnavailable", "UnknownCase"]


class SinkError(Exception):
    """Root of every sink error."""

    retriable: bool = False


class StoreUnavailable(SinkError):
    """The case store could not be reached; the write can be tried again."""

    retriable = True


class BlobTooLarge(SinkError):
    """An attachment is over the configured size limit."""


class UnknownCase(SinkError):
    """Events name a case that no recorded report founds; nothing of the batch was written."""

    def __init__(self, case_ids: list[str]) -> None:
        super().__init__(f"events for unknown case(s) {', '.join(sorted(case_ids)[:5])}")
        self.case_ids = case_ids
