"""The Alo 153 call-record connector with the in-memory publisher: drop files (CSV in Turkish
or English, BOM, windows-1254, JSON lines), the CDR join, resuming by offset, moving files
aside, dead letters, and ``POST /api/v1/calls`` over ASGI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from connectors.calls import (
    CallLogConnector,
    CdrIndex,
    build_calls_router,
    call_tracking_number,
    column_key,
    index_cdrs,
    parse_cdr_line,
    parse_cursor,
)
from connectors.publisher import MemoryPublisher
from connectors.runtime import Delivery, Runner
from connectors.state import ConnectorState
from connectors.web import BodySizeLimit
from infra.settings import CallsSettings, ConnectorSettings, Settings, WebSettings
from schemas.deadletter import HEADER_PREFIX
from schemas.ids import is_tracking_number
from schemas.raw import RawEvent
from streams.normalize import normalize

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "calls"
SAMPLE = SAMPLES / "alo153-2026-03-02.csv"
MASTER = SAMPLES / "Master.csv"
RAW = "intake.raw.calls"
DEAD = "intake.deadletter"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "calls-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

TR_HEADER = "cagri_id,arayan,baslangic,bitis,operator,kuyruk,kategori,notlar,adres,hatta_cozuldu"
TR_ROW = (
    'C-1,0555 000 00 12,02.03.2026 09:14,02.03.2026 09:18,op-1,genel,Çöp,"Konteyner taşıyor, '
    'koku var",Şakirpaşa Mah.,hayır'
)
EN_HEADER = "Call ID;Caller;Start;End;Operator;Queue;Category;Notes;Address;Resolved"
EN_ROW = "C-2;+90 555 000 00 13;2026-03-02 10:00:00;;op-2;ulasim;Otobüs;Sefer saatini sordu;;true"


def _connector(settings: CallsSettings, **kwargs: Any) -> CallLogConnector:
    return CallLogConnector(settings, stable_after_s=0, clock=lambda: T0, **kwargs)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture
def calls(drop: Path) -> CallsSettings:
    return CallsSettings(drop_dir=drop, cdr_file=MASTER, poll_interval_s=0.01)


@pytest.fixture
async def publisher() -> MemoryPublisher:
    started = MemoryPublisher()
    await started.start()
    return started


@pytest.fixture
def state(tmp_path: Path) -> ConnectorState:
    return ConnectorState(tmp_path / "calls.sqlite3")


@pytest.fixture
def delivery(publisher: MemoryPublisher, state: ConnectorState) -> Delivery:
    return Delivery("calls", publisher, state, clock=lambda: T0)


async def _drain(connector: CallLogConnector, delivery: Delivery, cycles: int = 50) -> int:
    """The runner's steps (fetch, deliver + cursor, confirm) until the source is idle."""
    for cycle in range(cycles):
        batch = await connector.fetch(delivery.state.cursor(connector.name))
        await delivery.deliver(batch.records, batch.cursor)
        await connector.confirm(batch)
        if not batch.more:
            return cycle
    raise AssertionError("the connector never became idle")


def _events(publisher: MemoryPublisher) -> list[RawEvent]:
    return [RawEvent.from_bytes(record.value) for record in publisher.on(RAW)]


def _headers(record: Any) -> dict[str, str]:
    return {k.removeprefix(HEADER_PREFIX): v.decode() for k, v in record.headers}


# -- drop files --------------------------------------------------------------------------


async def test_the_sample_file_is_published_joined_with_its_cdrs_and_moved_aside(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    shutil.copy(SAMPLE, drop)

    await _drain(_connector(calls), delivery)

    events = _events(publisher)
    assert len(events) == 16 and publisher.on(DEAD) == []
    assert [r.key for r in publisher.on(RAW)] == [e.provider_id for e in events]
    first = events[0]
    assert first.channel == "calls" and first.provider_id == "1772431331.1021"
    assert first.payload["caller"] == "0555 000 10 10"  # kept as read, for the normalizer
    assert first.payload["category"] == "Su arızası"
    assert first.payload["resolved"] == "hayır"
    assert first.payload["cdr"] == {
        "start": "2026-03-02 09:02:11",
        "answer": "2026-03-02 09:02:35",
        "end": "2026-03-02 09:06:07",
        "duration": "236",
        "billsec": "212",
        "disposition": "ANSWERED",
    }
    transferred = events[9].payload["cdr"]  # two legs in Master.csv: the call's whole span
    assert transferred["end"] == "2026-03-02 10:17:58" and transferred["billsec"] == "205"
    assert sum(normalize(e).resolved_on_line for e in events) == 5
    assert not (drop / SAMPLE.name).exists()
    assert (drop / "islenen" / SAMPLE.name).read_bytes() == SAMPLE.read_bytes()
    assert delivery.state.cursor("calls") == ""  # the finished file's cursor is cleared


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (f"{TR_HEADER}\n{TR_ROW}\n", "utf-8"),
        (f"{TR_HEADER}\r\n{TR_ROW}\r\n", "utf-8-sig"),
        (f"{TR_HEADER}\n{TR_ROW}\n", "cp1254"),
        (f"{EN_HEADER}\n{EN_ROW}\n", "utf-8-sig"),
        (f"{EN_HEADER}\n{EN_ROW}", "cp1254"),
        (
            "Çağrı ID\tARAYAN\tKategori\tNotlar\tHatta Çözüldü\n"
            "C-3\t05550000014\tYol\tÇukur\tEVET\n",
            "cp1254",
        ),
    ],
    ids=["tr-utf8", "tr-bom-crlf", "tr-windows-1254", "en-semicolon-bom", "en-1254-no-eol", "tab"],
)
async def test_csv_headers_in_turkish_or_english_any_encoding(
    drop: Path,
    calls: CallsSettings,
    publisher: MemoryPublisher,
    delivery: Delivery,
    text: str,
    encoding: str,
) -> None:
    (drop / "kayit.csv").write_bytes(text.encode(encoding))

    await _drain(_connector(calls), delivery)

    [event] = _events(publisher)
    payload = event.payload
    assert set(payload) <= {"call_id", "caller", "start", "end", "operator", "queue"} | {
        "category",
        "notes",
        "address",
        "resolved",
    }
    assert payload["call_id"] == event.provider_id
    assert payload["category"] in {"Çöp", "Otobüs", "Yol"}  # Turkish letters decoded right
    if payload["category"] == "Çöp":
        assert payload["notes"] == "Konteyner taşıyor, koku var"
        assert payload["address"] == "Şakirpaşa Mah."
        assert payload["resolved"] == "hayır"
    assert (drop / "islenen" / "kayit.csv").exists()


def test_column_names_are_matched_without_case_spaces_or_turkish_letters() -> None:
    assert column_key("ÇAĞRI ID") == column_key("call_id") == column_key("\ufeffCagri_Id")
    assert column_key("Hatta Çözüldü") == "resolved"
    assert column_key("Başlangıç") == "start" and column_key("NOTLAR") == "notes"
    assert column_key(" Santral Notu ") == "Santral Notu"  # other columns keep their name


async def test_json_lines_with_turkish_or_english_keys(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    lines = [
        {"cagri_id": "J-1", "arayan": "05550000015", "kategori": "Su", "notlar": "Su yok"},
        {"call_id": "1772431665.1024", "category": "Zabıta", "resolved": True, "queue": None},
        {"call_id": 1772431665.102, "notes": "Bir sayı olarak: hane kaybolabilir"},
        {"call_id": 42, "notes": "Bir tam sayı: olduğu gibi", "resolved": False},
        {"call_id": "J-3", "notes": "Teşekkür etti", "hatta_cozuldu": 1},
    ]
    (drop / "kayit.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")

    await _drain(_connector(calls), delivery)

    events = _events(publisher)
    assert [e.provider_id for e in events] == ["J-1", "1772431665.1024", "42", "J-3"]
    assert events[1].payload["resolved"] == "true" and "queue" not in events[1].payload
    assert events[1].payload["cdr"]["disposition"] == "ANSWERED"  # joined by uniqueid
    assert events[3].payload["resolved"] == "1"
    assert [normalize(e).resolved_on_line for e in events] == [False, True, False, True]
    [dead] = publisher.on(DEAD)
    assert _headers(dead)["source.line"] == "3" and "call_id" in _headers(dead)["exception.message"]


async def test_a_partial_read_resumes_at_the_saved_offset_after_a_restart(
    drop: Path,
    calls: CallsSettings,
    publisher: MemoryPublisher,
    delivery: Delivery,
    tmp_path: Path,
) -> None:
    shutil.copy(SAMPLE, drop)
    connector = _connector(calls, batch_size=5)

    batch = await connector.fetch(None)
    await delivery.deliver(batch.records, batch.cursor)
    await connector.confirm(batch)
    delivery.state.close()  # the process dies here

    name, offset = parse_cursor(batch.cursor)
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    assert (name, offset) == (SAMPLE.name, sum(len(line) for line in lines[:6]))
    assert batch.more and batch.token is None and (drop / SAMPLE.name).exists()
    again = ConnectorState(tmp_path / "calls.sqlite3")
    assert again.cursor("calls") == batch.cursor
    restarted = Delivery("calls", publisher, again)

    await _drain(_connector(calls, batch_size=5), restarted)

    keys = [r.key for r in publisher.on(RAW)]
    assert len(keys) == len(set(keys)) == 16


async def test_a_batch_acknowledged_before_a_crash_is_not_published_twice(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    shutil.copy(SAMPLE, drop)
    connector = _connector(calls, batch_size=4)
    batch = await connector.fetch(None)
    await publisher.publish_many(batch.records)  # acknowledged, then a crash: no cursor saved
    delivery.state.remember([r.key for r in batch.records if r.key], T0)  # what reconcile learns

    await _drain(_connector(calls, batch_size=4), delivery)

    keys = [r.key for r in publisher.on(RAW)]
    assert len(keys) == len(set(keys)) == 16


async def test_malformed_lines_go_to_the_dead_letter_topic_with_file_and_line(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    text = "\n".join(
        [
            TR_HEADER,
            TR_ROW,
            "C-4,05550000016,bozuk tarih,,op-1,genel,Yol,Çukur var,,hayır",
            "C-5,05550000017,,,op-1,genel,Yol",
            'C-6,05550000018,,,op-1,genel,Park,"Salıncak kırık, çocuklar\niçin tehlikeli",,evet',
            ",05550000019,,,op-1,genel,Su,Su yok,,belki",
            "C-7,05550000020,,,op-1,genel,Su,Su yok,,evet",
        ]
    )
    (drop / "gun.csv").write_text(text + "\n", encoding="utf-8")

    await _drain(_connector(calls), delivery)

    assert [e.provider_id for e in _events(publisher)] == ["C-1", "C-6", "C-7"]
    assert _events(publisher)[1].payload["notes"] == "Salıncak kırık, çocuklar\niçin tehlikeli"
    dead = publisher.on(DEAD)
    assert [(_headers(d)["source.file"], _headers(d)["source.line"]) for d in dead] == [
        ("gun.csv", "3"),
        ("gun.csv", "4"),
        ("gun.csv", "7"),  # after the two-line record on lines 5 and 6
    ]
    assert [d.key for d in dead] == ["C-4", "", ""]  # no key: the memory twin writes ""
    assert (
        dead[0].value == "C-4,05550000016,bozuk tarih,,op-1,genel,Yol,Çukur var,,hayır\n".encode()
    )
    assert "start" in _headers(dead[0])["exception.message"]
    assert "header has 10" in _headers(dead[1])["exception.message"]
    assert "call_id" in _headers(dead[2])["exception.message"]
    assert "resolved" in _headers(dead[2])["exception.message"]
    assert all(_headers(d)["stage"] == "connector.calls" for d in dead)
    assert (drop / "islenen" / "gun.csv").exists()


async def test_a_json_line_that_is_not_an_object_is_a_dead_letter(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    (drop / "a.ndjson").write_text(
        '{"call_id": "N-1", "notes": "x"\n[1, 2]\n{"call_id": "N-2", "notes": "y"}\n'
    )

    await _drain(_connector(calls), delivery)

    assert [e.provider_id for e in _events(publisher)] == ["N-2"]
    assert [_headers(d)["source.line"] for d in publisher.on(DEAD)] == ["1", "2"]


async def test_only_complete_files_are_read_in_name_order(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    row = TR_HEADER + "\n{id},05550000021,,,op,genel,Yol,Çukur,,hayır\n"
    (drop / "b.csv").write_text(row.format(id="B"))
    (drop / "a.csv").write_text(row.format(id="A"))
    (drop / "c.csv.part").write_text(row.format(id="PART"))
    (drop / "d.csv.tmp").write_text(row.format(id="TMP"))
    (drop / ".e.csv").write_text(row.format(id="HIDDEN"))
    (drop / "notlar.txt").write_text("not a call file")
    (drop / "z.csv").write_text(row.format(id="FRESH"))
    old = time.time() - 60
    for name in ("a.csv", "b.csv", "c.csv.part", "d.csv.tmp", ".e.csv"):
        os.utime(drop / name, (old, old))
    connector = CallLogConnector(calls, stable_after_s=30, clock=lambda: T0)

    await _drain(connector, delivery)
    assert [e.provider_id for e in _events(publisher)] == ["A", "B"]

    (drop / "c.csv.part").rename(drop / "c.csv")  # the writer's rename: now complete
    os.utime(drop / "z.csv", (old, old))  # and z.csv was not touched for a while
    await _drain(connector, delivery)
    assert [e.provider_id for e in _events(publisher)] == ["A", "B", "PART", "FRESH"]
    assert sorted(p.name for p in (drop / "islenen").iterdir()) == [
        "a.csv",
        "b.csv",
        "c.csv",
        "z.csv",
    ]


async def test_a_file_name_seen_before_is_moved_aside_under_a_new_name(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    connector = _connector(calls)
    for call_id in ("R-1", "R-2"):
        (drop / "gunluk.csv").write_text(f"call_id,notes\n{call_id},Su yok\n")
        await _drain(connector, delivery)
    assert [e.provider_id for e in _events(publisher)] == ["R-1", "R-2"]
    assert len(list((drop / "islenen").glob("gunluk*.csv"))) == 2


async def test_the_runner_drives_the_connector(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    shutil.copy(SAMPLE, drop)
    connector = _connector(calls, batch_size=7)
    runner = Runner(connector, delivery, ConnectorSettings(backoff_initial_s=0.01))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(500):
            if (drop / "islenen" / SAMPLE.name).exists() and len(publisher.on(RAW)) == 16:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 5) == 0
    assert len(publisher.on(RAW)) == 16


async def test_caller_numbers_are_never_logged(
    drop: Path,
    calls: CallsSettings,
    delivery: Delivery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shutil.copy(SAMPLE, drop)
    (drop / "bozuk.csv").write_text(f"{TR_HEADER}\nC-9,0555 000 00 99,dün,,op,genel,Su,Su yok,,x\n")

    await _drain(_connector(calls), delivery)

    assert "bozuk.csv line 2" in caplog.text
    for phone in ("0555 000 10 10", "0555 000 00 99", "05550001010", "Reşatbey"):
        assert phone not in caplog.text


# -- Asterisk CDRs -----------------------------------------------------------------------


def test_a_cdr_line_without_uniqueid_cannot_be_joined() -> None:
    line = '"","100","153","alo153","","SIP/a","SIP/b","Queue","q","2026-03-02 09:00:00",'
    assert parse_cdr_line(line + '"","2026-03-02 09:00:05",5,0,"NO ANSWER","DOCUMENTATION"') is None
    full = parse_cdr_line(
        line + '"","2026-03-02 09:00:05",5,0,"NO ANSWER","DOCUMENTATION","17.1",""'
    )
    assert full is not None and full["uniqueid"] == "17.1" and full["answer"] == ""
    assert full["disposition"] == "NO ANSWER" and "src" not in full  # the number stays out


def test_legs_of_one_call_are_merged() -> None:
    head = '"","1","153","c","","A",'
    legs = [
        head + '"B","Queue","q","2026-03-02 09:00:00","","2026-03-02 09:00:20",20,0,'
        '"NO ANSWER","DOCUMENTATION","9.1",""',
        head + '"C","Dial","x","2026-03-02 09:00:20","2026-03-02 09:00:25","2026-03-02 09:03:00",'
        '160,155,"ANSWERED","DOCUMENTATION","9.1",""',
    ]
    [(uniqueid, cdr)] = index_cdrs(legs).items()
    assert uniqueid == "9.1"
    assert cdr == {
        "start": "2026-03-02 09:00:00",
        "answer": "2026-03-02 09:00:25",
        "end": "2026-03-02 09:03:00",
        "duration": "160",
        "billsec": "155",
        "disposition": "ANSWERED",
    }


def test_the_cdr_index_reads_what_asterisk_appends_and_survives_rotation(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    head = '"","1","153","c","","A","B","Queue","q","2026-03-02 09:00:00","",'
    index = CdrIndex(master)
    index.refresh()  # no file yet
    master.write_text(head + '"2026-03-02 09:00:09",9,0,"BUSY","DOCUMENTATION","1.1",""\n')
    index.refresh()
    assert index.lookup("1.1") == {
        "start": "2026-03-02 09:00:00",
        "answer": "",
        "end": "2026-03-02 09:00:09",
        "duration": "9",
        "billsec": "0",
        "disposition": "BUSY",
    }
    with master.open("a") as handle:  # a line still being written is not read yet
        handle.write(head + '"2026-03-02 09:00:09",9,0,"FAILED","DOCUMENTATION","1.2"')
    index.refresh()
    assert index.lookup("1.2") is None
    with master.open("a") as handle:
        handle.write(',""\n')
    index.refresh()
    assert index.lookup("1.2")["disposition"] == "FAILED"
    master.unlink()  # logrotate: a new, shorter file
    master.write_text(head + '"2026-03-02 09:00:09",9,0,"ANSWERED","DOCUMENTATION","1.3",""\n')
    index.refresh()
    assert index.lookup("1.3") is not None and index.lookup("1.1") is not None
    assert CdrIndex(None).lookup("1.1") is None


# -- POST /api/v1/calls ------------------------------------------------------------------

CALL: dict[str, Any] = {
    "cagri_id": "H-1",
    "arayan": "+90 555 000 00 31",
    "baslangic": "2026-03-02 11:20:00",
    "kategori": "Su arızası",
    "notlar": "Sokakta su borusu patlamış, yol su içinde.",
    "adres": "Kurtuluş Mah., Seyhan",
    "hatta_cozuldu": "hayır",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path,
        web=WebSettings(api_token=SecretStr(TOKEN), max_body_bytes=64 * 1024),
    )


@pytest.fixture
async def client(settings: Settings, delivery: Delivery) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(build_calls_router(settings, delivery, cdrs=CdrIndex(MASTER)))
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.web.max_body_bytes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as http:
        yield http


async def test_one_call_is_published_then_accepted_with_its_tracking_number(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    response = await client.post("/api/v1/calls", json=CALL, headers=AUTH)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["tracking_numbers"] == [call_tracking_number("H-1")]
    assert is_tracking_number(body["tracking_numbers"][0])
    assert body["calls"] == [
        {
            "call_id": "H-1",
            "message_id": "calls:H-1",
            "tracking_number": body["tracking_numbers"][0],
        }
    ]
    [event] = _events(publisher)
    assert event.provider_id == "H-1" and event.payload["caller"] == "+90 555 000 00 31"
    message = normalize(event)
    assert message.tracking_number == body["tracking_numbers"][0]
    assert message.citizen.phone == "+90 555 000 00 31" and not message.resolved_on_line


async def test_a_list_of_calls_is_accepted_and_a_repeat_is_not_published_again(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    calls = [CALL, {"call_id": "1772431331.1021", "notes": "Bilgi verildi", "resolved": "evet"}]

    first = await client.post("/api/v1/calls", json=calls, headers=AUTH)
    again = await client.post("/api/v1/calls", json=calls[1], headers=AUTH)

    assert first.status_code == again.status_code == 202
    assert first.json()["tracking_numbers"][1] == again.json()["tracking_numbers"][0]
    events = _events(publisher)
    assert [e.provider_id for e in events] == ["H-1", "1772431331.1021"]
    assert events[1].payload["cdr"]["billsec"] == "212"


async def test_when_kafka_is_down_the_calls_wait_in_the_outbox_and_it_is_still_202(
    client: httpx.AsyncClient, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    publisher.fail_next(1)

    response = await client.post("/api/v1/calls", json=CALL, headers=AUTH)

    assert response.status_code == 202
    assert publisher.records == [] and delivery.state.pending_count() == 1
    assert await delivery.drain() == 1 and publisher.on(RAW)[0].key == "H-1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_without_the_right_token_it_is_401(
    client: httpx.AsyncClient, publisher: MemoryPublisher, headers: dict[str, str]
) -> None:
    response = await client.post("/api/v1/calls", json=CALL, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"error", "detail"}
    assert publisher.records == []


@pytest.mark.parametrize(
    ("body", "locations"),
    [
        ({**CALL, "cagri_id": None}, [["body", "call_id"]]),
        ({**CALL, "hatta_cozuldu": "belki"}, [["body", "resolved"]]),
        ([CALL, {"call_id": "H-2", "start": "dün"}], [["body", 1, "start"], ["body", 1, "notes"]]),
        ([CALL, "H-3"], [["body", 1]]),
        ([], [["body"]]),
        ({**CALL, "notlar": {"nested": "x"}}, [["body", "notes"]]),
    ],
    ids=["no-call-id", "bad-flag", "bad-time-no-notes", "not-an-object", "empty", "nested"],
)
async def test_an_invalid_record_is_422_and_nothing_is_published(
    client: httpx.AsyncClient,
    publisher: MemoryPublisher,
    body: Any,
    locations: list[list[Any]],
) -> None:
    response = await client.post("/api/v1/calls", json=body, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_call_record"
    assert [e["location"] for e in response.json()["errors"]] == locations
    assert "555 000" not in response.text  # values are not echoed back
    assert publisher.records == []


async def test_a_body_that_is_not_json_is_422_and_another_type_415(
    client: httpx.AsyncClient,
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    assert (await client.post("/api/v1/calls", content=b"{", headers=headers)).status_code == 422
    headers = {**AUTH, "Content-Type": "text/csv"}
    assert (await client.post("/api/v1/calls", content=b"x", headers=headers)).status_code == 415


async def test_too_much_is_413(client: httpx.AsyncClient, publisher: MemoryPublisher) -> None:
    many = [{"call_id": f"M-{i}", "notes": "x"} for i in range(501)]
    big = {**CALL, "notlar": "ş" * 40_000}

    too_many = await client.post("/api/v1/calls", json=many, headers=AUTH)
    too_large = await client.post("/api/v1/calls", json=big, headers=AUTH)

    assert too_large.status_code == 413 and too_large.json()["error"] == "payload_too_large"
    assert too_many.status_code == 413
    assert publisher.records == []


async def test_a_cursor_that_is_no_line_start_rereads_the_file(
    drop: Path, calls: CallsSettings, publisher: MemoryPublisher, delivery: Delivery
) -> None:
    (drop / "a.csv").write_text(f"{TR_HEADER}\n{TR_ROW}\n")
    delivery.state.save_cursor("calls", "a.csv:100", T0)  # inside the first record

    await _drain(_connector(calls), delivery)

    assert [e.provider_id for e in _events(publisher)] == ["C-1"]
