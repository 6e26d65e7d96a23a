"""The WhatsApp intake: one webhook form in, one raw event durably stored, a tracking number out.

Twilio retries a webhook that did not get a 2xx, with the same ``MessageSid``, so the message
is recorded at most once: the provider ids ``Delivery`` saved (with the Kafka acknowledgement
or with the outbox row, in one transaction) answer "already stored", and a retry that arrives
while the first request is still downloading media waits for that request's outcome instead of
starting a second one. At start the tail of ``intake.raw.whatsapp`` is read, so a message
Kafka acknowledged just before a crash (and before the local save) is not published again.
One web process serves one state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from connectors.errors import ConnectorError, PublishFailed
from connectors.publisher import Publisher
from connectors.runtime import Delivery, alarm_record, raw_record, silence_alarm
from connectors.state import ConnectorState
from connectors.whatsapp.media import MediaFetcher, MediaResult, media_items
from infra.settings import KafkaSettings, Settings
from schemas.common import Channel, utc_now
from schemas.ids import message_id, tracking_number
from schemas.ops import ChannelAlarm
from schemas.raw import RawEvent
from schemas.registry import raw_topic
from sinks.blobstore import BlobStore

__all__ = [
    "NAME",
    "RECONCILE_WINDOW",
    "WATCH_INTERVAL_S",
    "Receipt",
    "WhatsAppIntake",
    "build_whatsapp_intake",
    "whatsapp_event",
    "whatsapp_tracking_number",
]

log = logging.getLogger(__name__)

#: The connector's name: its state file, health record and alarms.
NAME = "whatsapp"
#: How often the silence alarm is checked.
WATCH_INTERVAL_S = 60.0
#: Records per partition read back from the raw topic's tail at start.
RECONCILE_WINDOW = 10_000

Clock = Callable[[], datetime]


def whatsapp_tracking_number(message_sid: str) -> str:
    """The tracking number of the WhatsApp message with this ``MessageSid``."""
    return tracking_number(message_id(Channel.WHATSAPP.value, message_sid))


def whatsapp_event(
    form: Mapping[str, str | list[str]], received_at: datetime, media: Sequence[MediaResult] = ()
) -> RawEvent:
    """The raw event of one webhook form: every parameter as received, plus what became of
    each media item (``media``) and the items staff may have to ask for again
    (``media_failed``: index, content type, reason; never a URL or credentials)."""
    payload: dict[str, Any] = dict(form)
    payload["media"] = [result.as_payload() for result in media]
    payload["media_failed"] = [
        {"index": r.index, "content_type": r.content_type, "reason": r.reason}
        for r in media
        if r.ref is None
    ]
    return RawEvent(
        channel=Channel.WHATSAPP,
        provider_id=str(form["MessageSid"]),
        received_at=received_at,
        payload=payload,
        attachments=tuple(r.ref for r in media if r.ref is not None),
    )


@dataclass(frozen=True)
class Receipt:
    """The outcome of one webhook: the tracking number, and whether this request stored it."""

    message_sid: str
    tracking_number: str
    #: False when the message was stored before (a Twilio retry).
    stored: bool
    #: ``"kafka"`` or ``"outbox"`` when stored now.
    via: str | None = None
    media: tuple[MediaResult, ...] = ()


class WhatsAppIntake:
    """Records WhatsApp messages that Twilio's webhook delivers; runs the outbox relay and the
    silence alarm between ``start`` and ``stop``."""

    def __init__(
        self,
        settings: Settings,
        delivery: Delivery,
        blobs: BlobStore,
        *,
        http: httpx.AsyncClient | None = None,
        kafka: KafkaSettings | None = None,
        clock: Clock = utc_now,
        watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.twilio = settings.connectors.whatsapp
        self.delivery = delivery
        self.state: ConnectorState = delivery.state
        self.blobs = blobs
        self.http = http or httpx.AsyncClient()
        self.media = MediaFetcher(self.http, blobs, self.twilio)
        self.kafka = kafka
        self.clock = clock
        self.watch_interval_s = watch_interval_s
        self.started_at = clock()
        self._inflight: dict[str, asyncio.Future[Receipt]] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def configured(self) -> bool:
        """Whether the webhook accepts requests (an auth token is set)."""
        return self.twilio.configured

    @property
    def auth_token(self) -> str:
        """The account's auth token ('' when not configured)."""
        token = self.twilio.auth_token
        return token.get_secret_value() if token is not None else ""

    @property
    def public_url(self) -> str | None:
        """The URL Twilio calls: the webhook's own setting, else the web server's public URL."""
        return self.twilio.public_url or self.settings.web.public_url

    async def start(self) -> None:
        """Learn what the raw topic already holds, then start the relay and the silence watch."""
        self.started_at = self.clock()
        self._stop.clear()
        if self.kafka is not None and self.configured:
            try:
                topic = raw_topic(Channel.WHATSAPP)
                found = await self.delivery.reconcile(self.kafka, topic, RECONCILE_WINDOW)
                log.info("%s: %d message ids known from the raw topic", NAME, found)
            except PublishFailed as exc:
                log.warning("%s: could not read the raw topic (%s); continuing", NAME, exc)
        interval = self.settings.connectors.relay_interval_s
        self._tasks.append(asyncio.create_task(self.delivery.relay(interval, self._stop)))
        if self.configured:
            self._tasks.append(asyncio.create_task(self.watch(self._stop)))

    async def stop(self) -> None:
        """Stop the background tasks, close the HTTP client and the state file."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await self.http.aclose()
        self.state.close()

    async def receive(self, form: Mapping[str, str | list[str]]) -> Receipt:
        """Store the message of one (already authenticated) webhook form, once.

        Returns only after the raw event is acknowledged by Kafka or kept in the outbox.
        Raises ``ConnectorError``, ``OSError`` or ``sqlite3.Error`` when it could not be stored.
        """
        sid = str(form["MessageSid"])
        pending = self._inflight.get(sid)
        if pending is None:
            pending = asyncio.ensure_future(self._accept(sid, form))
            self._inflight[sid] = pending
            pending.add_done_callback(lambda done: self._forget(sid, done))
        # Shielded: a caller that goes away (Twilio's timeout) does not abort the storing.
        return await asyncio.shield(pending)

    def _forget(self, sid: str, done: asyncio.Future[Receipt]) -> None:
        if self._inflight.get(sid) is done:
            del self._inflight[sid]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have gone

    async def _accept(self, sid: str, form: Mapping[str, str | list[str]]) -> Receipt:
        tracking = whatsapp_tracking_number(sid)
        if await asyncio.to_thread(self.state.already_published, [sid]):
            log.info("%s: repeat of %s (tracking %s), nothing new stored", NAME, sid, tracking)
            return Receipt(sid, tracking, stored=False)
        received_at = self.clock()
        items = media_items(form)
        results = await self.media.fetch_all(items, self._media_auth(form), sid) if items else []
        event = whatsapp_event(form, received_at, results)
        via = await self.delivery.deliver([raw_record(event)])
        now = self.clock()
        await asyncio.to_thread(self.state.mark, NAME, success_at=now, message_at=now)
        failed = sum(1 for r in results if r.ref is None)
        log.info(
            "%s: stored %s (tracking %s) via %s, media %d stored / %d not",
            NAME,
            sid,
            tracking,
            via,
            len(results) - failed,
            failed,
        )
        return Receipt(sid, tracking, stored=True, via=via, media=tuple(results))

    def _media_auth(self, form: Mapping[str, str | list[str]]) -> tuple[str, str] | None:
        """HTTP Basic credentials for media: the configured account, else the form's."""
        account = self.twilio.account_sid or form.get("AccountSid")
        if not isinstance(account, str) or not account:
            return None
        return account, self.auth_token

    async def check_silence(self) -> ChannelAlarm | None:
        """Raise (deliver) the silence alarm when no message came for too long."""
        threshold = timedelta(seconds=self.settings.connectors.silence_alarm_after_s)
        now = self.clock()
        alarm = silence_alarm(NAME, Channel.WHATSAPP, self.state, threshold, now, self.started_at)
        if alarm is not None:
            log.warning("%s", alarm.message)
            await self.delivery.deliver([alarm_record(alarm)])
            await asyncio.to_thread(self.state.mark, NAME, alarm_at=now)
        return alarm

    async def watch(self, stop: asyncio.Event) -> None:
        """Check the silence alarm every ``watch_interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.check_silence()
            except (ConnectorError, OSError, sqlite3.Error) as exc:
                log.warning("%s: silence check failed: %s: %s", NAME, type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.watch_interval_s)


def build_whatsapp_intake(settings: Settings, publisher: Publisher) -> WhatsAppIntake:
    """The production wiring: state in ``<connector_state_dir>/whatsapp.sqlite3``, the blob
    store under the data directory, and the raw topic's tail read at start."""
    state = ConnectorState(settings.connector_state_dir / f"{NAME}.sqlite3")
    blobs = BlobStore(settings.blob_dir, settings.blobs.max_bytes)
    return WhatsAppIntake(settings, Delivery(NAME, publisher, state), blobs, kafka=settings.kafka)
