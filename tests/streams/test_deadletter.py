from dataclasses import dataclass, field

from pydantic import BaseModel

from sinks.errors import StoreUnavailable
from streams.deadletter import EventGuard


@dataclass
class Record:
    topic: str = "intake.raw.api"
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"k"
    value: bytes | None = b"{broken"
    headers: list = field(default_factory=lambda: [("traceparent", b"00-abc")])


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    async def __call__(self, key, value, headers) -> None:
        self.records.append((key, value, dict(headers)))


async def test_bad_payload_goes_to_deadletter_with_headers() -> None:
    sent = Sent()
    guard = EventGuard(sent, attempts=3, backoff_s=0)

    class Model(BaseModel):
        x: int

    async def handler() -> None:
        Model.model_validate_json(b"{broken")

    assert await guard.run("normalize", Record(), handler) is False
    ((key, value, headers),) = sent.records
    assert (key, value) == (b"k", b"{broken")
    assert headers["__intake.errors.topic"] == b"intake.raw.api"
    assert headers["__intake.errors.partition"] == b"2"
    assert headers["__intake.errors.offset"] == b"41"
    assert headers["__intake.errors.stage"] == b"normalize"
    assert headers["__intake.errors.exception.class"].endswith(b"ValidationError")
    assert headers["__intake.errors.attempts"] == b"1"  # bad data is not retried
    assert headers["traceparent"] == b"00-abc"


async def test_retriable_error_is_retried_then_succeeds() -> None:
    sent = Sent()
    calls = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise StoreUnavailable("database restarting")

    assert await EventGuard(sent, attempts=3, backoff_s=0).run("record", Record(), flaky)
    assert len(calls) == 3 and sent.records == []


async def test_retriable_error_that_persists_is_dead_lettered_after_attempts() -> None:
    sent = Sent()

    async def down() -> None:
        raise ConnectionError("refused 0532 123 45 67")

    assert not await EventGuard(sent, attempts=2, backoff_s=0).run("record", Record(), down)
    headers = sent.records[0][2]
    assert headers["__intake.errors.attempts"] == b"3"
    assert headers["__intake.errors.retriable"] == b"true"
    assert b"123 45" not in headers["__intake.errors.exception.message"]  # masked


async def test_batch_failure_isolates_the_bad_record() -> None:
    sent = Sent()
    records = [Record(offset=i, key=f"k{i}".encode()) for i in range(4)]
    applied: list[int] = []

    async def batch() -> None:
        raise ValueError("row 2 violates a constraint")

    async def single(i: int) -> None:
        if i == 2:
            raise ValueError("row 2 violates a constraint")
        applied.append(i)

    await EventGuard(sent, attempts=1, backoff_s=0).run_batch("record", records, batch, single)
    assert applied == [0, 1, 3]
    assert [r[0] for r in sent.records] == [b"k2"]
