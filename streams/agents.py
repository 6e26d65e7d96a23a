"""The agents: each decodes events, calls plain functions, sends the results. Nothing else.

intake.raw.*     ─intake───►  intake.messages (the normalized message, for the contract) and:
                              normal urgency → intake.cluster (keyed by unit|district);
                              else (emergencies, follow-ups) → intake.cases, routed at once.
                              Normalized and classified in batches.
intake.cluster   ─cluster──►  a new problem: intake.cases (created), routed at once;
                              the same citizen's or another citizen's report of a known problem:
                              intake.cases (attached); the same provider message again: nothing
routing          ─────────►  units.<unit> | districts.<ilce> | external.<body> (+ a notice on
                              intake.replies), intake.emergency, intake.review, intake.cases
                              (routed, with the due date; answered for calls resolved on the line)
units.responses  ─answer───►  intake.cases (answered, extended, rerouted), intake.replies (an
                              answer to every reporter, with the before/after collage),
                              intake.review (a case a unit says is not theirs)

``intake.cases`` is written to the case store by its own process (``intake record``,
:mod:`sinks.recorder`): the store's SQL does not compete with the hot path for the GIL.

Routing happens in the agent that decides a case is new, not in a consumer of intake.cases:
one Kafka hop less per report, and the created event is still written before its routed ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import faust
from faust.types import EventT, TopicT

from schemas.case import CaseEvent, CaseEventKind, UnitResponse
from schemas.common import Contract, utc_now
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.answers import AnswerDesk
from streams.classify.classifier import Classifier
from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    Fingerprint,
    case_event_for,
    cluster_key,
    fingerprints,
    needs_clustering,
)
from streams.cluster.state import (
    ClusterWindow,
    declare_cluster_table,
    decode_fingerprint,
    encode_fingerprint,
    source_of,
)
from streams.deadletter import EventGuard
from streams.deadlines import WorkingCalendar
from streams.faust_tuning import header_pairs, send_raw
from streams.normalize import normalize
from streams.routing import open_case, route_case
from streams.topics import Topics

__all__ = ["register_agents"]

log = logging.getLogger(__name__)
_JSON = {"content-type": b"application/json"}
#: On ``intake.cluster``: the report's fingerprint, computed in the intake agent's batch.
FINGERPRINT_HEADER = "intake.fingerprint"


def register_agents(
    app: faust.App,
    topics: Topics,
    guard: EventGuard,
    classifier: Classifier,
    cluster_settings: ClusterSettings,
    *,
    calendar: WorkingCalendar,
    desk: AnswerDesk | None,
) -> None:
    """Attach the pipeline's agents to ``app``. ``desk`` None runs without the agent that
    handles units' answers (it reads the case store). The case store itself is written by
    its own process (``intake record``, :mod:`sinks.recorder`), not by the worker."""

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
        prepare: Callable[[EventT[Any]], Any],
        handler: Callable[[list[Any]], Awaitable[None]],
        size: int,
        within_s: float,
    ) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
        """An agent body that prepares (decodes) events one by one and hands them to
        ``handler`` in batches; an event that cannot be prepared is dead-lettered, a failing
        batch is retried event by event."""

        async def agent(stream: faust.StreamT[Any]) -> None:
            # take_events is missing from faust's StreamT stub; it is on the Stream class.
            async for events in cast(Any, stream).take_events(size, within=within_s):
                decoded: list[tuple[EventT[Any], Any]] = []
                for event in events:
                    try:
                        decoded.append((event, prepare(event)))
                    except Exception as exc:  # bad bytes or a message no normalizer takes
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

    async def send(topic: TopicT, key: str, payload: Contract) -> None:
        await send_raw(topic, key.encode(), payload.to_bytes(), _JSON)

    async def send_case(created: CaseEvent, encoded: bytes | None = None) -> None:
        """Write a new case's event (``encoded``: its bytes, when already at hand), then
        everything routing it produces."""
        value = encoded if encoded is not None else created.to_bytes()
        await send_raw(topics.cases, created.case_id.encode(), value, _JSON)
        if created.kind is not CaseEventKind.CREATED:
            return  # a follow-up joins its case; nothing to route
        routing = route_case(created, utc_now(), classifier.settings.review_threshold, calendar)
        key = created.case_id
        for topic, item in routing.work_items:
            await send(topics.named(topic), key, item)
        if routing.emergency is not None:
            await send(topics.emergency, key, routing.emergency)
        if routing.review is not None:
            await send(topics.review, key, routing.review)
        for notice in routing.notices:
            await send(topics.replies, notice.reply_id, notice)
        for step in routing.events:
            await send(topics.cases, key, step)

    def _normalize(event: EventT[Any]) -> CitizenMessage:
        return normalize(RawEvent.from_bytes(event.value))

    async def _intake(msgs: list[CitizenMessage]) -> None:
        # One model call per batch: ~0.1 ms a message in batches of 256, ~0.2 ms alone. On
        # the event loop: in a thread it only fought the loop for the GIL (bench: 9 % fewer
        # events/s); a full batch holds the loop ~25 ms, a trickle's batch well under 1 ms.
        classifications = classifier.classify_messages(msgs)
        opened = [open_case(m, c) for m, c in zip(msgs, classifications, strict=True)]
        # Fingerprints of the reports to cluster, in one batch; they travel in a header so
        # the cluster agent (one event at a time) does not compute them one by one.
        clustered = [i for i, created in enumerate(opened) if needs_clustering(created)]
        prints = dict(
            zip(
                clustered,
                fingerprints([(msgs[i], classifications[i]) for i in clustered], cluster_settings),
                strict=True,
            )
        )
        for i, (msg, created) in enumerate(zip(msgs, opened, strict=True)):
            await send(topics.messages, msg.message_id, msg)
            fp = prints.get(i)
            if fp is None:
                await send_case(created)
                continue
            key = cluster_key(msg, classifications[i], cluster_settings)
            headers = {**_JSON, FINGERPRINT_HEADER: encode_fingerprint(fp)}
            await send_raw(topics.cluster, key.encode(), created.to_bytes(), headers)

    window = ClusterWindow(declare_cluster_table(app), cluster_settings)

    async def _cluster(event: EventT[Any]) -> None:
        created = CaseEvent.from_bytes(event.value)
        if created.message is None or created.classification is None:
            raise ValueError("a report to cluster needs its message and classification")
        candidate = _carried(event, created.message.message_id)
        if candidate is None:  # written by an older worker, or damaged: compute it here
            pair = (created.message, created.classification)
            candidate = fingerprints([pair], cluster_settings)[0]

        async def emit(decision: Decision) -> None:
            step = case_event_for(created, decision)
            if step is not None:  # a new case is the created event as it came: not re-encoded
                await send_case(step, event.value if step is created else None)

        key = cast(bytes, event.key).decode()
        await window.step(key, candidate, utc_now(), emit, source_of(event.message))

    def _carried(event: EventT[Any], message_id: str) -> Fingerprint | None:
        """The fingerprint the intake agent computed for this report, if it is usable."""
        pairs = header_pairs(event.headers)
        data = next((v for k, v in pairs if k == FINGERPRINT_HEADER), None)
        if not data:
            return None
        try:
            fp = decode_fingerprint(data)
        except (ValueError, TypeError):
            return None
        usable = len(fp.signature) in (0, 2 * cluster_settings.num_perm)
        return fp if fp.message_id == message_id and usable else None

    async def _answer(event: EventT[Any]) -> None:
        assert desk is not None
        response = UnitResponse.from_bytes(event.value)
        outcome = await desk.handle(response)
        key = response.case_id.encode()
        for step in outcome.events:
            await send_raw(topics.cases, key, step.to_bytes(), _JSON)
        if outcome.review is not None:
            await send_raw(topics.review, key, outcome.review.to_bytes(), _JSON)
        for reply in outcome.replies:
            await send_raw(topics.replies, reply.reply_id.encode(), reply.to_bytes(), _JSON)

    classify_size = classifier.settings.batch_size
    classify_within = classifier.settings.batch_within_s
    app.agent(topics.raw, name="intake")(
        in_batches("intake", _normalize, _intake, classify_size, classify_within)
    )
    # One event at a time per partition: each step reads, decides and writes back its key.
    app.agent(topics.cluster, name="cluster", concurrency=1)(each_event("cluster", _cluster))
    if desk is not None:
        app.agent(topics.responses, name="answer")(each_event("answer", _answer))
