"""Which chasing steps a case needs now (pure): a reminder before the due date, then the ladder.

Rules, all counted on the Turkish working calendar of ``streams.deadlines``:

- Nothing is planned on a non-working day (weekend, holiday, an arife that does not count): the
  steps wait for the next working day, when someone reads them.
- **Reminder**: on a working day with 0 ≤ left ≤ ``remind_working_days_before``, where ``left``
  is the working days after today up to the due date. A reminder missed until the deadline
  has passed is not sent late: the escalations take over.
- **Escalation** to rung k of the ladder: on a working day that is at least the
  (``after_working_days`` + 1)-th working day after the due date. Rungs that are due together
  (the chaser was down) are all planned, in ladder order.
- A step whose event id is already recorded for the case is never planned again. The id is
  ``case_event_id(case, kind, "<step>:<unit>:<due>")``, so a case moved to another unit, or
  given a new due date (an extension), is chased afresh for it; nothing else repeats a step.
- A case that is not open (answered, closed) or has no due date is never chased. The due date
  is the one recorded on the case (set when it was routed, moved by an extension), so the
  chaser and the case agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email.message import EmailMessage

from schemas.case import CaseEvent, CaseEventKind, MessageType
from schemas.ids import case_event_id
from streams.chasing.settings import ChasingSettings
from streams.chasing.texts import ChaseFacts, chase_email, chase_reason
from streams.deadlines import ISTANBUL, NaiveReceivedTime, WorkingCalendar

__all__ = ["MAIL_SENT", "ChaseCandidate", "ChaseStep", "plan_chase", "step_event_id"]

#: Appended to a step's note when its e-mail went out.
MAIL_SENT = "e-posta gönderildi"
_OPEN = "open"


@dataclass(frozen=True, slots=True)
class ChaseCandidate:
    """An open case as the chaser sees it: no citizen data, only what chasing needs.

    ``due`` is the due day on the Istanbul calendar (None: no deadline, not chased).
    ``event_ids`` are the ids of every event already recorded for the case.
    """

    case_id: str
    tracking_number: str
    unit: str | None
    type: MessageType | None
    received_at: datetime
    due: date | None
    event_ids: frozenset[str] = field(default_factory=frozenset)
    status: str = _OPEN


@dataclass(frozen=True, slots=True)
class ChaseStep:
    """One reminder or escalation: the e-mail to send, then the event that records it.

    ``email`` is None when no address is configured for the level; ``event`` then already says
    so. :meth:`failed` gives the event to record when the e-mail was refused for good.
    """

    kind: CaseEventKind
    level: str
    #: 0 for the reminder, n for the n-th rung of the ladder.
    rung: int
    recipient: str | None
    event_id: str
    reason: str
    event: CaseEvent
    email: EmailMessage | None

    @property
    def case_id(self) -> str:
        """The chased case."""
        return self.event.case_id

    def failed(self, why: str) -> CaseEvent:
        """The event recording this step when its e-mail could not be sent."""
        return self.event.model_copy(
            update={"note": f"{self.reason}; e-posta gönderilemedi: {why}"}
        )


def _local_day(moment: datetime) -> date:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveReceivedTime(f"chasing time {moment.isoformat()} has no time zone")
    return moment.astimezone(ISTANBUL).date()


def _step(
    candidate: ChaseCandidate,
    facts: ChaseFacts,
    kind: CaseEventKind,
    level: str,
    event_id: str,
    now: datetime,
    settings: ChasingSettings,
) -> ChaseStep:
    recipient = settings.address(candidate.unit, level)
    reason = chase_reason(facts)
    outcome = (
        MAIL_SENT if recipient else "e-posta gönderilemedi: bu kademe için adres tanımlı değil"
    )
    event = CaseEvent(
        event_id=event_id,
        case_id=candidate.case_id,
        tracking_number=candidate.tracking_number,
        kind=kind,
        at=now,
        note=f"{reason}; {outcome}",
    )
    return ChaseStep(
        kind=kind,
        level=level,
        rung=facts.rung,
        recipient=recipient,
        event_id=event_id,
        reason=reason,
        event=event,
        email=chase_email(facts, recipient) if recipient else None,
    )


def step_event_id(case_id: str, kind: CaseEventKind, step: str, unit: str | None, due: date) -> str:
    """Stable id of a chasing step (32 hex characters, via ``schemas.ids.case_event_id``)."""
    return case_event_id(case_id, kind, f"{step}:{unit or '-'}:{due.isoformat()}")


def plan_chase(
    candidate: ChaseCandidate,
    now: datetime,
    calendar: WorkingCalendar,
    settings: ChasingSettings,
) -> list[ChaseStep]:
    """The steps ``candidate`` needs at ``now`` (aware), in the order they must be taken.

    Raises ``NaiveReceivedTime`` for a naive ``now``.
    """
    today = _local_day(now)
    if candidate.status != _OPEN or not calendar.is_working_day(today):
        return []
    due = candidate.due
    if due is None:
        return []
    # Today is a working day, so this is the working days after today up to the due date, or,
    # negative, the working days in (due, today]: -1 on the first working day after the due date.
    left = calendar.working_days_between(today, due)
    unit = candidate.unit
    base = ChaseFacts(
        tracking_number=candidate.tracking_number,
        unit=unit,
        type=candidate.type,
        received_at=candidate.received_at,
        due=due,
        left=left,
        rung=0,
        title=settings.title(settings.remind_level),
    )
    steps: list[ChaseStep] = []
    before = settings.remind_working_days_before
    if before is not None and 0 <= left <= before:
        level = settings.remind_level
        event_id = step_event_id(candidate.case_id, CaseEventKind.REMINDED, "remind", unit, due)
        if event_id not in candidate.event_ids:
            steps.append(
                _step(candidate, base, CaseEventKind.REMINDED, level, event_id, now, settings)
            )
    late = -left
    for rung, rule in enumerate(settings.ladder, start=1):
        if late < rule.after_working_days + 1:
            break
        event_id = step_event_id(
            candidate.case_id, CaseEventKind.ESCALATED, f"escalate:{rule.level}", unit, due
        )
        if event_id in candidate.event_ids:
            continue
        facts = replace(
            base,
            rung=rung,
            title=settings.title(rule.level),
            earlier=tuple(settings.title(r.level) for r in settings.ladder[: rung - 1]),
        )
        steps.append(
            _step(candidate, facts, CaseEventKind.ESCALATED, rule.level, event_id, now, settings)
        )
    return steps
