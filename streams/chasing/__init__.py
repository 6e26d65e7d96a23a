"""Chasing units that do not answer: a reminder before the due date, then an escalation ladder.

``plan_chase`` decides (pure: a case, a moment, the working calendar, the settings → steps);
``Chaser`` is the thin loop that asks for the open cases, sends each step's e-mail and records
it as a ``reminded`` / ``escalated`` case event. ``ChasingSettings`` is ``Settings.chasing``.
"""

from streams.chasing.chaser import CandidateSource, Chaser, ChaseSummary, Mailer, candidate_from
from streams.chasing.plan import MAIL_SENT, ChaseCandidate, ChaseStep, plan_chase, step_event_id
from streams.chasing.settings import ChasingSettings, LadderStep

__all__ = [
    "MAIL_SENT",
    "CandidateSource",
    "ChaseCandidate",
    "ChaseStep",
    "ChaseSummary",
    "Chaser",
    "ChasingSettings",
    "LadderStep",
    "Mailer",
    "candidate_from",
    "plan_chase",
    "step_event_id",
]
