"""A case after routing: its legal clock, and what a unit's answer sets in motion (pure).

``case_deadline`` picks the legal basis of a new case and computes its due date;
``handle_response`` turns a unit's ``UnitResponse`` into the case events to record and the
replies to send to every citizen who reported the problem, each on their own channel.
The worker's agent does the I/O around them (case store, blob store, collage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol

from schemas.case import (
    CaseEvent,
    CaseEventKind,
    Classification,
    MessageType,
    Responsible,
    UnitResponse,
)
from schemas.common import AttachmentRef, Channel, CitizenContact
from schemas.ids import case_event_id
from schemas.message import CitizenMessage
from schemas.taxonomy import taxonomy
from schemas.work import ReplyRequest, ReviewItem
from sinks.store import CaseRecord
from streams.deadlines import ISTANBUL, Basis, Deadline, WorkingCalendar, compute_deadline
from streams.errors import StageError
from streams.pii import mask_personal_data

__all__ = [
    "Outcome",
    "ReportLike",
    "ResponseRefused",
    "basis_for",
    "case_deadline",
    "due_at",
    "handle_response",
    "reply_address",
]


class ResponseRefused(StageError):
    """A unit's response that cannot apply to its case (it goes to the dead-letter topic)."""


class ReportLike(Protocol):
    """One citizen report on a case, as the case store lists them."""

    @property
    def message_id(self) -> str: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def citizen(self) -> CitizenContact: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def subject(self) -> str | None: ...


def basis_for(msg: CitizenMessage, cls: Classification) -> Basis:
    """The legal basis of a new case: Law 4982, CİMER, a written petition, or a complaint."""
    if cls.type is MessageType.BILGI_EDINME:
        return Basis.BILGI_EDINME
    if (msg.source or "").casefold() == "cimer":
        return Basis.CIMER
    if msg.channel is Channel.EMAIL or (msg.source or "").casefold() == "dilekce":
        return Basis.DILEKCE  # a written application: Law 3071's 30 days
    return Basis.SIKAYET


def due_at(deadline: Deadline) -> datetime:
    """The due date as an instant: the end of that day on the Istanbul clock."""
    return datetime.combine(deadline.due, time(23, 59, 59), ISTANBUL)


def case_deadline(msg: CitizenMessage, cls: Classification, calendar: WorkingCalendar) -> Deadline:
    """The due dates of a new case (``calendar`` records which calendar computed them)."""
    return compute_deadline(basis_for(msg, cls), msg.received_at, calendar, unit=cls.unit)


def reply_address(channel: Channel, contact: CitizenContact) -> tuple[Channel, str] | None:
    """The channel and address a reply goes to: the one the citizen used; a phone without
    a chat channel (a call, a form) becomes a callback by the feedback operators."""
    if channel is Channel.WHATSAPP and contact.phone:
        return Channel.WHATSAPP, contact.phone
    if channel is Channel.EMAIL and contact.email:
        return Channel.EMAIL, contact.email
    if channel is Channel.TWITTER and contact.handle:
        return Channel.TWITTER, contact.handle
    if channel is Channel.API and contact.email:
        return Channel.EMAIL, contact.email
    if channel in (Channel.CALLS, Channel.API) and contact.phone:
        return Channel.CALLS, contact.phone
    return None


@dataclass(frozen=True)
class Outcome:
    """What a unit's response produces: events for ``intake.cases``, replies for
    ``intake.replies`` and, for a case the unit says is not theirs, an item for review."""

    events: tuple[CaseEvent, ...] = ()
    replies: tuple[ReplyRequest, ...] = ()
    review: ReviewItem | None = None


def _unit_name(code: str | None) -> str:
    return taxonomy().units.get(code or "", code or "ilgili birim")


def _tr_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _answer_text(case: CaseRecord, response: UnitResponse, channel: Channel) -> str:
    unit = _unit_name(response.unit)
    if channel is Channel.TWITTER:  # public: the tracking number and the outcome only
        outcome = "çözüldü" if response.status == "resolved" else "yanıtlandı"
        return f"{case.tracking_number} numaralı bildiriminiz {unit} tarafından {outcome}."
    return (
        f"{case.tracking_number} numaralı başvurunuz {unit} tarafından yanıtlanmıştır:\n\n"
        f"{response.answer}\n\nAdana Büyükşehir Belediyesi — Alo 153"
    )


def _replies(
    case: CaseRecord,
    response: UnitResponse,
    reports: Sequence[ReportLike],
    collage: AttachmentRef | None,
    text_for: dict[Channel, str],
    kind: str,
) -> tuple[ReplyRequest, ...]:
    """One reply per reporter (a clustered case answers every attached report)."""
    replies: dict[str, ReplyRequest] = {}
    for report in sorted(reports, key=lambda r: (r.received_at, r.message_id)):
        target = reply_address(report.channel, report.citizen)
        if target is None:
            continue
        channel, recipient = target
        if (channel, recipient) in {(r.channel, r.recipient) for r in replies.values()}:
            continue  # the same citizen reported twice on one channel: one answer
        last_inbound = max(
            (
                r.received_at
                for r in reports
                if r.channel is report.channel and r.citizen == report.citizen
            ),
            default=report.received_at,
        )
        answer_key = f"{response.responded_at.isoformat()}|{report.message_id}"
        reply_id = case_event_id(case.case_id, f"reply-{kind}", answer_key)
        with_photo = collage is not None and channel in (Channel.WHATSAPP, Channel.EMAIL)
        replies[reply_id] = ReplyRequest(
            reply_id=reply_id,
            case_id=case.case_id,
            channel=channel,
            recipient=recipient,
            text=text_for.get(channel) or text_for[Channel.EMAIL],
            attachments=(collage,) if with_photo and collage is not None else (),
            in_reply_to=report.message_id,
            tracking_number=case.tracking_number,
            subject=report.subject,
            last_inbound_at=last_inbound,
            kind="answer" if kind == "answer" else "notice",
        )
    return tuple(replies.values())


def handle_response(
    response: UnitResponse,
    case: CaseRecord,
    reports: Sequence[ReportLike],
    *,
    calendar: WorkingCalendar,
    collage: AttachmentRef | None = None,
    collage_note: str | None = None,
) -> Outcome:
    """The events and replies a unit's response to ``case`` produces.

    * ``resolved`` / ``rejected``: an ``answered`` event and an answer to every reporter,
      with the before/after collage where the channel carries images;
    * ``extended``: only for a right-to-information case within its first 15 working days:
      an ``extended`` event with the 30-working-day due date, and a notice with the reason;
    * ``not-ours``: a ``rerouted`` event and the case back to the review console;
    * ``in-progress``: nothing to record yet.
    Raises :class:`ResponseRefused` for a response that cannot apply to the case.
    """
    if response.case_id != case.case_id:
        raise ResponseRefused(f"response for {response.case_id} given with case {case.case_id}")
    at = response.responded_at
    event_key = f"{response.status}|{at.isoformat()}"
    base = {"case_id": case.case_id, "tracking_number": case.tracking_number, "at": at}
    unit = _unit_name(response.unit)
    if response.status in ("resolved", "rejected"):
        status = "çözüldü" if response.status == "resolved" else "ret"
        note = f"{unit} yanıtı ({status})" + (f"; {collage_note}" if collage_note else "")
        answered = CaseEvent(
            event_id=case_event_id(case.case_id, CaseEventKind.ANSWERED, event_key),
            kind=CaseEventKind.ANSWERED,
            response=response,
            note=note,
            **base,
        )
        texts = {ch: _answer_text(case, response, ch) for ch in Channel}
        replies = _replies(case, response, reports, collage, texts, "answer")
        return Outcome(events=(answered,), replies=replies)
    if response.status == "extended":
        if case.type is not MessageType.BILGI_EDINME:
            raise ResponseRefused(
                f"extension refused: case {case.case_id} is not a right-to-information "
                f"application ({case.type})"
            )
        extended = compute_deadline(Basis.BILGI_EDINME_UZATMA, case.received_at, calendar)
        assert extended.notice_by is not None
        if at.astimezone(ISTANBUL).date() > extended.notice_by:
            raise ResponseRefused(
                f"extension refused: the notice was due by {extended.notice_by.isoformat()} "
                "(Law 4982 art. 11: within the first 15 working days)"
            )
        event = CaseEvent(
            event_id=case_event_id(case.case_id, CaseEventKind.EXTENDED, event_key),
            kind=CaseEventKind.EXTENDED,
            due=due_at(extended),
            response=response,
            note=f"süre uzatıldı: {extended.rule}; takvim: {extended.calendar}",
            **base,
        )
        text = (
            f"{case.tracking_number} numaralı bilgi edinme başvurunuzun yanıt süresi 4982 sayılı "
            f"Kanun'un 11. maddesi uyarınca 30 iş gününe uzatılmıştır. Gerekçe: "
            f"{response.answer} Yeni son tarih: {_tr_date(extended.due)}. Alo 153"
        )
        texts = {Channel.EMAIL: text, Channel.TWITTER: mask_personal_data(text)}
        replies = _replies(case, response, reports, None, texts, "extension")
        return Outcome(events=(event,), replies=replies)
    if response.status == "not-ours":
        rerouted = CaseEvent(
            event_id=case_event_id(case.case_id, CaseEventKind.REROUTED, event_key),
            kind=CaseEventKind.REROUTED,
            response=response,
            note=f"{unit}: birimimizin konusu değil; yeniden yönlendirme için incelemede",
            **base,
        )
        review = ReviewItem(
            case_id=case.case_id,
            tracking_number=case.tracking_number,
            reason="manual",
            channel=case.channel,
            text_masked=mask_personal_data(case.text),
            classification=Classification(
                unit=case.unit or "diger",
                type=case.type or MessageType.SIKAYET,
                district=case.district,
                responsible=case.responsible or Responsible.METROPOLITAN,
                confidence=0.0,
                method=f"unit-refused:{response.unit}",
            ),
            received_at=case.received_at,
        )
        return Outcome(events=(rerouted,), review=review)
    return Outcome()
