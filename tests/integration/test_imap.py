"""The IMAP connector against a real Dovecot: in-process with the in-memory publisher (cursor,
UIDVALIDITY re-scan, move, IDLE), and ``intake connector imap`` as a process with the real
broker (exactly once across a SIGKILL, a refused login, a dead-lettered mail)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.imap import ImapConnector
from connectors.mail.session import ImapSession
from connectors.publisher import MemoryPublisher
from connectors.runtime import EXIT_CONFIG, Delivery, Runner
from connectors.state import ConnectorState
from infra.settings import ConnectorSettings, ImapSettings
from schemas.common import utc_now
from schemas.deadletter import HEADER_PREFIX
from schemas.raw import RawEvent
from sinks.blobstore import BlobStore
from tests.connectors.test_mail_parse import (
    NOT_A_MAIL,
    PDF,
    PNG,
    TURKISH,
    alternative_mail,
    attachment_mail,
    cp1254_mail,
    html_only_mail,
    inline_image_mail,
    iso88599_mail,
    malformed_mime_mail,
)
from tests.integration.dovecot import DovecotServer, dovecot
from tests.integration.kafka_io import read_until
from tests.integration.services import Proc, ProductEnv, wait_until

__all__ = ["dovecot"]  # the session fixture, imported so that pytest finds it

pytestmark = pytest.mark.integration

RAW = "intake.raw.email"
DEAD = "intake.deadletter"
FLAG = "$Alo153Islendi"


def _ids(n: int, tag: str) -> list[str]:
    run = uuid.uuid4().hex[:10]
    return [f"{tag}-{i}-{run}@citizen.test" for i in range(n)]


def _settings(server: DovecotServer, mailbox: str, **extra: Any) -> ImapSettings:
    values: dict[str, Any] = {"poll_interval_s": 0.5, "idle_timeout_s": 5, **extra}
    return ImapSettings(
        host=server.host,
        port=server.port,
        ssl=False,
        username=server.user,
        password=server.password,
        mailbox=mailbox,
        **values,
    )


def _flags(server: DovecotServer, mailbox: str) -> dict[int, tuple[bytes, ...]]:
    client = server.client()
    try:
        client.select_folder(mailbox, readonly=True)
        uids = client.search("ALL")
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()}
    finally:
        client.logout()


# -- in process, with the in-memory publisher ------------------------------------------------


class _Rig:
    """A connector, its state and the in-memory publisher, run until a condition holds."""

    def __init__(self, settings: ImapSettings, root: Path) -> None:
        self.publisher = MemoryPublisher()
        self.state = ConnectorState(root / "imap.sqlite3")
        self.blobs = BlobStore(root / "blobs", 10_000_000)
        self.connector = ImapConnector(settings, self.blobs)
        self.delivery = Delivery("imap", self.publisher, self.state)
        self.stopped_in = 0.0

    def published(self) -> list[str]:
        return [r.key for r in self.publisher.on(RAW)]

    async def run_until(self, done: Any, timeout_s: float = 30) -> int:
        await self.publisher.start()
        stop = asyncio.Event()
        runner = Runner(
            self.connector,
            self.delivery,
            ConnectorSettings(backoff_initial_s=0.1, relay_interval_s=0.2),
        )
        task = asyncio.create_task(runner.run(stop))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while not done() and not task.done():
                assert loop.time() < deadline, f"timed out; published {self.keys()}"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
        stopping = asyncio.get_running_loop().time()
        code = await asyncio.wait_for(task, timeout=10)
        self.stopped_in = asyncio.get_running_loop().time() - stopping
        return code


async def test_uidvalidity_change_rescans_without_publishing_again(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Rescan")
    ids = _ids(4, "rescan")
    mails = [alternative_mail(mid) for mid in ids]
    dovecot.append(mailbox, *mails)
    rig = _Rig(_settings(dovecot, mailbox, batch_size=3), tmp_path)
    assert await rig.run_until(lambda: len(rig.published()) == 4) == 0
    first = rig.state.cursor("imap")
    assert first is not None and first.endswith(":4")

    client = dovecot.client()  # a new mailbox of the same name: a new UIDVALIDITY
    client.delete_folder(mailbox)
    client.create_folder(mailbox)
    client.logout()
    newer = _ids(1, "after-rescan")
    dovecot.append(mailbox, *mails, alternative_mail(newer[0]))
    rig.connector = ImapConnector(_settings(dovecot, mailbox, batch_size=3), rig.blobs)  # restart
    assert await rig.run_until(lambda: newer[0] in rig.published()) == 0
    assert Counter(rig.published()) == dict.fromkeys(ids + newer, 1)
    cursor = rig.state.cursor("imap")
    assert cursor is not None and cursor != first and cursor.endswith(":5")
    assert all(FLAG.encode() in flags for flags in _flags(dovecot, mailbox).values())


async def test_processed_mail_is_moved_to_a_created_folder(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Move")
    folder = f"{mailbox}-islenen"
    ids = _ids(3, "move")
    dovecot.append(mailbox, *(alternative_mail(mid) for mid in ids))
    rig = _Rig(_settings(dovecot, mailbox, processed_folder=folder), tmp_path)
    await rig.run_until(lambda: len(rig.published()) == 3 and not _flags(dovecot, mailbox))
    moved = _flags(dovecot, folder)
    assert len(moved) == 3 and all(FLAG.encode() in flags for flags in moved.values())


async def test_idle_wakes_up_on_new_mail_and_a_stop_is_prompt(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Idle")
    settings = _settings(dovecot, mailbox, idle_timeout_s=60, poll_interval_s=60)
    rig = _Rig(settings, tmp_path)
    (late,) = _ids(1, "idle")

    async def append_later() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(dovecot.append, mailbox, alternative_mail(late))

    appender = asyncio.create_task(append_later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await rig.run_until(lambda: late in rig.published(), timeout_s=20)
    await appender
    assert loop.time() - started < 15, "IDLE (not the 60 s poll) brought the mail"
    assert rig.stopped_in < 3, "a stop during IDLE does not wait for the server"


async def test_without_idle_it_polls(
    dovecot: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImapSession, "has_idle", property(lambda self: False))
    mailbox = dovecot.new_mailbox("Poll")
    rig = _Rig(_settings(dovecot, mailbox, poll_interval_s=0.3), tmp_path)
    (late,) = _ids(1, "poll")

    async def append_later() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(dovecot.append, mailbox, alternative_mail(late))

    appender = asyncio.create_task(append_later())
    await rig.run_until(lambda: late in rig.published(), timeout_s=20)
    await appender


async def test_a_dropped_connection_is_reopened(dovecot: DovecotServer, tmp_path: Path) -> None:
    mailbox = dovecot.new_mailbox("Drop")
    first, second = _ids(2, "drop")
    dovecot.append(mailbox, alternative_mail(first))
    rig = _Rig(_settings(dovecot, mailbox, idle_timeout_s=60), tmp_path)

    async def drop_then_append() -> None:
        while first not in rig.published():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # now idling
        rig.connector.session.client.socket().shutdown(socket.SHUT_RDWR)
        await asyncio.to_thread(dovecot.append, mailbox, alternative_mail(second))

    dropper = asyncio.create_task(drop_then_append())
    await rig.run_until(lambda: second in rig.published(), timeout_s=30)
    await dropper
    assert rig.published() == [first, second]


async def test_a_crash_between_cursor_and_flag_is_caught_up(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Catch")
    dovecot.append(mailbox, *(alternative_mail(mid) for mid in _ids(2, "catch")))
    rig = _Rig(_settings(dovecot, mailbox), tmp_path)
    rig.state.save_cursor("imap", f"{mailbox}:{_uidvalidity(dovecot, mailbox)}:2", utc_now())
    await rig.run_until(lambda: all(FLAG.encode() in f for f in _flags(dovecot, mailbox).values()))
    assert rig.published() == []  # covered by the cursor: flagged, not published again


def _uidvalidity(server: DovecotServer, mailbox: str) -> int:
    client = server.client()
    try:
        return int(client.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"])
    finally:
        client.logout()


# -- ``intake connector imap`` as a process, with the real broker -----------------------------


def _start(
    env: ProductEnv, server: DovecotServer, mailbox: str, data_dir: Path, **extra: str
) -> Proc:
    variables = {
        "INTAKE_DATA_DIR": str(data_dir),
        "INTAKE_CONNECTORS__IMAP__HOST": server.host,
        "INTAKE_CONNECTORS__IMAP__PORT": str(server.port),
        "INTAKE_CONNECTORS__IMAP__SSL": "false",
        "INTAKE_CONNECTORS__IMAP__USERNAME": server.user,
        "INTAKE_CONNECTORS__IMAP__PASSWORD": server.password,
        "INTAKE_CONNECTORS__IMAP__MAILBOX": mailbox,
        "INTAKE_CONNECTORS__IMAP__IDLE_TIMEOUT_S": "5",
        "INTAKE_CONNECTORS__BACKOFF_INITIAL_S": "0.2",
        **extra,
    }
    return env.start("imap", ["connector", "imap"], **variables)


def _count(records: list[Any], ids: list[str]) -> Counter[str]:
    wanted = set(ids)
    return Counter(key for r in records if r.key and (key := r.key.decode()) in wanted)


def _events(records: list[Any]) -> dict[str, RawEvent]:
    return {r.key.decode(): RawEvent.from_bytes(r.value) for r in records if r.key}


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers:
        if key == HEADER_PREFIX + name:
            return bytes(value).decode()
    return None


async def test_appended_mail_reaches_the_raw_topic_once_decoded_and_flagged(
    kafka: ProductEnv, dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Flow")
    ids = _ids(7, "flow")
    builders = [
        cp1254_mail,
        iso88599_mail,
        alternative_mail,
        html_only_mail,
        inline_image_mail,
        attachment_mail,
        malformed_mime_mail,
    ]
    dovecot.append(mailbox, *(build(mid) for build, mid in zip(builders, ids, strict=True)))
    data_dir = tmp_path / "var"
    proc = _start(kafka, dovecot, mailbox, data_dir)
    try:
        await read_until(kafka.bootstrap, [RAW], lambda s: len(_count(s, ids)) == 7, 90)
        wait_until(
            lambda: all(FLAG.encode() in f for f in _flags(dovecot, mailbox).values()),
            30,
            "the processed flag on every mail",
        )
        later = _ids(1, "flow-later")  # IDLE brings mail appended while it runs
        dovecot.append(mailbox, alternative_mail(later[0]))
        records = await read_until(kafka.bootstrap, [RAW], lambda s: _count(s, later) != {}, 60)
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.tail()
    assert _count(records, ids + later) == dict.fromkeys(ids + later, 1), "each mail once"
    events = _events(records)
    assert events[ids[0]].payload["text"] == TURKISH  # windows-1254
    assert events[ids[0]].payload["from"]["name"] == "Ayşe Kaya"
    assert events[ids[1]].payload["text"] == TURKISH  # iso-8859-9, quoted-printable
    assert events[ids[3]].payload["html_only"] is True
    blobs = BlobStore(data_dir / "blobs", 10_000_000)
    assert [blobs.get(ref) for ref in events[ids[4]].attachments] == [PNG]
    assert [blobs.get(ref) for ref in events[ids[5]].attachments] == [PDF]
    assert events[ids[6]].payload["text"] == "Kaldırım işgali var."
    assert len(_flags(dovecot, mailbox)) == 8, "the mailbox still holds every mail"


async def test_killed_mid_stream_the_restart_publishes_every_mail_exactly_once(
    kafka: ProductEnv, dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Restart")
    ids = _ids(60, "restart")
    dovecot.append(mailbox, *(attachment_mail(mid, PDF + mid.encode()) for mid in ids))
    data_dir = tmp_path / "var"
    consumer = AIOKafkaConsumer(RAW, bootstrap_servers=kafka.bootstrap, auto_offset_reset="latest")
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=500)  # positions at the current end
        proc = _start(kafka, dovecot, mailbox, data_dir, INTAKE_CONNECTORS__IMAP__BATCH_SIZE="5")
        seen: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while not _count(seen, ids):
            assert loop.time() < deadline and proc.alive(), proc.tail()
            for batch in (await consumer.getmany(timeout_ms=50)).values():
                seen.extend(batch)
        proc.kill()
    finally:
        await consumer.stop()
    before = len(_count(await _settle(kafka), ids))
    print(f"killed after {before} of 60 mails were published")
    assert 0 < before < 60, f"killed mid-stream ({before} of 60 were published)"

    again = _start(kafka, dovecot, mailbox, data_dir, INTAKE_CONNECTORS__IMAP__BATCH_SIZE="5")
    try:
        await read_until(kafka.bootstrap, [RAW], lambda s: len(_count(s, ids)) == 60, 120)
        wait_until(
            lambda: all(FLAG.encode() in f for f in _flags(dovecot, mailbox).values()),
            30,
            "the processed flag on every mail",
        )
    finally:
        again.stop()
    assert again.popen.returncode == 0, again.tail()
    assert _count(await _settle(kafka), ids) == dict.fromkeys(ids, 1), "each mail exactly once"


async def _settle(env: ProductEnv) -> list[Any]:
    """Everything on the raw topic now (read to the end offsets)."""
    consumer = AIOKafkaConsumer(
        RAW, bootstrap_servers=env.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = list(consumer.assignment()) or []
        while not tps:
            await consumer.getmany(timeout_ms=200)
            tps = list(consumer.assignment())
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


async def test_a_wrong_password_exits_with_ex_config_and_one_clear_line(
    kafka: ProductEnv, dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Auth")
    secret = "yanlis-Parola-153"
    proc = _start(
        kafka, dovecot, mailbox, tmp_path / "var", INTAKE_CONNECTORS__IMAP__PASSWORD=secret
    )
    try:
        proc.popen.wait(timeout=60)
    finally:
        proc.stop()
    log = proc.log.read_text(errors="replace")
    assert proc.popen.returncode == EXIT_CONFIG, log  # 78: not restarted by ``intake up``
    assert secret not in log
    lines = [line for line in log.splitlines() if "authentication failed" in line]
    assert len(lines) == 1, log
    assert "refused the login" in lines[0] and "[AUTHENTICATIONFAILED]" in lines[0]
    assert "b'" not in lines[0]


async def test_a_mail_that_cannot_be_parsed_is_dead_lettered_and_the_loop_goes_on(
    kafka: ProductEnv, dovecot: DovecotServer, tmp_path: Path
) -> None:
    mailbox = dovecot.new_mailbox("Dead")
    before, after = _ids(2, "dead")
    dovecot.append(mailbox, alternative_mail(before), NOT_A_MAIL, alternative_mail(after))
    proc = _start(kafka, dovecot, mailbox, tmp_path / "var")
    try:
        await read_until(kafka.bootstrap, [RAW], lambda s: len(_count(s, [before, after])) == 2, 90)

        def ours(records: list[Any]) -> list[Any]:
            return [r for r in records if _header(r, "source.mailbox") == mailbox]

        dead = ours(await read_until(kafka.bootstrap, [DEAD], lambda s: bool(ours(s)), 60))
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.tail()
    (record,) = dead
    assert record.value == NOT_A_MAIL  # the bytes, as received
    assert _header(record, "source.uid") == "2" and _header(record, "stage") == "connector.imap"
    assert "MailRejected" in (_header(record, "exception.class") or "")
    assert len(_flags(dovecot, mailbox)) == 3
