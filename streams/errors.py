"""Errors of the stream stages. One root; ``retriable`` says whether trying again can help."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

__all__ = ["BadPayload", "StageError", "UnsupportedChannel", "is_retriable"]


class StageError(Exception):
    """Root of every error raised by a stage's own logic."""

    retriable: bool = False


class BadPayload(StageError):
    """The event's bytes are not a valid payload for its topic."""


class UnsupportedChannel(StageError):
    """No normalizer exists yet for the event's channel."""


def is_retriable(exc: BaseException) -> bool:
    """Whether the same event may succeed when tried again (a transient outage, not bad data)."""
    if isinstance(exc, ValidationError | ValueError | KeyError | TypeError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError | asyncio.TimeoutError):
        return True
    return bool(getattr(exc, "retriable", False))
