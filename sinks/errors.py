"""Errors raised by the sinks. One root; ``retriable`` says whether trying again can help."""

from __future__ import annotations

__all__ = ["BlobTooLarge", "SinkError", "StoreUnavailable"]


class SinkError(Exception):
    """Root of every sink error."""

    retriable: bool = False


class StoreUnavailable(SinkError):
    """The case store could not be reached; the write can be tried again."""

    retriable = True


class BlobTooLarge(SinkError):
    """An attachment is over the configured size limit."""
