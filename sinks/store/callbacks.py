"""Callbacks: the phone calls the feedback operators owe citizens (table ``callbacks``).

A citizen who called Alo 153 gets the answer by phone: the reply for the ``calls`` channel is
not sent by a machine but becomes a callback task, listed for the operators (``intake
callbacks``) until one of them marks it done. The callback's id is the reply's ``reply_id``,
so a redelivered reply request adds nothing. The phone number is kept in clear on purpose:
the operator needs it. It is never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select

from schemas.common import utc_now
from schemas.work import ReplyRequest
from sinks.errors import SinkError
from sinks.store.models import Base
from sinks.store.replies import ReplyLog, ReplyStatus, mask_recipient

__all__ = ["Callback", "CallbackBook", "CallbackStatus", "UnknownCallback", "format_callbacks"]

_CALLBACKS: Table = Base.metadata.tables["callbacks"]
_CASES: Table = Base.metadata.tables["cases"]
_ISTANBUL = ZoneInfo("Europe/Istanbul")
_PHONE_PREFIXES = ("tel:", "whatsapp:")


class CallbackStatus(StrEnum):
    """An open callback waits for an operator; a done one records who called and when."""

    OPEN = "open"
    DONE = "done"


class UnknownCallback(SinkError):
    """No callback has this id (a typo at the operator's prompt, most likely)."""

    def __init__(self, callback_id: str) -> None:
        super().__init__(f"no callback with id {callback_id!r}")
        self.callback_id = callback_id


@dataclass(frozen=True, slots=True)
class Callback:
    """A call to make: whom to call, what to tell them, and how it ended."""

    callback_id: str
    case_id: str
    tracking_number: str | None
    phone: str
    citizen_name: str | None
    text: str
    status: CallbackStatus
    created_at: datetime
    done_at: datetime | None
    operator: str | None
    note: str | None


def _callback_from_row(row: Mapping[Any, Any]) -> Callback:
    values = dict(row)
    values["status"] = CallbackStatus(row["status"])
    return Callback(**values)


def _phone(recipient: str) -> str:
    phone = recipient.strip()
    for prefix in _PHONE_PREFIXES:
        phone = phone.removeprefix(prefix)
    return phone


class CallbackBook(ReplyLog):
    """The ``callbacks`` part of the case store (it logs each callback as a reply, too)."""

    def add_callback(
        self, request: ReplyRequest, *, citizen_name: str | None = None, at: datetime | None = None
    ) -> bool:
        """Turn a reply request into a callback task; returns whether it is new.

        Idempotent by ``reply_id``: adding it again changes nothing, even once it is done.
        The reply log gets the reply with status ``callback``. The citizen's name and the
        tracking number come from the case when not given and the store knows the case.
        """
        phone = _phone(request.recipient)
        if not phone:
            raise ValueError("a callback needs the citizen's phone number")
        now = at or utc_now()
        with self.writing() as conn:
            case = conn.execute(
                select(_CASES.c.tracking_number, _CASES.c.citizen).where(
                    _CASES.c.case_id == request.case_id
                )
            ).first()
            if citizen_name is None and case is not None:
                citizen_name = (case.citizen or {}).get("name")
            tracking = request.tracking_number or (case.tracking_number if case else None)
            insert = (
                self._insert(_CALLBACKS)
                .on_conflict_do_nothing()
                .returning(_CALLBACKS.c.callback_id)
            )
            added = conn.execute(
                insert,
                {
                    "callback_id": request.reply_id,
                    "case_id": request.case_id,
                    "tracking_number": tracking,
                    "phone": phone,
                    "citizen_name": citizen_name,
                    "text": request.text,
                    "status": CallbackStatus.OPEN.value,
                    "created_at": now,
                    "done_at": None,
                    "operator": None,
                    "note": None,
                },
            ).first()
            if added is None:
                return False
            self._upsert_reply(
                conn,
                {
                    "reply_id": request.reply_id,
                    "case_id": request.case_id,
                    "channel": request.channel.value,
                    "kind": request.kind,
                    "status": ReplyStatus.CALLBACK.value,
                    "provider_id": None,
                    "attempts": 0,
                    "error": None,
                    "recipient_masked": mask_recipient(request.channel, phone),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            return True

    def get_callback(self, callback_id: str) -> Callback | None:
        """One callback, or ``None`` when there is no such id."""
        query = select(_CALLBACKS).where(_CALLBACKS.c.callback_id == callback_id)
        with self.reading() as conn:
            row = conn.execute(query).first()
        return _callback_from_row(row._mapping) if row is not None else None

    def list_callbacks(self, status: CallbackStatus | None = CallbackStatus.OPEN) -> list[Callback]:
        """Callbacks with ``status`` (all of them for ``None``), oldest first."""
        query = select(_CALLBACKS).order_by(_CALLBACKS.c.created_at, _CALLBACKS.c.callback_id)
        if status is not None:
            query = query.where(_CALLBACKS.c.status == CallbackStatus(status).value)
        with self.reading() as conn:
            return [_callback_from_row(row._mapping) for row in conn.execute(query)]

    def complete_callback(
        self,
        callback_id: str,
        operator: str,
        note: str | None = None,
        *,
        at: datetime | None = None,
    ) -> Callback:
        """Mark a callback done by ``operator``; returns it. Raises :class:`UnknownCallback`.

        Completing an already done callback keeps the first completion (who, when, note)
        and returns it unchanged, so a repeated command cannot rewrite what happened.
        """
        operator = operator.strip()
        if not operator:
            raise ValueError("the operator who made the call must be named")
        done = {
            "status": CallbackStatus.DONE.value,
            "done_at": at or utc_now(),
            "operator": operator,
            "note": note.strip() if note and note.strip() else None,
        }
        with self.writing() as conn:
            conn.execute(
                _CALLBACKS.update()
                .where(_CALLBACKS.c.callback_id == callback_id)
                .where(_CALLBACKS.c.status == CallbackStatus.OPEN.value)
                .values(**done)
            )
            row = conn.execute(
                select(_CALLBACKS).where(_CALLBACKS.c.callback_id == callback_id)
            ).first()
        if row is None:
            raise UnknownCallback(callback_id)
        return _callback_from_row(row._mapping)


def _local(moment: datetime) -> str:
    return moment.astimezone(_ISTANBUL).strftime("%d.%m.%Y %H:%M")


def format_callbacks(callbacks: Sequence[Callback]) -> str:
    """The callbacks as text for an operator's terminal (Turkish; times in Istanbul time)."""
    if not callbacks:
        return "Bekleyen geri arama yok."
    blocks = []
    for item in callbacks:
        state = "açık" if item.status is CallbackStatus.OPEN else "tamamlandı"
        lines = [
            f"[{state}] {item.callback_id}",
            f"  Başvuru no: {item.tracking_number or '-'}   Oluşturma: {_local(item.created_at)}",
            f"  Aranacak: {item.citizen_name or '(ad yok)'}  {item.phone}",
            f"  Söylenecek: {item.text}",
        ]
        if item.done_at is not None:
            done = f"  Arayan: {item.operator} ({_local(item.done_at)})"
            lines.append(done + (f"  Not: {item.note}" if item.note else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
