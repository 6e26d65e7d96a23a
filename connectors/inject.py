"""Inject a JSON-lines file of submissions into ``intake.raw.api`` (demos, back-fills, tests).

Each line is an ``ApiSubmission`` object, optionally with a top-level ``"id"`` used as the
provider id. A line without one gets an id derived from its bytes, so injecting the same
file twice is recognisable downstream as a replay. A line that is not valid JSON or not a
valid submission is not dropped: its bytes go to ``intake.deadletter`` with headers naming
the file, the line and the error, and ``RejectedLines`` reports them after the whole file.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from connectors.api import field_errors, submission_event, submission_tracking_number
from connectors.errors import InvalidSubmission, RejectedLines
from connectors.publisher import Publisher, publish_raw_event
from schemas.common import utc_now
from schemas.deadletter import error_headers
from schemas.raw import ApiSubmission
from schemas.registry import DEADLETTER_TOPIC

__all__ = ["inject_file"]

log = logging.getLogger(__name__)

_STAGE = "inject"
_LINE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:alo153-intake:inject-line")


def _message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):  # without the input values: they may be personal data
        return "; ".join(
            f"{'.'.join(map(str, e['location'])) or '(line)'}: {e['message']}"
            for e in field_errors(exc)
        )
    return str(exc)


def _parse_line(line: bytes) -> tuple[str | None, ApiSubmission]:
    """The line's own id (if any) and its submission; raises what made it invalid."""
    document = json.loads(line.decode("utf-8"))
    if not isinstance(document, dict):
        raise InvalidSubmission(f"a line must be a JSON object, not {type(document).__name__}")
    line_id = document.pop("id", None)
    if line_id is not None:
        if isinstance(line_id, bool) or not isinstance(line_id, str | int):
            raise InvalidSubmission("'id' must be a string or an integer")
        line_id = str(line_id).strip()
        if not 0 < len(line_id) <= 512:
            raise InvalidSubmission("'id' must be 1 to 512 characters")
    return line_id, ApiSubmission.model_validate(document)


def _line_key(line: bytes) -> str | None:
    """The id a line declares, if it can be read at all (the dead letter's key)."""
    try:
        document = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    line_id = document.get("id") if isinstance(document, dict) else None
    return str(line_id) if isinstance(line_id, str | int) and str(line_id) else None


def _dead_letter_headers(
    exc: BaseException, reason: str, source_file: str, line_number: int
) -> list[tuple[str, bytes]]:
    return error_headers(
        stage=_STAGE,
        exc=exc,
        message=reason,
        at=utc_now(),
        source={"source.file": source_file, "source.line": line_number},
    )


async def inject_file(
    path: Path, publisher: Publisher, *, now: Callable[[], datetime] = utc_now
) -> list[str]:
    """Publish every line of ``path`` as a raw API event; returns their tracking numbers.

    Raises ``RejectedLines`` (carrying the tracking numbers of the good lines) after the
    whole file was processed when some lines went to the dead-letter topic, and
    ``PublishFailed``/``PublishTimeout`` at once when Kafka does not acknowledge.
    """
    tracking: list[str] = []
    rejected: list[tuple[int, str]] = []
    source_file = str(path.resolve())
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                line_id, submission = _parse_line(line)
            except (ValueError, InvalidSubmission) as exc:  # JSON, UTF-8 and pydantic errors
                reason = _message(exc)
                key = _line_key(line) or f"{path.name}:{number}"
                headers = _dead_letter_headers(exc, reason, source_file, number)
                await publisher.publish(DEADLETTER_TOPIC, key, line, headers)
                log.warning("inject: %s line %d sent to %s", path.name, number, DEADLETTER_TOPIC)
                rejected.append((number, reason))
                continue
            provider_id = line_id or str(uuid.uuid5(_LINE_NAMESPACE, line.decode("utf-8")))
            await publish_raw_event(publisher, submission_event(submission, provider_id, now()))
            tracking.append(submission_tracking_number(provider_id))
            log.info("inject: tracking=%s source=%s", tracking[-1], submission.source.value)
    if rejected:
        lines = ", ".join(str(number) for number, _ in rejected)
        raise RejectedLines(
            f"{len(rejected)} line(s) of {path.name} were invalid and sent to "
            f"{DEADLETTER_TOPIC} (lines {lines}); {len(tracking)} published",
            tracking_numbers=tracking,
            rejected=rejected,
        )
    return tracking
