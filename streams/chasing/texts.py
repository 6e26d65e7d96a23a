"""The Turkish words of chasing: e-mail subjects and bodies, case-event notes (pure).

Staff read these, so they are Turkish. They name the case by its tracking number, unit, type and
dates only: no citizen identity and no problem text (KVKK: the addressee can open the case in
the unit's own system).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage

from schemas.case import MessageType
from schemas.taxonomy import taxonomy
from streams.deadlines import ISTANBUL

__all__ = ["ChaseFacts", "chase_email", "chase_reason", "type_label", "unit_label"]

_TYPE_LABELS = {
    MessageType.SIKAYET: "Şikâyet",
    MessageType.TALEP: "Talep",
    MessageType.ONERI: "Öneri",
    MessageType.IHBAR: "İhbar",
    MessageType.BILGI_EDINME: "Bilgi edinme (4982 s. Kanun)",
    MessageType.TESEKKUR: "Teşekkür",
}


@dataclass(frozen=True, slots=True)
class ChaseFacts:
    """What one chasing step says about its case."""

    tracking_number: str
    unit: str | None
    type: MessageType | None
    received_at: datetime
    due: date
    #: Working days left (≥ 0) or, when negative, working days late.
    left: int
    #: 0 for the reminder, n for the n-th rung of the ladder.
    rung: int
    title: str
    #: Titles of the rungs below this one (already told), for an escalation.
    earlier: tuple[str, ...] = ()


def unit_label(unit: str | None) -> str:
    """The unit's Turkish name from the taxonomy (the code itself when unknown)."""
    if not unit:
        return "birimi belirlenmemiş"
    return taxonomy().units.get(unit, unit)


def type_label(kind: MessageType | None) -> str:
    """The Turkish name of a message type."""
    return _TYPE_LABELS.get(kind, "Belirtilmemiş") if kind is not None else "Belirtilmemiş"


def _day(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def chase_reason(facts: ChaseFacts) -> str:
    """Who is chased and why, for the case event's note (the outcome is appended later)."""
    who = f"{facts.title} ({unit_label(facts.unit)})"
    if facts.rung == 0:
        when = "bugün" if facts.left == 0 else f"{facts.left} iş günü kaldı"
        text = f"Hatırlatma: {who}; süre {_day(facts.due)} tarihinde doluyor ({when}), yanıt yok"
    else:
        text = (
            f"Süre aşımı ({facts.rung}. kademe): {who}; süre {_day(facts.due)} tarihinde "
            f"doldu, {-facts.left} iş günü gecikme"
        )
    return text


def _subject(facts: ChaseFacts) -> str:
    number = facts.tracking_number
    if facts.rung == 0:
        return (
            f"Hatırlatma: {number} numaralı başvurunun süresi {_day(facts.due)} tarihinde doluyor"
        )
    return (
        f"Süre aşımı ({facts.rung}. kademe): {number} numaralı başvurunun süresi "
        f"{_day(facts.due)} tarihinde doldu"
    )


def _lead(facts: ChaseFacts) -> list[str]:
    number, due = facts.tracking_number, _day(facts.due)
    if facts.rung == 0:
        left = "Süre bugün doluyor." if facts.left == 0 else f"{facts.left} iş günü kaldı."
        return [f"{number} numaralı başvuru henüz yanıtlanmadı. Son gün {due}; {left}"]
    lines = [
        f"{number} numaralı başvuru süresi içinde yanıtlanmadı. Son gün {due} idi; "
        f"{-facts.left} iş günüdür gecikmede.",
        f"Bu ileti takip sürecinin {facts.rung}. kademesi olarak size gönderilmiştir.",
    ]
    if facts.earlier:
        lines.append(f"Daha önce bilgilendirilenler: {', '.join(facts.earlier)}.")
    return lines


def chase_email(facts: ChaseFacts, recipient: str) -> EmailMessage:
    """The e-mail of one step (From and Message-ID are left to the mailer)."""
    received = facts.received_at.astimezone(ISTANBUL)
    progress = (
        f"Kalan süre: {facts.left} iş günü"
        if facts.left >= 0
        else f"Gecikme: {-facts.left} iş günü"
    )
    unit = unit_label(facts.unit)
    body = [
        f"Sayın {facts.title},",
        "",
        *_lead(facts),
        "",
        f"Takip numarası: {facts.tracking_number}",
        f"Birim: {unit} ({facts.unit})" if facts.unit else f"Birim: {unit}",
        f"Başvuru türü: {type_label(facts.type)}",
        f"Başvuru tarihi: {received:%d.%m.%Y %H:%M}",
        f"Son gün: {_day(facts.due)}",
        progress,
    ]
    body += [
        "",
        "Başvuru birim sisteminizden yanıtlandığında takip kendiliğinden durur.",
        "Bu ileti Alo 153 başvuru takip sistemi tarafından otomatik olarak gönderilmiştir.",
    ]
    message = EmailMessage()
    message["To"] = recipient
    message["Subject"] = _subject(facts)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content("\n".join(body) + "\n")
    return message
