"""The chasing loop: every ``interval_s`` plan each open case's steps, mail them, record them.

Per step the e-mail goes first, then the case event (``emit``, wired to ``intake.cases``):

- **sent** → the event is emitted with the note "… ; e-posta gönderildi".
- **transient mail failure** (relay unreachable, 4xx) → nothing is recorded; the step is planned
  again next round. The case's later steps wait too, so the ladder stays in order. After
  ``max_transient_failures`` such failures in a row the round stops mailing (the relay is down).
- **permanent mail failure** (5xx, recipient refused) or **no address** for the level → the event
  is emitted with "e-posta gönderilemedi: …", so a person sees it and it is not retried forever.
- **emit fails** (Kafka down) → the round stops. The event is kept in memory and emitted first
  next round without mailing again; only a restart in between re-sends that e-mail
  (at-least-once; the event id keeps the record itself exactly-once).

Steps this process recorded are remembered until the candidate source shows them, so a case
store that lags behind ``intake.cases`` does not cause a second e-mail. One case that fails
(bad data) is logged and skipped; it never stops the round. Logs name the tracking number,
unit and level, never an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol, cast

from schemas.case import CaseEvent
from schemas.common import utc_now
from sinks.mail import MailError
from sinks.store.records import CaseRecord
from streams.chasing.plan import ChaseCandidate, ChaseStep, plan_chase
from streams.chasing.settings import ChasingSettings
from streams.deadlines import ISTANBUL, WorkingCalendar
from streams.pii import mask_personal_data

__all__ = ["CandidateSource", "ChaseSummary", "Chaser", "Mailer", "candidate_from"]

log = logging.getLogger(__name__)

#: Where the open cases come from: a coroutine function, or a blocking one (run in a thread).
CandidateSource = Callable[[], Awaitable[list[ChaseCandidate]]] | Callable[[], list[ChaseCandidate]]


class Mailer(Protocol):
    """What the chaser needs of :class:`sinks.mail.SmtpMailer`."""

    async def send_async(self, message: EmailMessage) -> str:
        """Send ``message``; raise :class:`MailError` when it cannot be sent."""
        ...


class _StopRound(Exception):
    """Internal: the rest of the round must wait (relay or Kafka down)."""


@dataclass
class ChaseSummary:
    """What one round did (counts of steps, except ``candidates`` and ``errors``)."""

    candidates: int = 0
    planned: int = 0
    sent: int = 0
    recorded: int = 0
    #: Transient mail failures: planned again next round.
    deferred: int = 0
    #: Recorded without an e-mail (refused for good, or no address configured).
    undelivered: int = 0
    #: Cases that could not be planned or recorded (logged).
    errors: int = 0
    #: The round stopped before the last candidate (relay or Kafka down).
    stopped: bool = False


def candidate_from(record: CaseRecord, event_ids: Iterable[str]) -> ChaseCandidate:
    """The chaser's view of a stored case and the ids of its recorded events."""
    due = record.due.astimezone(ISTANBUL).date() if record.due is not None else None
    return ChaseCandidate(
        case_id=record.case_id,
        tracking_number=record.tracking_number,
        unit=record.unit,
        type=record.type,
        received_at=record.received_at,
        due=due,
        event_ids=frozenset(event_ids),
        status=str(record.status),
    )


class Chaser:
    """Reminds and escalates units that have not answered (see the module docstring)."""

    def __init__(
        self,
        settings: ChasingSettings,
        calendar: WorkingCalendar,
        candidates: CandidateSource,
        mailer: Mailer,
        emit: Callable[[CaseEvent], Awaitable[object]],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.candidates = candidates
        self.mailer = mailer
        self.emit = emit
        self.clock = clock
        #: Case id → ids of events this process recorded that the source may not show yet.
        self._recorded: dict[str, set[str]] = {}
        #: Events whose e-mail went out but whose emit failed: emitted first next round.
        self._unrecorded: dict[str, CaseEvent] = {}

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run a round every ``interval_s`` until ``stop`` is set; returns at once if disabled."""
        if not self.settings.enabled:
            log.info("chasing is disabled")
            return
        while not stop.is_set():
            try:
                summary = await self.run_once()
            except Exception:  # the loop must outlive any round
                log.exception("chasing round failed")
            else:
                log.info("chasing round: %s", summary)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.interval_s)

    async def run_once(self, now: datetime | None = None) -> ChaseSummary:
        """One round at ``now`` (default: the clock): plan, mail and record every due step."""
        now = now or self.clock()
        summary = ChaseSummary()
        candidates = await self._load()
        summary.candidates = len(candidates)
        self._forget_seen(candidates)
        try:
            for event in list(self._unrecorded.values()):  # mailed last round, not yet recorded
                await self._record(event, summary)
        except _StopRound:
            summary.stopped = True
            return summary
        transient = 0
        for candidate in candidates:
            try:
                steps = plan_chase(candidate, now, self.calendar, self.settings)
            except Exception as exc:
                summary.errors += 1
                log.warning(
                    "chasing %s: cannot plan (%s)", candidate.tracking_number, type(exc).__name__
                )
                continue
            summary.planned += len(steps)
            try:
                transient = await self._take(candidate, steps, summary, transient)
            except _StopRound:
                summary.stopped = True
                break
            except Exception as exc:  # e.g. the outbox disk: this case waits, the round goes on
                summary.errors += 1
                log.warning(
                    "chasing %s: step failed (%s)", candidate.tracking_number, type(exc).__name__
                )
        return summary

    async def _load(self) -> list[ChaseCandidate]:
        source = self.candidates
        if inspect.iscoroutinefunction(source):
            return list(await source())
        result = cast(
            "list[ChaseCandidate] | Awaitable[list[ChaseCandidate]]",
            await asyncio.to_thread(source),
        )
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            return list(await result)
        return list(result)

    def _forget_seen(self, candidates: list[ChaseCandidate]) -> None:
        """Drop remembered ids the source now shows, and cases it no longer lists."""
        current = {c.case_id: c.event_ids for c in candidates}
        for case_id in list(self._recorded):
            if case_id not in current:
                del self._recorded[case_id]
            else:
                self._recorded[case_id] -= current[case_id]

    async def _take(
        self,
        candidate: ChaseCandidate,
        steps: list[ChaseStep],
        summary: ChaseSummary,
        transient: int,
    ) -> int:
        """Mail and record ``steps`` of one case; returns the run of transient failures."""
        done = self._recorded.get(candidate.case_id, set())
        for step in steps:
            if step.event_id in done:
                continue
            if transient >= self.settings.max_transient_failures:
                summary.deferred += 1
                raise _StopRound
            try:
                event = await self._mail(candidate, step, summary)
            except MailError as exc:  # transient: _mail records permanent failures
                summary.deferred += 1
                log.warning(
                    "chasing %s: %s e-mail to level %s deferred: %s",
                    candidate.tracking_number,
                    step.kind.value,
                    step.level,
                    mask_personal_data(str(exc)),
                )
                return transient + 1
            transient = 0
            await self._record(event, summary)
        return transient

    async def _record(self, event: CaseEvent, summary: ChaseSummary) -> None:
        """Emit ``event``; when that fails keep it for the next round and stop this one."""
        try:
            await self.emit(event)
        except Exception as exc:
            self._unrecorded[event.event_id] = event
            summary.errors += 1
            log.error(
                "chasing %s: recording the %s step failed (%s); the round stops",
                event.tracking_number,
                event.kind.value,
                type(exc).__name__,
            )
            raise _StopRound from exc
        self._unrecorded.pop(event.event_id, None)
        self._recorded.setdefault(event.case_id, set()).add(event.event_id)
        summary.recorded += 1

    async def _mail(
        self, candidate: ChaseCandidate, step: ChaseStep, summary: ChaseSummary
    ) -> CaseEvent:
        """Send the step's e-mail; the event to record. Raises transient :class:`MailError`."""
        where = f"{candidate.tracking_number} ({step.kind.value}, unit {candidate.unit})"
        if step.email is None:
            summary.undelivered += 1
            log.warning("chasing %s: no address for level %s", where, step.level)
            return step.event
        try:
            await self.mailer.send_async(step.email)
        except MailError as exc:
            if not exc.permanent:
                raise
            summary.undelivered += 1
            reason = mask_personal_data(str(exc))
            log.warning("chasing %s: e-mail to level %s refused: %s", where, step.level, reason)
            return step.failed(reason)
        summary.sent += 1
        log.info("chasing %s: e-mail sent to level %s", where, step.level)
        return step.event
