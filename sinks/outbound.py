"""``intake outbound``: what leaves the product for people — replies and reminders.

Two loops in one process, both writing their steps to ``intake.cases`` so that the case
store keeps them in each case's history:

* the **replier** consumes ``intake.replies`` (its own consumer group, offsets committed
  by hand after each request is settled). A request already sent (case store's reply log)
  is skipped, so a redelivery after a crash does not message the citizen twice. A phone
  reply becomes a callback task for the feedback operators. Other channels go through
  their sender with retries and backoff; the outcome is logged in the case store and
  recorded as a ``replied`` or ``reply-failed`` event; the first answer that reaches a
  citizen also closes the case (``closed``). A payload that is not a
  ``ReplyRequest`` goes to the dead-letter topic with the reason; the loop goes on.
* the **chaser** (``streams.chasing``) reminds units before a deadline and escalates after
  it, on the configured ladder, by e-mail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from connectors.publisher import KafkaPublisher, Publisher
from connectors.state import OutRecord
from infra.settings import Settings
from schemas.case import CaseEvent, CaseEventKind
from schemas.common import Channel, utc_now
from schemas.deadletter import error_headers
from schemas.ids import case_event_id
from schemas.registry import DEADLETTER_TOPIC
from schemas.work import ReplyRequest
from sinks.blobstore import BlobStore
from sinks.mail import SmtpMailer
from sinks.replies.base import ReplySender, SendError, SendResult
from sinks.replies.retry import SendOutcome, outcome_event, send_with_retry
from sinks.replies.wiring import build_senders
from sinks.store import CaseStore
from sinks.store.replies import ReplyStatus
from streams.chasing import Chaser, candidate_from
from streams.deadlines import WorkingCalendar
from streams.pii import mask_personal_data

__all__ = ["Replier", "run"]

log = logging.getLogger(__name__)

REPLIES_TOPIC = "intake.replies"
CASES_TOPIC = "intake.cases"
_JSON = (("content-type", b"application/json"),)


class Replier:
    """Settles one ``ReplyRequest`` at a time (no Kafka in here: see :func:`run`)."""

    def __init__(
        self,
        store: CaseStore,
        senders: dict[Channel, ReplySender],
        publisher: Publisher,
        settings: Settings,
    ) -> None:
        self.store = store
        self.senders = senders
        self.publisher = publisher
        self.settings = settings

    async def settle(self, request: ReplyRequest) -> CaseEvent | None:
        """Send (or hand over) ``request`` unless it was already; returns the event recorded."""
        done = await asyncio.to_thread(self.store.sent_reply_ids, [request.reply_id])
        if request.reply_id in done:
            log.info("reply %s of %s already settled: skipped", request.reply_id, request.case_id)
            return None
        if request.channel is Channel.CALLS:
            outcome = await self._callback(request)
        else:
            outcome = await self._send(request)
        status = (
            ReplyStatus.CALLBACK
            if outcome.ok and request.channel is Channel.CALLS
            else ReplyStatus.SENT
            if outcome.ok
            else ReplyStatus.FAILED
        )
        result = outcome.result
        await asyncio.to_thread(
            self.store.record_reply,
            request,
            status,
            provider_id=result.provider_id if result else None,
            attempts=outcome.attempts,
            error=str(outcome.error) if outcome.error else None,
        )
        tracking = request.tracking_number or request.case_id
        now = utc_now()
        event = outcome_event(request, outcome, now, tracking_number=tracking)
        events = [event]
        if outcome.ok and request.kind == "answer":
            # The answer reached a citizen: the case is closed (once, whichever reporter).
            events.append(
                CaseEvent(
                    event_id=case_event_id(request.case_id, CaseEventKind.CLOSED),
                    case_id=request.case_id,
                    tracking_number=tracking,
                    kind=CaseEventKind.CLOSED,
                    at=now,
                    note=f"yanıt vatandaşa iletildi ({request.channel.value})",
                )
            )
        await self.publisher.publish_many(
            [OutRecord(CASES_TOPIC, e.case_id, e.to_bytes(), _JSON) for e in events]
        )
        return event

    async def _send(self, request: ReplyRequest) -> SendOutcome:
        sender = self.senders.get(request.channel)
        if sender is None:
            error = SendError(
                f"no sender configured for the {request.channel.value} channel", permanent=True
            )
            return SendOutcome(None, error, 0)
        r = self.settings.replies
        return await send_with_retry(
            sender,
            request,
            attempts=r.attempts,
            backoff_initial_s=r.backoff_initial_s,
            backoff_max_s=r.backoff_max_s,
        )

    async def _callback(self, request: ReplyRequest) -> SendOutcome:
        added = await asyncio.to_thread(self.store.add_callback, request)
        note = "operatör listesinde" + ("" if added else " (zaten vardı)")
        return SendOutcome(SendResult(provider_id=note, mode="callback"), None, 1)


async def _dead_letter(
    publisher: KafkaPublisher, record: ConsumerRecord[Any, Any], exc: Exception
) -> None:
    headers = error_headers(
        stage="reply",
        exc=exc,
        message=mask_personal_data(str(exc))[:1000],
        at=utc_now(),
        retriable=False,
        attempts=1,
        source={"topic": record.topic, "partition": record.partition, "offset": record.offset},
    )
    key = record.key.decode("utf-8", "replace") if record.key else None
    await publisher.publish_many(
        [OutRecord(DEADLETTER_TOPIC, key, record.value or b"", tuple(headers))]
    )


async def _reply_loop(
    settings: Settings, replier: Replier, publisher: KafkaPublisher, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        REPLIES_TOPIC,
        **settings.kafka.client_options(),  # type: ignore[arg-type]
        group_id=f"{settings.worker.app_id}-replies",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=50,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    await _one(record, replier, publisher)
                    # Settled (sent, handed over, failed for good or dead-lettered): commit.
                    await consumer.commit(
                        {TopicPartition(tp.topic, tp.partition): record.offset + 1}
                    )
    finally:
        await consumer.stop()


async def _one(
    record: ConsumerRecord[Any, Any], replier: Replier, publisher: KafkaPublisher
) -> None:
    try:
        request = ReplyRequest.from_bytes(record.value or b"")
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        log.error(
            "intake.replies[%d]@%d is not a reply request: dead-lettered",
            record.partition,
            record.offset,
        )
        await _dead_letter(publisher, record, exc)
        return
    await replier.settle(request)


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """Run the replier and the chaser until ``stop`` is set."""
    store = CaseStore(settings.database_url)
    await asyncio.to_thread(store.migrate)
    blobs = BlobStore(settings.blob_dir, settings.blobs.max_bytes)
    mailer = SmtpMailer(settings.mail, settings.data_dir / "outbox")
    senders = build_senders(
        settings.replies,
        twilio=settings.connectors.whatsapp,
        twitter=settings.connectors.twitter,
        mailer=mailer,
        blobs=blobs,
        public_base_url=settings.public_base_url,
    )
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    await publisher.start()
    replier = Replier(store, senders, publisher, settings)

    def candidates() -> list[Any]:
        records = store.open_cases_with_due()
        ids = store.event_ids_of([r.case_id for r in records])
        return [candidate_from(r, ids.get(r.case_id, set())) for r in records]

    async def emit(event: CaseEvent) -> None:
        await publisher.publish(CASES_TOPIC, event.case_id, event.to_bytes(), headers=list(_JSON))

    chaser = Chaser(settings.chasing, WorkingCalendar(settings.deadlines), candidates, mailer, emit)
    tasks = [
        asyncio.create_task(_reply_loop(settings, replier, publisher, stop), name="replier"),
        asyncio.create_task(chaser.run_forever(stop), name="chaser"),
    ]
    log.info(
        "outbound ready: replies on %s, chaser every %ss",
        ", ".join(sorted(c.value for c in senders)) or "-",
        settings.chasing.interval_s,
    )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return 0
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sender in senders.values():
            await sender.close()
        await publisher.stop()
        store.close()
