"""The dead-letter topic's contract: the original bytes, plus headers that say what failed.

Modelled on Kafka Connect's ``__connect.errors.*``. Every stage (stream agents, connectors,
``intake inject``) builds its headers here so that operators read one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

__all__ = ["HEADER_PREFIX", "error_headers", "exception_class"]

HEADER_PREFIX = "__intake.errors."
MAX_MESSAGE_CHARS = 2000


def exception_class(exc: BaseException) -> str:
    """The qualified class name of an exception, as the headers spell it."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def error_headers(
    *,
    stage: str,
    exc: BaseException,
    message: str,
    at: datetime,
    retriable: bool = False,
    attempts: int = 1,
    source: Mapping[str, str | int],
) -> list[tuple[str, bytes]]:
    """Headers for a dead-lettered record.

    ``message`` must already have personal data masked. ``source`` names where the record
    came from: ``topic``/``partition``/``offset`` for a consumed record, ``source.file`` /
    ``source.line`` for a file, ``source.connector`` and channel specifics for a connector.
    """
    fields: dict[str, str] = {name: str(value) for name, value in source.items()}
    fields |= {
        "stage": stage,
        "exception.class": exception_class(exc),
        "exception.message": message[:MAX_MESSAGE_CHARS],
        "retriable": str(retriable).lower(),
        "attempts": str(attempts),
        "timestamp": at.isoformat(),
    }
    return [(HEADER_PREFIX + name, value.encode("utf-8")) for name, value in fields.items()]
