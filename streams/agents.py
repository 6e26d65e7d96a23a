"""The agents: each decodes an event, calls plain functions, sends the results. Nothing else.

intake.raw.*     ─normalize─►  intake.messages
intake.messages  ─open_case─►  intake.cases (created; attached for a citizen's follow-up)
intake.cases     ─route────►  units.<unit> (+ intake.review for public posts)
                                + intake.cases (routed; answered for calls resolved on the line)
intake.cases     ─record───►  case store (batched, idempotent)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import faust
from faust.types import EventT

from schemas.case import CaseEvent, CaseEventKind
from schemas.common import utc_now
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from sinks.store import CaseStore
from streams.deadletter import EventGuard
from streams.normalize import normalize
from streams.routing import classify_placeholder, open_case, route_case
from streams.topics import Topics

__all__ = ["register_agents"]

log = logging.getLogger(__name__)
_JSON = {"content-type": b"application/json"}


def register_agents(
    app: faust.App,
    topics: Topics,
    guard: EventGuard,
    store: CaseStore | None,
    *,
    batch_size: int,
    batch_within_s: float,
) -> None:
    """Attach the pipeline's agents to ``app``. ``store`` None runs without the case store."""

    def each_event(
        stage: str, handler: Callable[[EventT[Any]], Awaitable[None]]
    ) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
        """An agent body that runs ``handler`` on every event through the guard."""

        async def agent(stream: faust.StreamT[Any]) -> None:
            async for event in stream.events():
                await guard.run(stage, event.message, partial(handler, event))

        return agent

    async def _normalize(event: EventT[Any]) -> None:
        msg = normalize(RawEvent.from_bytes(event.value))
        await topics.messages.send(key=msg.message_id.encode(), value=msg.to_bytes(), headers=_JSON)

    async def _open_case(event: EventT[Any]) -> None:
        msg = CitizenMessage.from_bytes(event.value)
        created = open_case(msg, classify_placeholder(msg))
        await topics.cases.send(
            key=created.case_id.encode(), value=created.to_bytes(), headers=_JSON
        )

    async def _route(event: EventT[Any]) -> None:
        case_event = CaseEvent.from_bytes(event.value)
        if case_event.kind is not CaseEventKind.CREATED:
            return
        routing = route_case(case_event, utc_now())
        key = case_event.case_id.encode()
        if routing.work_item is not None:
            item = routing.work_item
            await topics.units[item.unit].send(key=key, value=item.to_bytes(), headers=_JSON)
        if routing.review is not None:
            await topics.review.send(key=key, value=routing.review.to_bytes(), headers=_JSON)
        for step in routing.events:
            await topics.cases.send(key=key, value=step.to_bytes(), headers=_JSON)

    app.agent(topics.raw, name="normalize")(each_event("normalize", _normalize))
    app.agent(topics.messages, name="open_case")(each_event("open_case", _open_case))
    app.agent(topics.cases, name="route")(each_event("route", _route))

    if store is None:
        return

    @app.agent(topics.cases, name="record")
    async def record_agent(stream: faust.StreamT[Any]) -> None:
        # take_events is missing from faust's StreamT stub; it is on the Stream class.
        batches = cast(Any, stream).take_events(batch_size, within=batch_within_s)
        async for events in batches:
            await _record(events)

    async def _record(events: list[EventT[Any]]) -> None:
        decoded: list[tuple[EventT[Any], CaseEvent]] = []
        for event in events:
            try:
                decoded.append((event, CaseEvent.from_bytes(event.value)))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                await guard.dead_letter("record", event.message, exc, 1)
        if not decoded:
            return
        assert store is not None
        await guard.run_batch(
            "record",
            [event.message for event, _ in decoded],
            lambda: asyncio.to_thread(store.apply, [case for _, case in decoded]),
            lambda i: asyncio.to_thread(store.apply, [decoded[i][1]]),
        )
