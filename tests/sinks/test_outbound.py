"""The replier's decisions, on a real SQLite case store with recording senders."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.publisher import MemoryPublisher
from infra.settings import Settings
from schemas.case import CaseEvent, CaseEventKind
from schemas.common import Channel
from schemas.work import ReplyRequest
from sinks.outbound import Replier
from sinks.replies.base import SendError, SendResult
from sinks.store import CaseStore
from sinks.store.callbacks import CallbackStatus
from sinks.store.replies import ReplyStatus

CASE = "153-AB12C-D34E5F"


class Recording:
    """A sender that records requests and answers from a script (results or errors)."""

    def __init__(self, channel: Channel, *script: SendResult | SendError) -> None:
        self.channel = channel
        self.script = list(script)
        self.sent: list[ReplyRequest] = []

    async def send(self, request: ReplyRequest) -> SendResult:
        self.sent.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, SendError):
            raise step
        return step

    async def close(self) -> None:
        pass


def _request(channel: Channel, recipient: str, reply_id: str = "r-1") -> ReplyRequest:
    return ReplyRequest(
        reply_id=reply_id,
        case_id=CASE,
        channel=channel,
        recipient=recipient,
        text=f"{CASE} numaralı başvurunuz yanıtlanmıştır.",
        tracking_number=CASE,
        kind="answer",
    )


def _settings() -> Settings:
    return Settings(_env_file=None, replies={"attempts": 3, "backoff_initial_s": 0.0})


async def _events(publisher: MemoryPublisher) -> list[CaseEvent]:
    return [CaseEvent.from_bytes(r.value) for r in publisher.records if r.topic == "intake.cases"]


async def test_sent_once_even_when_the_request_comes_again(store: CaseStore) -> None:
    mail = Recording(Channel.EMAIL, SendResult(provider_id="<m1@adana>", mode="email"))
    publisher = MemoryPublisher()
    await publisher.start()
    replier = Replier(store, {Channel.EMAIL: mail}, publisher, _settings())
    request = _request(Channel.EMAIL, "ayse@example.com")
    event = await replier.settle(request)
    assert event is not None and event.kind is CaseEventKind.REPLIED
    assert await replier.settle(request) is None  # redelivered after a crash: not sent again
    assert len(mail.sent) == 1
    (logged,) = store.replies_for(CASE)
    assert logged.status is ReplyStatus.SENT and logged.provider_id == "<m1@adana>"
    assert [e.kind for e in await _events(publisher)] == [
        CaseEventKind.REPLIED,
        CaseEventKind.CLOSED,  # the answer reached the citizen
    ]


async def test_transient_errors_are_retried_and_a_permanent_one_is_recorded(
    store: CaseStore,
) -> None:
    flaky = Recording(
        Channel.WHATSAPP,
        SendError("Twilio 503", permanent=False),
        SendResult(provider_id="SM1", mode="free-form"),
    )
    refused = Recording(Channel.TWITTER, SendError("X 403 forbidden", permanent=True))
    publisher = MemoryPublisher()
    await publisher.start()
    senders = {Channel.WHATSAPP: flaky, Channel.TWITTER: refused}
    replier = Replier(store, senders, publisher, _settings())
    ok = await replier.settle(_request(Channel.WHATSAPP, "+905321112233", "r-wa"))
    failed = await replier.settle(_request(Channel.TWITTER, "@ayse", "r-x"))
    assert ok is not None and ok.kind is CaseEventKind.REPLIED and len(flaky.sent) == 2
    kinds = [e.kind for e in await _events(publisher)]
    assert kinds == [CaseEventKind.REPLIED, CaseEventKind.CLOSED, CaseEventKind.REPLY_FAILED]
    assert failed is not None and failed.kind is CaseEventKind.REPLY_FAILED
    assert len(refused.sent) == 1  # permanent: not retried
    statuses = {r.reply_id: r.status for r in store.replies_for(CASE)}
    assert statuses == {"r-wa": ReplyStatus.SENT, "r-x": ReplyStatus.FAILED}
    assert store.failed_replies()[0].reply_id == "r-x"  # visible to staff


async def test_a_channel_without_a_sender_fails_visibly(store: CaseStore) -> None:
    publisher = MemoryPublisher()
    await publisher.start()
    replier = Replier(store, {}, publisher, _settings())
    event = await replier.settle(_request(Channel.TWITTER, "@ayse"))
    assert event is not None and event.kind is CaseEventKind.REPLY_FAILED
    assert event.note is not None and "twitter" in event.note


async def test_a_phone_reply_becomes_a_callback_for_the_operators(store: CaseStore) -> None:
    publisher = MemoryPublisher()
    await publisher.start()
    replier = Replier(store, {}, publisher, _settings())
    request = _request(Channel.CALLS, "+903221234567", "r-call")
    event = await replier.settle(request)
    assert event is not None and event.kind is CaseEventKind.REPLIED
    (callback,) = store.list_callbacks(CallbackStatus.OPEN)
    assert callback.phone == "+903221234567" and callback.case_id == CASE
    assert await replier.settle(request) is None  # handed over once
    assert len(store.list_callbacks(None)) == 1
    done = store.complete_callback("r-call", "op-1532", "vatandaş memnun")
    assert done.status is CallbackStatus.DONE and store.list_callbacks() == []
    assert datetime.now(UTC) >= done.created_at


async def test_a_bad_reply_request_is_dead_lettered_with_its_bytes(store: CaseStore) -> None:
    from aiokafka import ConsumerRecord

    from sinks.outbound import _one

    publisher = MemoryPublisher()
    await publisher.start()
    replier = Replier(store, {}, publisher, _settings())
    bad = b'{"reply_id": "r-9", "channel": "fax"}'
    record = ConsumerRecord(
        topic="intake.replies",
        partition=1,
        offset=42,
        timestamp=0,
        timestamp_type=0,
        key=b"r-9",
        value=bad,
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=len(bad),
        headers=[],
    )
    await _one(record, replier, publisher)  # no exception: the loop goes on
    (dead,) = publisher.records
    headers = dict(dead.headers)
    assert dead.topic == "intake.deadletter" and dead.value == bad and dead.key == "r-9"
    assert headers["__intake.errors.stage"] == b"reply"
    assert headers["__intake.errors.offset"] == b"42"
    assert store.replies_for("r-9") == []
