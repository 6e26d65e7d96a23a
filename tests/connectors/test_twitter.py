"""The X mentions connector against a fake API v2 server on a loopback socket (tweepy's own
HTTP stack, real requests), with the in-memory publisher and a real SQLite state file."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.errors import SourceUnavailable
from connectors.publisher import MemoryPublisher
from connectors.runtime import EXIT_CONFIG, Batch, Delivery, Runner
from connectors.state import ConnectorState
from connectors.twitter import TwitterConnector, run
from infra.settings import ConnectorSettings, Settings, TwitterSettings
from schemas.deadletter import HEADER_PREFIX
from schemas.raw import RawEvent
from schemas.registry import ALARMS_TOPIC, DEADLETTER_TOPIC
from tests.integration.services import free_port

ACCOUNT_ID = "2244994945153"
ACCOUNT = "AdanaBld"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAFakeBearerForTests%2Fadana153"
RAW = "intake.raw.twitter"

#: Realistic mentions of the municipality, as citizens write them.
COMPLAINTS = (
    "@AdanaBld Yüreğir Kiremithane'de 3 gündür çöpler alınmıyor, koku çekilmez oldu #Adana",
    "@AdanaBld Seyhan Reşatbey'de sokak lambaları yanmıyor, akşam çocuklar korkuyor",
    "@AdanaBld @ASKIGenelMd Çukurova Belediye Evleri'nde sabahtan beri su yok #susuzluk",
    "@AdanaBld Turhan Cemal Beriker Bulvarı'nda büyük bir çukur var, araçlar zarar görüyor",
    "@AdanaBld 171 numaralı otobüs yine gelmedi, 40 dakikadır duraktayız #Adana",
    "@AdanaBld Sarıçam'da sokak köpekleri okul önünde çocuklara saldırıyor, yardım edin",
    "@AdanaBld Kozan yolunda kanalizasyon taştı, ev önleri pislik içinde",
    "@AdanaBld Merkez Park'taki oyun parkında salıncak kırık, çocuklar yaralanabilir",
)
AUTHORS = (
    ("Ayşe Yılmaz", "ayseyilmaz01"),
    ("Mehmet Demir", "mdemir_adana"),
    ("Fatma Şahin", "fatmasahin"),
    ("Hüseyin Çelik", "huseyincelik"),
)


@dataclass
class SeenRequest:
    """One request the fake API answered."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int
    at: float


class FakeXApi:
    """A small X API v2 server on loopback: ``GET /2/users/:id/mentions`` in the documented
    shape (``data``, ``includes``, ``meta`` with ``newest_id``/``oldest_id``/``result_count``/
    ``next_token``), a bearer-token check, ``since_id`` and anchored pagination tokens."""

    def __init__(self, token: str = TOKEN, user_id: str = ACCOUNT_ID) -> None:
        self.token = token
        self.user_id = user_id
        self.requests: list[SeenRequest] = []
        self._tweets: list[tuple[int, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._media: dict[str, dict[str, Any]] = {}
        self._places: dict[str, dict[str, Any]] = {}
        self._next_id = 1_860_000_000_000_000_000 + random.randrange(10**14) * 1000
        self._lock = threading.Lock()
        self._scripted: dict[int, tuple[int, dict[str, str]]] = {}
        self._gate = threading.Event()
        self._gate.set()
        self._hold_from_offset: int | None = None
        self.held = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeXApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()

    # -- content -------------------------------------------------------------------------

    def mention(
        self,
        text: str,
        author: tuple[str, str] = AUTHORS[0],
        *,
        photo: bool = False,
        place: bool = False,
        created_at: datetime | None = None,
    ) -> str:
        """Add a mention of the account (newer than every earlier one); returns its id."""
        with self._lock:
            self._next_id += 1000 + random.randrange(1000)
            tweet_id = str(self._next_id)
        name, username = author
        user_id = str(abs(hash(username)) % 10**12 + 10**12)
        self._users[user_id] = {"id": user_id, "name": name, "username": username}
        if username == "ayseyilmaz01":
            self._users[user_id]["location"] = "Adana, Türkiye"
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": user_id,
            "conversation_id": tweet_id,
            "created_at": (created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "lang": "tr",
            "edit_history_tweet_ids": [tweet_id],
            "entities": _entities(text, self.user_id),
        }
        if photo:
            key = f"3_{tweet_id}"
            self._media[key] = {
                "media_key": key,
                "type": "photo",
                "url": f"https://pbs.twimg.com/media/F{tweet_id[-8:]}.jpg",
                "width": 1536,
                "height": 2048,
            }
            tweet["attachments"] = {"media_keys": [key]}
        if place:
            self._places["1e5c6bd5a2c2a0d1"] = {
                "id": "1e5c6bd5a2c2a0d1",
                "full_name": "Seyhan, Türkiye",
                "name": "Seyhan",
                "country_code": "TR",
                "geo": {
                    "type": "Feature",
                    "bbox": [35.19, 36.94, 35.39, 37.08],
                    "properties": {},
                },
            }
            tweet["geo"] = {"place_id": "1e5c6bd5a2c2a0d1"}
        self.add_raw(int(tweet_id), tweet)
        return tweet_id

    def add_raw(self, order: int, obj: Any) -> None:
        """Serve ``obj`` as it is, in the position of a tweet with id ``order``."""
        with self._lock:
            self._tweets.append((order, obj))
            self._next_id = max(self._next_id, order)

    def next_id(self) -> int:
        with self._lock:
            self._next_id += 1000
            return self._next_id

    def tweet(self, tweet_id: str) -> dict[str, Any]:
        return next(obj for order, obj in self._tweets if str(order) == tweet_id)

    # -- behaviour -----------------------------------------------------------------------

    def rate_limit_next(self, reset_in_s: float, skip: int = 0) -> int:
        """Answer the request after ``skip`` more with 429; returns its ``x-rate-limit-reset``."""
        reset = int(time.time() + reset_in_s)
        self._script(skip, 429, {"x-rate-limit-reset": str(reset)})
        return reset

    def fail_next(self, status: int, skip: int = 0) -> None:
        self._script(skip, status, {})

    def _script(self, skip: int, status: int, headers: dict[str, str]) -> None:
        with self._lock:
            self._scripted[len(self.requests) + skip] = (status, headers)

    def hold_pages_from(self, offset: int) -> None:
        """Keep requests for the page at ``offset`` (and later) waiting until ``release``."""
        self._hold_from_offset = offset
        self._gate.clear()

    def release(self) -> None:
        self._hold_from_offset = None
        self._gate.set()

    def mention_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.path.endswith("/mentions")]

    # -- the server ----------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, headers, body = api._answer(self)
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(self, req: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(req.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, headers, body = self._route(parts.path, params, req.headers.get("Authorization"))
        self.requests.append(
            SeenRequest(parts.path, params, dict(req.headers.items()), status, time.time())
        )
        return status, headers, body

    def _route(
        self, path: str, params: dict[str, str], auth: str | None
    ) -> tuple[int, dict[str, str], Any]:
        if auth != f"Bearer {self.token}":
            return 401, {}, _problem(401, "Unauthorized")
        with self._lock:
            scripted = self._scripted.pop(len(self.requests), None)
        if scripted is not None:
            return scripted[0], scripted[1], _problem(scripted[0], "scripted failure")
        if path != f"/2/users/{self.user_id}/mentions":
            return 404, {}, _problem(404, "Not Found")
        size = int(params.get("max_results", "10"))
        if not 5 <= size <= 100:
            return 400, {}, _problem(400, "max_results must be between 5 and 100")
        since = int(params.get("since_id", "0"))
        with self._lock:
            found = sorted((t for t in self._tweets if t[0] > since), key=lambda t: -t[0])
        token = params.get("pagination_token")
        if token:
            match = re.fullmatch(r"7140dibdnow9c7btw(\d+)a(\d+)", token)
            if not match:
                return 400, {}, _problem(400, "invalid pagination_token")
            anchor, offset = int(match[1]), int(match[2])
            found = [t for t in found if t[0] <= anchor]
        else:
            anchor, offset = (found[0][0] if found else 0), 0
        hold = self._hold_from_offset
        if hold is not None and offset >= hold:
            self.held.set()
            self._gate.wait(timeout=120)
        page = found[offset : offset + size]
        if not page:
            return 200, {}, {"meta": {"result_count": 0}}
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": str(page[0][0]),
            "oldest_id": str(page[-1][0]),
        }
        if offset + size < len(found):
            meta["next_token"] = f"7140dibdnow9c7btw{anchor}a{offset + size}"
        body: dict[str, Any] = {"data": [obj for _, obj in page], "meta": meta}
        includes = self._includes([obj for _, obj in page if isinstance(obj, dict)])
        if includes:
            body["includes"] = includes
        return 200, {"x-rate-limit-remaining": "179"}, body

    def _includes(self, tweets: list[dict[str, Any]]) -> dict[str, Any]:
        def field(tweet: dict[str, Any], name: str, sub: str) -> Any:
            value = tweet.get(name)
            return value.get(sub) if isinstance(value, dict) else None

        users = {t.get("author_id") for t in tweets}
        keys = {k for t in tweets for k in field(t, "attachments", "media_keys") or []}
        places = {field(t, "geo", "place_id") for t in tweets}
        found = {
            "users": [u for i, u in self._users.items() if i in users],
            "media": [m for k, m in self._media.items() if k in keys],
            "places": [p for i, p in self._places.items() if i in places],
        }
        return {kind: items for kind, items in found.items() if items}


def _problem(status: int, title: str) -> dict[str, Any]:
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def _entities(text: str, account_id: str) -> dict[str, Any]:
    entities: dict[str, Any] = {}
    mentions = [
        {"start": m.start(), "end": m.end(), "username": m[1]}
        | ({"id": account_id} if m[1] == ACCOUNT else {"id": "1050000000000000000"})
        for m in re.finditer(r"@(\w+)", text)
    ]
    hashtags = [
        {"start": m.start(), "end": m.end(), "tag": m[1]} for m in re.finditer(r"#(\w+)", text)
    ]
    if mentions:
        entities["mentions"] = mentions
    if hashtags:
        entities["hashtags"] = hashtags
    return entities


def complaints(api: FakeXApi, count: int) -> list[str]:
    """Add ``count`` mentions; returns their ids, oldest first."""
    return [
        api.mention(COMPLAINTS[i % len(COMPLAINTS)], AUTHORS[i % len(AUTHORS)], photo=i % 5 == 0)
        for i in range(count)
    ]


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeXApi]:
    with FakeXApi() as server:
        yield server


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ConnectorState]:
    db = ConnectorState(tmp_path / "twitter.sqlite3")
    yield db
    db.close()


@pytest.fixture
async def publisher() -> MemoryPublisher:
    pub = MemoryPublisher()
    await pub.start()
    return pub


def _settings(api: FakeXApi, token: str = TOKEN) -> TwitterSettings:
    return TwitterSettings(
        bearer_token=token,
        user_id=ACCOUNT_ID,
        api_base_url=api.url,
        page_size=5,
        poll_interval_s=0.1,
    )


_RUNTIME = ConnectorSettings(backoff_initial_s=0.05, backoff_max_s=0.2, relay_interval_s=0.05)


async def _run_until(
    runner: Runner, stop: asyncio.Event, done: Callable[[], bool], timeout_s: float = 15
) -> int:
    task = asyncio.create_task(runner.run(stop))
    deadline = time.monotonic() + timeout_s
    while not done() and not task.done():
        assert time.monotonic() < deadline, "timed out waiting for the connector"
        await asyncio.sleep(0.02)
    stop.set()
    return await asyncio.wait_for(task, timeout=10)


def _keys(publisher: MemoryPublisher) -> list[str]:
    return [r.key for r in publisher.on(RAW)]


async def _step(connector: TwitterConnector, delivery: Delivery, confirm: bool = True) -> Batch:
    """What the runner does with one batch: fetch, deliver (then save the cursor), confirm."""
    batch = await connector.fetch(delivery.state.cursor("twitter"))
    await delivery.deliver(batch.records, batch.cursor)
    if confirm:
        await connector.confirm(batch)
    return batch


# -- tests ---------------------------------------------------------------------------------


async def test_a_cycle_follows_every_page_and_only_its_last_batch_moves_the_cursor(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    ids = complaints(api, 12)
    connector = TwitterConnector(_settings(api))
    delivery = Delivery("twitter", publisher, state)
    await connector.open()
    batches = [await _step(connector, delivery) for _ in range(3)]
    await connector.close()

    assert [len(b.records) for b in batches] == [5, 5, 2]
    assert [b.cursor for b in batches] == [None, None, ids[-1]]
    assert [b.more for b in batches] == [True, True, False]
    assert state.cursor("twitter") == ids[-1]
    assert _keys(publisher) == ids[::-1]  # newest first, as the API lists them
    sent = api.mention_requests()
    assert [r.params.get("pagination_token") is None for r in sent] == [True, False, False]
    assert all("since_id" not in r.params for r in sent)  # first run: no cursor yet
    first = sent[0]
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.params["max_results"] == "5"
    assert first.params["expansions"] == (
        "author_id,attachments.media_keys,geo.place_id,referenced_tweets.id"
    )
    assert first.params["tweet.fields"].split(",")[:2] == ["created_at", "lang"]
    assert first.params["media.fields"] == "url,preview_image_url,type,width,height"
    assert first.params["place.fields"] == "full_name,geo,country_code,name"


async def test_the_next_cycle_asks_for_mentions_since_the_newest_of_the_last(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    first = complaints(api, 7)
    stop = asyncio.Event()
    runner = Runner(
        TwitterConnector(_settings(api), stop), Delivery("twitter", publisher, state), _RUNTIME
    )
    later: list[str] = []

    def progress() -> bool:
        if not later and state.cursor("twitter") == first[-1]:
            later.extend(complaints(api, 2))
        return len(_keys(publisher)) == 9

    assert await _run_until(runner, stop, progress) == 0
    since = [r.params.get("since_id") for r in api.mention_requests()]
    assert since[:2] == [None, None]  # the first cycle: two pages, no cursor
    assert since[2] == first[-1]  # the second: since the newest id of the first
    assert sorted(_keys(publisher)) == sorted(first + later)
    assert state.cursor("twitter") == later[-1]


async def test_a_crash_in_the_middle_of_a_cycle_skips_nothing_and_repeats_nothing(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    ids = complaints(api, 12)
    crashed = TwitterConnector(_settings(api))
    delivery = Delivery("twitter", publisher, state)
    await crashed.open()
    await _step(crashed, delivery)
    await _step(crashed, delivery, confirm=False)  # acknowledged, then the process died
    assert state.cursor("twitter") is None
    newer = complaints(api, 1)

    stop = asyncio.Event()
    runner = Runner(TwitterConnector(_settings(api), stop), delivery, _RUNTIME)
    await _run_until(runner, stop, lambda: state.cursor("twitter") == newer[0])

    keys = _keys(publisher)
    assert sorted(keys) == sorted(ids + newer)  # all of them, each once
    restart = api.mention_requests()[2]
    assert "since_id" not in restart.params and "pagination_token" not in restart.params


async def test_rate_limit_is_waited_out_until_the_reset_time_then_the_cycle_goes_on(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    ids = complaints(api, 7)
    stop = asyncio.Event()
    connector = TwitterConnector(_settings(api), stop)
    runner = Runner(connector, Delivery("twitter", publisher, state), _RUNTIME)
    reset = [api.rate_limit_next(2, skip=1)]  # the second page

    def progress() -> bool:
        return state.cursor("twitter") == ids[-1]

    started = time.monotonic()
    assert await _run_until(runner, stop, progress) == 0
    sent = api.mention_requests()
    limited = next(i for i, r in enumerate(sent) if r.status == 429)
    retry = sent[limited + 1]
    assert retry.status == 200 and retry.at >= reset[0]  # waited for the window to reset
    assert retry.params["pagination_token"] == sent[limited].params["pagination_token"]
    assert sorted(_keys(publisher)) == sorted(ids)
    assert time.monotonic() - started < 10


async def test_a_long_rate_limit_wait_ends_when_the_connector_is_stopped(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    complaints(api, 1)
    api.rate_limit_next(600)
    stop = asyncio.Event()
    runner = Runner(
        TwitterConnector(_settings(api), stop), Delivery("twitter", publisher, state), _RUNTIME
    )
    started = time.monotonic()
    code = await _run_until(runner, stop, lambda: any(r.status == 429 for r in api.requests))
    assert code == 0 and time.monotonic() - started < 5
    assert _keys(publisher) == [] and state.cursor("twitter") is None


async def test_a_refused_token_stops_the_connector_with_exit_code_78_and_an_alarm(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    complaints(api, 2)
    stop = asyncio.Event()
    connector = TwitterConnector(_settings(api, token="revoked-token"), stop)
    runner = Runner(connector, Delivery("twitter", publisher, state), _RUNTIME)
    assert await asyncio.wait_for(runner.run(stop), timeout=10) == EXIT_CONFIG
    assert [r.status for r in api.requests] == [401]
    assert _keys(publisher) == []
    alarm = json.loads(publisher.on(ALARMS_TOPIC)[0].value)
    assert alarm["kind"] == "auth-failed" and alarm["connector"] == "twitter"


async def test_a_malformed_tweet_is_dead_lettered_with_its_bytes_and_the_loop_goes_on(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    good = complaints(api, 2)
    broken_id = str(api.next_id())
    broken = {"id": broken_id, "author_id": "1000000000001", "lang": "tr"}  # no text
    api.add_raw(int(broken_id), broken)
    api.add_raw(api.next_id(), ["not", "a", "tweet"])
    odd_id = str(api.next_id())
    odd = {"id": odd_id, "text": "@AdanaBld foto ekte", "attachments": "3_1"}
    api.add_raw(int(odd_id), odd)
    stop = asyncio.Event()
    runner = Runner(
        TwitterConnector(_settings(api), stop), Delivery("twitter", publisher, state), _RUNTIME
    )
    later: list[str] = []

    def progress() -> bool:
        if not later and len(publisher.on(DEADLETTER_TOPIC)) == 3:
            later.extend(complaints(api, 1))
        return bool(later) and later[0] in _keys(publisher)

    assert await _run_until(runner, stop, progress) == 0
    dead = publisher.on(DEADLETTER_TOPIC)
    assert len(dead) == 3  # each once: the cursor moved past them
    assert json.loads(dead[0].value) == odd and dead[0].key == odd_id
    assert json.loads(dead[1].value) == ["not", "a", "tweet"] and dead[1].key == ""
    assert dead[2].value == json.dumps(broken, ensure_ascii=False).encode()
    assert dead[2].key == broken_id
    headers = dict(dead[2].headers)
    assert headers[HEADER_PREFIX + "stage"] == b"connector.twitter"
    assert headers[HEADER_PREFIX + "source.user_id"] == ACCOUNT_ID.encode()
    assert b"has no text" in headers[HEADER_PREFIX + "exception.message"]
    assert sorted(_keys(publisher)) == sorted(good + later)
    assert state.cursor("twitter") == later[0]


async def test_the_raw_event_keeps_the_tweet_and_only_the_objects_it_references(
    api: FakeXApi, state: ConnectorState, publisher: MemoryPublisher
) -> None:
    plain = api.mention(COMPLAINTS[1], AUTHORS[1])
    rich = api.mention(COMPLAINTS[0], AUTHORS[0], photo=True, place=True)
    connector = TwitterConnector(_settings(api))
    await connector.open()
    batch = await connector.fetch(None)
    await connector.close()
    events = {r.key: RawEvent.from_bytes(r.value) for r in batch.records}
    assert batch.messages == 2 and batch.cursor == rich

    event = events[rich]
    assert event.channel == "twitter" and event.provider_id == rich
    assert event.payload["data"] == api.tweet(rich)  # as received
    includes = event.payload["includes"]
    assert [u["username"] for u in includes["users"]] == ["ayseyilmaz01"]
    assert includes["media"][0]["url"].startswith("https://pbs.twimg.com/media/")
    assert includes["places"][0]["full_name"] == "Seyhan, Türkiye"
    assert event.payload["mentions_of"] == ACCOUNT_ID
    assert event.attachments == ()  # photos stay URLs for now
    assert events[plain].payload["includes"] == {
        "users": [
            {
                "id": api.tweet(plain)["author_id"],
                "name": "Mehmet Demir",
                "username": "mdemir_adana",
            }
        ]
    }


async def test_server_errors_and_an_unreachable_host_are_retriable(api: FakeXApi) -> None:
    complaints(api, 1)
    connector = TwitterConnector(_settings(api))
    await connector.open()
    api.fail_next(503)
    with pytest.raises(SourceUnavailable) as failed:
        await connector.fetch(None)
    assert failed.value.retriable
    await connector.close()

    nowhere = TwitterSettings(
        bearer_token=TOKEN, user_id=ACCOUNT_ID, api_base_url=f"http://127.0.0.1:{free_port()}"
    )
    connector = TwitterConnector(nowhere)
    await connector.open()
    with pytest.raises(SourceUnavailable):
        await connector.fetch(None)
    await connector.close()


async def test_run_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert await run(settings, asyncio.Event()) == EXIT_CONFIG
    assert not (tmp_path / "connectors").exists()
