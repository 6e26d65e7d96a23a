"""The reply log (``case_replies``): every reply to a citizen, keyed by its ``reply_id``.

The reply senders record each outcome here, so a person can see that a reply went out, or
why it did not, and a sender restarted after a crash can skip what was already delivered
(:meth:`ReplyLog.sent_reply_ids`). Only a masked recipient is kept, and error texts are
masked and shortened: the log is read by staff and must not become a copy of personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, select

from schemas.common import Channel, utc_now
from schemas.work import ReplyRequest
from sinks.store.engine import Database, chunks
from sinks.store.models import Base
from streams.pii import mask_email, mask_personal_data, mask_phone

__all__ = ["ReplyLog", "ReplyLogEntry", "ReplyStatus", "mask_recipient", "short_error"]

_REPLIES: Table = Base.metadata.tables["case_replies"]
_ERROR_CHARS = 300
_ADDRESS_PREFIXES = ("whatsapp:", "tel:", "mailto:")


class ReplyStatus(StrEnum):
    """How a reply ended: delivered, failed for good, or handed to a feedback operator."""

    SENT = "sent"
    FAILED = "failed"
    CALLBACK = "callback"


#: Outcomes a later record never overwrites: the citizen got (or will get) the reply.
FINAL_STATUSES = (ReplyStatus.SENT, ReplyStatus.CALLBACK)


@dataclass(frozen=True, slots=True)
class ReplyLogEntry:
    """One row of the reply log."""

    reply_id: str
    case_id: str
    channel: Channel
    kind: str
    status: ReplyStatus
    provider_id: str | None
    attempts: int
    error: str | None
    recipient_masked: str
    created_at: datetime
    updated_at: datetime


def _mask_phone_number(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) == 12 and digits.startswith("90"):  # +90 5xx xxx xx xx
        return f"+90 {digits[2]}** *** ** {digits[-2:]}"
    if len(digits) == 11 and digits.startswith("0"):  # 05xx xxx xx xx
        return f"0{digits[1]}** *** ** {digits[-2:]}"
    return ("+" if value.startswith(("+", "00")) else "") + mask_phone(value)


def mask_recipient(channel: Channel, recipient: str) -> str:
    """A recipient address with only its shape left, e.g. ``+90 5** *** ** 67``.

    Phones keep the country code, the first digit and the last two digits; e-mail
    addresses their first letter and domain; X handles their first letter.
    """
    address = recipient.strip()
    for prefix in _ADDRESS_PREFIXES:
        address = address.removeprefix(prefix)
    if not address:
        return ""
    if channel is Channel.EMAIL or "@" in address.strip("@"):
        return mask_email(address)
    if channel is Channel.TWITTER:
        handle = address.lstrip("@")
        return f"@{handle[:1]}***"
    if re.search(r"\d", address):
        return _mask_phone_number(address)
    return "***"


def short_error(error: str | None) -> str | None:
    """An error message fit for the log: personal data masked, one line, at most 300 chars."""
    if error is None:
        return None
    flat = " ".join(mask_personal_data(error).split())
    return flat if len(flat) <= _ERROR_CHARS else flat[: _ERROR_CHARS - 1] + "…"


def _entry_from_row(row: Mapping[Any, Any]) -> ReplyLogEntry:
    return ReplyLogEntry(
        reply_id=row["reply_id"],
        case_id=row["case_id"],
        channel=Channel(row["channel"]),
        kind=row["kind"],
        status=ReplyStatus(row["status"]),
        provider_id=row["provider_id"],
        attempts=row["attempts"],
        error=row["error"],
        recipient_masked=row["recipient_masked"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class ReplyLog(Database):
    """The ``case_replies`` part of the case store."""

    def record_reply(
        self,
        request: ReplyRequest,
        status: ReplyStatus,
        *,
        provider_id: str | None = None,
        attempts: int = 1,
        error: str | None = None,
        at: datetime | None = None,
    ) -> ReplyLogEntry:
        """Record how sending ``request`` ended (upsert by ``reply_id``); returns the stored row.

        Replaying the same outcome changes nothing but ``updated_at``. A reply already
        ``sent`` (or handed over as a ``callback``) stays so: a late or replayed failure
        cannot hide a delivery. A ``failed`` one becomes ``sent`` when a later try succeeds.
        """
        now = at or utc_now()
        values = {
            "reply_id": request.reply_id,
            "case_id": request.case_id,
            "channel": request.channel.value,
            "kind": request.kind,
            "status": ReplyStatus(status).value,
            "provider_id": provider_id,
            "attempts": attempts,
            "error": short_error(error),
            "recipient_masked": mask_recipient(request.channel, request.recipient),
            "created_at": now,
            "updated_at": now,
        }
        with self.writing() as conn:
            self._upsert_reply(conn, values)
            row = conn.execute(
                select(_REPLIES).where(_REPLIES.c.reply_id == request.reply_id)
            ).one()
            return _entry_from_row(row._mapping)

    def replies_for(self, case_id: str) -> list[ReplyLogEntry]:
        """Every logged reply of a case, oldest first."""
        query = (
            select(_REPLIES)
            .where(_REPLIES.c.case_id == case_id)
            .order_by(_REPLIES.c.created_at, _REPLIES.c.reply_id)
        )
        with self.reading() as conn:
            return [_entry_from_row(row._mapping) for row in conn.execute(query)]

    def failed_replies(self, limit: int = 100) -> list[ReplyLogEntry]:
        """Replies that failed for good and were not delivered since, newest first (for staff)."""
        query = (
            select(_REPLIES)
            .where(_REPLIES.c.status == ReplyStatus.FAILED.value)
            .order_by(_REPLIES.c.updated_at.desc(), _REPLIES.c.reply_id)
            .limit(limit)
        )
        with self.reading() as conn:
            return [_entry_from_row(row._mapping) for row in conn.execute(query)]

    def reply_statuses(self, reply_ids: Iterable[str]) -> dict[str, ReplyStatus]:
        """The logged status of each of ``reply_ids`` that the log knows."""
        wanted = sorted(set(reply_ids))
        found: dict[str, ReplyStatus] = {}
        with self.reading() as conn:
            for chunk in chunks(wanted):
                query = select(_REPLIES.c.reply_id, _REPLIES.c.status).where(
                    _REPLIES.c.reply_id.in_(chunk)
                )
                found.update((rid, ReplyStatus(status)) for rid, status in conn.execute(query))
        return found

    def sent_reply_ids(self, reply_ids: Iterable[str]) -> set[str]:
        """Which of ``reply_ids`` must not be sent again: ``sent``, or handed over as a callback.

        A sender asks this after a restart, before sending a redelivered request.
        """
        statuses = self.reply_statuses(reply_ids)
        return {rid for rid, status in statuses.items() if status in FINAL_STATUSES}

    def _upsert_reply(self, conn: Connection, values: dict[str, Any]) -> None:
        upsert = self._insert(_REPLIES)
        changed = {
            name: upsert.excluded[name] for name in values if name not in ("reply_id", "created_at")
        }
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["reply_id"],
                set_=changed,
                where=_REPLIES.c.status.not_in([s.value for s in FINAL_STATUSES]),
            ),
            values,
        )
