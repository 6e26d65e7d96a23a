"""Placeholder classification and the case steps built from it (pure functions).

The keyword rule below is a stand-in until the real classifier lands: it looks for a few
stems per unit in the Turkish-casefolded, ASCII-folded text and falls back to ``diger``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.case import CaseEvent, CaseEventKind, Classification, Route, TargetKind
from schemas.ids import case_event_id
from schemas.message import CitizenMessage
from schemas.registry import unit_topic
from schemas.work import ReviewItem, UnitWorkItem
from streams.pii import mask_personal_data
from streams.text import fold_ascii

__all__ = [
    "PLACEHOLDER_METHOD",
    "Routing",
    "classify_placeholder",
    "open_case",
    "route_case",
]

PLACEHOLDER_METHOD = "keyword-rule-v0"

_STEMS: dict[str, tuple[str, ...]] = {
    "su-kanalizasyon": ("su kesik", "sular", "su yok", "boru", "kanalizasyon", "rogar", "aski"),
    "ulasim": ("otobus", "durak", "sofor", "kentkart", "trafik isig", "sefer"),
    "yol-altyapi": ("cukur", "asfalt", "kaldirim", "yol bozuk", "yama"),
    "temizlik": ("cop", "konteyner", "atik"),
    "park-bahce": ("park", "agac", "cim", "oyun alani", "bank"),
    "zabita": ("seyyar", "gurultu", "isgal", "zabita", "kaldirim isgal"),
    "veteriner": ("kopek", "kedi", "hayvan", "sokak kopek"),
    "sosyal-hizmetler": ("yardim", "engelli", "yasli", "kira yardimi"),
    "ilaclama": ("sivrisinek", "ilaclama", "hamam bocegi", "fare", "hasere"),
    "aydinlatma": ("lamba", "aydinlatma", "sokak isig", "karanlik", "direk"),
    "imar": ("kacak yapi", "kacak kat", "ruhsat", "imar"),
    "itfaiye": ("yangin", "duman", "itfaiye"),
}


def classify_placeholder(msg: CitizenMessage) -> Classification:
    """The unit whose stems occur most often in the text; ``diger`` when none does."""
    text = fold_ascii(msg.text_folded)
    scores = {unit: sum(text.count(stem) for stem in stems) for unit, stems in _STEMS.items()}
    unit, hits = max(scores.items(), key=lambda item: item[1])
    if hits == 0:
        return Classification(unit="diger", confidence=0.0, method=PLACEHOLDER_METHOD)
    return Classification(
        unit=unit, confidence=min(0.5 + 0.1 * hits, 0.9), method=PLACEHOLDER_METHOD
    )


def open_case(msg: CitizenMessage, classification: Classification) -> CaseEvent:
    """The event a new message produces (stable: a replay is identical).

    A citizen's follow-up to an existing case (``reply_to_case``) is ``attached`` to that
    case; any other message opens a case of its own, whose id is its tracking number.
    """
    if msg.reply_to_case:
        return CaseEvent(
            event_id=case_event_id(msg.reply_to_case, CaseEventKind.ATTACHED, msg.message_id),
            case_id=msg.reply_to_case,
            tracking_number=msg.reply_to_case,
            kind=CaseEventKind.ATTACHED,
            at=msg.received_at,
            message=msg,
            note="vatandaşın ek mesajı",
        )
    case_id = msg.tracking_number
    return CaseEvent(
        event_id=case_event_id(case_id, CaseEventKind.CREATED, msg.message_id),
        case_id=case_id,
        tracking_number=msg.tracking_number,
        kind=CaseEventKind.CREATED,
        at=msg.received_at,
        message=msg,
        classification=classification,
    )


@dataclass(frozen=True)
class Routing:
    """What routing a new case produces: a work item, a review item, and the case events."""

    work_item: UnitWorkItem | None
    review: ReviewItem | None
    events: tuple[CaseEvent, ...]


def route_case(created: CaseEvent, now: datetime) -> Routing:
    """Send a new case where it must go.

    A call the operator resolved on the line is answered at once (no unit is bothered); any
    other case goes to its unit; a public post also goes to the social-media team's review.
    """
    if created.message is None or created.classification is None:
        raise ValueError("a case can be routed only from its 'created' event with a classification")
    msg, cls = created.message, created.classification
    review = (
        ReviewItem(
            case_id=created.case_id,
            tracking_number=created.tracking_number,
            reason="public-post",
            channel=msg.channel,
            text_masked=mask_personal_data(msg.text),
            classification=cls,
            received_at=msg.received_at,
        )
        if msg.public
        else None
    )
    if msg.resolved_on_line:
        answered = CaseEvent(
            event_id=case_event_id(created.case_id, CaseEventKind.ANSWERED, "on-the-line"),
            case_id=created.case_id,
            tracking_number=created.tracking_number,
            kind=CaseEventKind.ANSWERED,
            at=msg.received_at,
            classification=cls,
            note="çağrı sırasında hatta çözüldü",
        )
        return Routing(work_item=None, review=review, events=(answered,))
    route = Route(kind=TargetKind.UNIT, target=cls.unit, topic=unit_topic(cls.unit))
    item = UnitWorkItem(
        case_id=created.case_id,
        tracking_number=created.tracking_number,
        unit=cls.unit,
        type=cls.type,
        urgency=cls.urgency,
        district=cls.district,
        subject=mask_personal_data(msg.subject) if msg.subject else None,
        problem=mask_personal_data(msg.text),
        location=msg.location,
        photos=tuple(a for a in msg.attachments if a.content_type.startswith("image/")),
        channel=msg.channel,
        received_at=msg.received_at,
    )
    routed = CaseEvent(
        event_id=case_event_id(created.case_id, CaseEventKind.ROUTED, route.topic),
        case_id=created.case_id,
        tracking_number=created.tracking_number,
        kind=CaseEventKind.ROUTED,
        at=now,
        classification=cls,
        route=route,
    )
    return Routing(work_item=item, review=review, events=(routed,))
