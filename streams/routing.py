"""From a new message to a case and from a case to where it must go (pure functions).

The classification comes from ``streams.classify``; this module decides what it means:
which topic, which hand-off, which notice to the citizen, which case events record it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.case import (
    CaseEvent,
    CaseEventKind,
    Classification,
    Responsible,
    Route,
    TargetKind,
    Urgency,
)
from schemas.common import Channel
from schemas.ids import case_event_id
from schemas.message import CitizenMessage
from schemas.registry import unit_topic
from schemas.taxonomy import taxonomy
from schemas.work import (
    EmergencyItem,
    ForwardedWorkItem,
    ReplyRequest,
    ReviewItem,
    UnitWorkItem,
)
from streams.deadlines import WorkingCalendar
from streams.lifecycle import case_deadline, due_at
from streams.pii import mask_personal_data

__all__ = [
    "Routing",
    "citizen_address",
    "open_case",
    "route_case",
]


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
    """Everything routing a new case produces, each with the topic it goes to."""

    work_items: tuple[tuple[str, UnitWorkItem | ForwardedWorkItem], ...]
    review: ReviewItem | None
    emergency: EmergencyItem | None
    notices: tuple[ReplyRequest, ...]
    events: tuple[CaseEvent, ...]

    @property
    def work_item(self) -> UnitWorkItem | ForwardedWorkItem | None:
        """The (first) work item, if the case went to a body at all."""
        return self.work_items[0][1] if self.work_items else None


def citizen_address(msg: CitizenMessage) -> str | None:
    """Where a reply reaches the citizen on the channel they used (None: nowhere)."""
    contact = msg.citizen
    by_channel = {
        Channel.WHATSAPP: contact.phone,
        Channel.EMAIL: contact.email,
        Channel.TWITTER: contact.handle,
        Channel.CALLS: contact.phone,
        Channel.API: contact.phone or contact.email,
    }
    return by_channel.get(msg.channel)


def _target(cls: Classification) -> Route:
    """Where the case goes under Law 5216: an outside body, a district municipality, or a unit."""
    if cls.responsible is Responsible.EXTERNAL and cls.external_body:
        return Route(
            kind=TargetKind.EXTERNAL,
            target=cls.external_body,
            topic=f"external.{cls.external_body}",
        )
    if cls.responsible is Responsible.DISTRICT and cls.district:
        return Route(
            kind=TargetKind.DISTRICT, target=cls.district, topic=f"districts.{cls.district}"
        )
    return Route(kind=TargetKind.UNIT, target=cls.unit, topic=unit_topic(cls.unit))


def _notice(created: CaseEvent, msg: CitizenMessage, route: Route) -> ReplyRequest | None:
    """Tell the citizen the case went to another body, and to whom (no personal data in it)."""
    recipient = citizen_address(msg)
    if recipient is None:
        return None
    tax = taxonomy()
    name = tax.bodies.get(route.target) or tax.districts.get(route.target, route.target)
    if route.kind is TargetKind.DISTRICT:
        name = f"{name} Belediyesi"
    text = (
        f"{created.tracking_number} numaralı başvurunuz yetkili kurum olan {name} "
        "birimine iletilmiştir. Süreci bu numarayla takip edebilirsiniz. Alo 153"
    )
    return ReplyRequest(
        reply_id=case_event_id(created.case_id, "notice", route.topic),
        case_id=created.case_id,
        channel=msg.channel,
        recipient=recipient,
        text=text,
        in_reply_to=msg.message_id,
        tracking_number=created.tracking_number,
        subject=msg.subject,
        last_inbound_at=msg.received_at,
    )


def _emergency(created: CaseEvent, msg: CitizenMessage, cls: Classification) -> EmergencyItem:
    return EmergencyItem(
        case_id=created.case_id,
        tracking_number=created.tracking_number,
        handoff="ALO 183" if cls.urgency is Urgency.ALO_183 else "112",
        reason=f"{cls.unit}: {cls.urgency.value}",
        text=msg.text,
        location=msg.location,
        callback_phone=msg.citizen.phone,
        channel=msg.channel,
        received_at=msg.received_at,
    )


def route_case(
    created: CaseEvent,
    now: datetime,
    review_threshold: float = 0.0,
    calendar: WorkingCalendar | None = None,
) -> Routing:
    """Send a new case where it must go.

    A call the operator resolved on the line is answered at once (no body is bothered). Any
    other case goes to its unit, or is forwarded to the district municipality or outside body
    in charge (and the citizen is told to whom); an urgent one is also handed off at once
    (112, or ALO 183 for abuse); a public post or an unsure classification also goes to the
    social-media team's review. With a ``calendar`` the case's legal clock starts: the
    work item and the ``routed`` events carry the due date, the rule and the calendar.
    """
    if created.message is None or created.classification is None:
        raise ValueError("a case can be routed only from its 'created' event with a classification")
    msg, cls = created.message, created.classification
    problem = mask_personal_data(msg.text)
    reason: Literal["public-post", "low-confidence"] | None = (
        "public-post"
        if msg.public
        else "low-confidence"
        if cls.confidence < review_threshold
        else None
    )
    review = (
        ReviewItem(
            case_id=created.case_id,
            tracking_number=created.tracking_number,
            reason=reason,
            channel=msg.channel,
            text_masked=problem,
            classification=cls,
            received_at=msg.received_at,
        )
        if reason
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
        return Routing((), review, None, (), (answered,))
    route = _target(cls)
    deadline = case_deadline(msg, cls, calendar) if calendar is not None else None
    due = due_at(deadline) if deadline is not None else None
    clock = f"süre: {deadline.rule}; takvim: {deadline.calendar}" if deadline else None
    common = {
        "case_id": created.case_id,
        "tracking_number": created.tracking_number,
        "type": cls.type,
        "urgency": cls.urgency,
        "district": cls.district,
        "subject": mask_personal_data(msg.subject) if msg.subject else None,
        "problem": problem,
        "location": msg.location,
        "photos": tuple(a for a in msg.attachments if a.content_type.startswith("image/")),
        "channel": msg.channel,
        "received_at": msg.received_at,
        "due": due,
    }
    item: UnitWorkItem | ForwardedWorkItem
    notices: tuple[ReplyRequest, ...] = ()
    if route.kind is TargetKind.UNIT:
        item = UnitWorkItem(unit=cls.unit, **common)
    else:
        item = ForwardedWorkItem(
            target_kind=route.kind,
            target=route.target,
            reason=f"Law 5216: {cls.unit} ({cls.responsible.value})",
            **common,
        )
        notice = _notice(created, msg, route)
        notices = (notice,) if notice else ()
    routes = [route]
    emergency = None
    if cls.urgency is not Urgency.NORMAL:
        emergency = _emergency(created, msg, cls)
        routes.append(
            Route(kind=TargetKind.EMERGENCY, target=emergency.handoff, topic="intake.emergency")
        )
    if review is not None:
        routes.append(Route(kind=TargetKind.REVIEW, target=review.reason, topic="intake.review"))
    events = tuple(
        CaseEvent(
            event_id=case_event_id(created.case_id, CaseEventKind.ROUTED, r.topic),
            case_id=created.case_id,
            tracking_number=created.tracking_number,
            kind=CaseEventKind.ROUTED,
            at=now,
            classification=cls,
            route=r,
            due=due,
            note=clock,
        )
        for r in routes
    )
    return Routing(((route.topic, item),), review, emergency, notices, events)
