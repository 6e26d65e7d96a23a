"""The agents: each decodes an event, calls plain functions, sends the results. Nothing else.

intake.raw.*     ─normalize─►  intake.messages
intake.messages  ─open_case─►  intake.cluster (created, normal urgency, keyed by unit|district),
                               else intake.cases (emergencies, follow-ups); classified in batches
intake.cluster   ─cluster──►  intake.cases (created for a new problem, attached for the same
                               citizen's or another citizen's report of it; duplicates dropped)
intake.cases     ─route────►  units.<unit> | districts.<ilce> | external.<body> (+ a notice on
                               intake.replies), intake.emergency, intake.review,
                               intake.cases (routed; answered for calls resolved on the line)
intake.cases     ─record───►  case store (batched, idempotent)
units.responses  ─answer───►  intake.cases (answered, extended, rerouted), intake.replies (an
                               answer to every reporter, with the before/after collage),
                               intake.review (a case a unit says is not theirs)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import faust
from faust.types import EventT

from schemas.case import CaseEvent, CaseEventKind, UnitResponse
from schemas.common import Contract, utc_now
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from sinks.store import CaseStore
from streams.answers import AnswerDesk
from streams.classify.classifier import Classifier
from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    case_event_for,
    cluster_key,
    fingerprints,
    needs_clustering,
)
from streams.cluster.state import cluster_step, declare_cluster_table
from streams.deadletter import EventGuard
from streams.deadlines import WorkingCalendar
from streams.normalize import normalize
from streams.routing import open_case, route_case
from streams.topics import Topics

__all__ = ["register_agents"]

log = logging.getLogger(__name__)
_JSON = {"content-type": b"application/json"}


def register_agents(
    app: faust.App,
    topics: Topics,
    guard: EventGuard,
    store: CaseStore | None,
    classifier: Classifier,
    cluster_settings: ClusterSettings,
    *,
    calendar: WorkingCalendar,
    desk: AnswerDesk | None,
    batch_size: int,
    batch_within_s: float,
) -> None:
    """Attach the pipeline's agents to ``app``. ``store`` None runs without the case store;
    ``desk`` None without the agent that handles units' answers (it needs the store)."""

    def each_event(
        stage: str, handler: Callable[[EventT[Any]], Awaitable[None]]
    ) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
        """An agent body that runs ``handler`` on every event through the guard."""

        async def agent(stream: faust.StreamT[Any]) -> None:
            async for event in stream.events():
                await guard.run(stage, event.message, partial(handler, event))

        return agent

    def in_batches(
        stage: str,
        model: type[Contract],
        handler: Callable[[list[Any]], Awaitable[None]],
        size: int,
        within_s: float,
    ) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
        """An agent body that decodes events in batches and hands them to ``handler`` at once;
        an undecodable event is dead-lettered, a failing batch is retried event by event."""

        async def agent(stream: faust.StreamT[Any]) -> None:
            # take_events is missing from faust's StreamT stub; it is on the Stream class.
            async for events in cast(Any, stream).take_events(size, within=within_s):
                decoded: list[tuple[EventT[Any], Any]] = []
                for event in events:
                    try:
                        decoded.append((event, model.from_bytes(event.value)))
                    except ValueError as exc:  # pydantic's ValidationError is a ValueError
                        await guard.dead_letter(stage, event.message, exc, 1)
                if not decoded:
                    continue
                values = [value for _, value in decoded]
                await guard.run_batch(
                    stage,
                    [event.message for event, _ in decoded],
                    partial(handler, values),
                    lambda i, values=values: handler([values[i]]),  # type: ignore[misc]
                )

        return agent

    async def _normalize(event: EventT[Any]) -> None:
        msg = normalize(RawEvent.from_bytes(event.value))
        await topics.messages.send(key=msg.message_id.encode(), value=msg.to_bytes(), headers=_JSON)

    async def _open_cases(msgs: list[CitizenMessage]) -> None:
        # One model call per batch: ~0.3 ms a message instead of ~1.7 ms one at a time.
        classifications = await asyncio.to_thread(classifier.classify_messages, msgs)
        for msg, classification in zip(msgs, classifications, strict=True):
            created = open_case(msg, classification)
            if needs_clustering(created):
                key = cluster_key(msg, classification, cluster_settings)
                await topics.cluster.send(key=key.encode(), value=created.to_bytes(), headers=_JSON)
            else:
                await topics.cases.send(
                    key=created.case_id.encode(), value=created.to_bytes(), headers=_JSON
                )

    window = declare_cluster_table(app)

    async def _cluster(event: EventT[Any]) -> None:
        created = CaseEvent.from_bytes(event.value)
        if created.message is None or created.classification is None:
            raise ValueError("a report to cluster needs its message and classification")
        candidate = fingerprints([(created.message, created.classification)], cluster_settings)

        async def emit(decision: Decision) -> None:
            step = case_event_for(created, decision)
            if step is not None:
                await topics.cases.send(
                    key=step.case_id.encode(), value=step.to_bytes(), headers=_JSON
                )

        key = cast(bytes, event.key).decode()
        await cluster_step(window, key, candidate[0], cluster_settings, utc_now(), emit)

    async def _route(event: EventT[Any]) -> None:
        case_event = CaseEvent.from_bytes(event.value)
        if case_event.kind is not CaseEventKind.CREATED:
            return
        routing = route_case(case_event, utc_now(), classifier.settings.review_threshold, calendar)
        key = case_event.case_id.encode()
        sends: list[tuple[str, bytes, Contract]] = [
            (topic, key, item) for topic, item in routing.work_items
        ]
        if routing.emergency is not None:
            sends.append(("intake.emergency", key, routing.emergency))
        if routing.review is not None:
            sends.append(("intake.review", key, routing.review))
        sends += [("intake.replies", n.reply_id.encode(), n) for n in routing.notices]
        sends += [("intake.cases", key, step) for step in routing.events]
        for topic, record_key, payload in sends:
            await topics.named(topic).send(key=record_key, value=payload.to_bytes(), headers=_JSON)

    async def _answer(event: EventT[Any]) -> None:
        assert desk is not None
        response = UnitResponse.from_bytes(event.value)
        outcome = await desk.handle(response)
        key = response.case_id.encode()
        for step in outcome.events:
            await topics.cases.send(key=key, value=step.to_bytes(), headers=_JSON)
        if outcome.review is not None:
            await topics.review.send(key=key, value=outcome.review.to_bytes(), headers=_JSON)
        for reply in outcome.replies:
            await topics.replies.send(
                key=reply.reply_id.encode(), value=reply.to_bytes(), headers=_JSON
            )

    async def _record(cases: list[CaseEvent]) -> None:
        assert store is not None
        await asyncio.to_thread(store.apply, cases)

    classify_size = classifier.settings.batch_size
    classify_within = classifier.settings.batch_within_s
    app.agent(topics.raw, name="normalize")(each_event("normalize", _normalize))
    app.agent(topics.messages, name="open_case")(
        in_batches("open_case", CitizenMessage, _open_cases, classify_size, classify_within)
    )
    # One event at a time per partition: each step reads, decides and writes back its key.
    app.agent(topics.cluster, name="cluster", concurrency=1)(each_event("cluster", _cluster))
    app.agent(topics.cases, name="route")(each_event("route", _route))
    if desk is not None:
        app.agent(topics.responses, name="answer")(each_event("answer", _answer))
    if store is not None:
        app.agent(topics.cases, name="record")(
            in_batches("record", CaseEvent, _record, batch_size, batch_within_s)
        )
