"""Mentions of the municipality's X (Twitter) account, read with tweepy from the API v2.

Each cycle reads ``GET /2/users/:id/mentions`` after the saved ``since_id``, newest first,
following ``meta.next_token`` page by page. Every page is delivered on its own with no cursor;
only the cycle's last page carries the new ``since_id`` (the first page's ``meta.newest_id``),
so a crash in the middle of a cycle re-reads it from the old cursor, and the tweets already on
the topic are dropped by ``Delivery``'s published-id filter. The pagination state advances in
``confirm``, after Kafka acknowledged the page, never in ``fetch``.

tweepy is blocking, so its calls run in a thread; ``wait_on_rate_limit`` is off because a 429
is waited out here, until ``x-rate-limit-reset``, in a way the stop event can interrupt.
Photos stay as URLs in the payload: they are not downloaded into the blob store yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import tweepy

from connectors.errors import AuthenticationFailed, RateLimited, SourceUnavailable
from connectors.runtime import EXIT_CONFIG, Batch, dead_record, raw_record, run_connector
from connectors.state import OutRecord
from infra.settings import Settings, TwitterSettings
from schemas.common import Channel, utc_now
from schemas.raw import RawEvent

__all__ = ["MALFORMED", "TWEEPY_HOST", "TwitterConnector", "mention_event", "run"]

log = logging.getLogger(__name__)

#: The host tweepy 4.x writes into every request URL (``BaseClient.request``).
TWEEPY_HOST = "https://api.twitter.com"
#: Seconds before a request to the API is abandoned (tweepy sets no timeout of its own).
REQUEST_TIMEOUT_S = 30.0
#: Longest wait for a rate-limit window (X's windows are 15 minutes).
RATE_LIMIT_MAX_WAIT_S = 15 * 60.0
#: Wait when a 429 comes without ``x-rate-limit-reset``.
RATE_LIMIT_DEFAULT_WAIT_S = 60.0
#: Added to the reset time: the provider's clock and ours are not the same clock.
RATE_LIMIT_MARGIN_S = 1.0
#: 429s in a row, each waited out, before the runner's own backoff takes over.
RATE_LIMIT_RETRIES = 3

#: What a tweet object of an unexpected shape raises while it is turned into a raw event.
MALFORMED = (ValueError, TypeError, AttributeError, KeyError)

EXPANSIONS = ["author_id", "attachments.media_keys", "geo.place_id", "referenced_tweets.id"]
TWEET_FIELDS = [
    "created_at",
    "lang",
    "conversation_id",
    "in_reply_to_user_id",
    "geo",
    "entities",
    "referenced_tweets",
]
USER_FIELDS = ["username", "name", "location"]
MEDIA_FIELDS = ["url", "preview_image_url", "type", "width", "height"]
PLACE_FIELDS = ["full_name", "geo", "country_code", "name"]


class _HostSession(requests.Session):
    """A requests session that sends tweepy's ``api.twitter.com`` URLs to ``base_url`` instead
    (a local server in tests, a proxy in production), with a timeout on every request."""

    def __init__(self, base_url: str | None, timeout_s: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = timeout_s

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        if self.base_url and url.startswith(TWEEPY_HOST + "/"):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


class _XClient(tweepy.Client):
    """tweepy's API v2 client, answering plain JSON dicts, on a configurable host."""

    def __init__(self, bearer_token: str, base_url: str | None) -> None:
        super().__init__(bearer_token=bearer_token, return_type=dict, wait_on_rate_limit=False)
        self.session = _HostSession(base_url, REQUEST_TIMEOUT_S)


@dataclass(frozen=True)
class _Cycle:
    """Where a pagination run stands: what it started from, where it ends, the next page."""

    since_id: str | None
    newest_id: str
    next_token: str


def _by(items: Any, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(i[key]): i for i in items if isinstance(i, dict) and key in i}


def mention_event(
    tweet: Any, includes: dict[str, Any], user_id: str, received_at: datetime
) -> RawEvent:
    """The raw event of one tweet: ``{"data": tweet, "includes": …}`` with only the author,
    media, place and referenced tweets it points at (the API v2 shapes, as received), plus
    ``mentions_of``: the account whose mentions were read. Raises one of ``MALFORMED``."""
    if not isinstance(tweet, dict):
        raise ValueError(f"tweet is a {type(tweet).__name__}, not an object")
    tweet_id, text = tweet.get("id"), tweet.get("text")
    if not isinstance(tweet_id, str) or not tweet_id.isdigit():
        raise ValueError(f"tweet id {tweet_id!r} is not a numeric string")
    if not isinstance(text, str):
        raise ValueError(f"tweet {tweet_id} has no text")
    created = tweet.get("created_at")
    if created is not None and datetime.fromisoformat(created).tzinfo is None:
        raise ValueError(f"tweet {tweet_id} has a created_at without a time zone")
    users = _by(includes.get("users"), "id")
    media = _by(includes.get("media"), "media_key")
    places = _by(includes.get("places"), "id")
    tweets = _by(includes.get("tweets"), "id")
    media_keys = (tweet.get("attachments") or {}).get("media_keys") or []
    place_id = (tweet.get("geo") or {}).get("place_id")
    referenced = [r.get("id") for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)]
    picked = {
        "users": [users[a] for a in [tweet.get("author_id")] if a in users],
        "media": [media[k] for k in media_keys if k in media],
        "places": [places[p] for p in [place_id] if p in places],
        "tweets": [tweets[t] for t in referenced if t in tweets],
    }
    return RawEvent(
        channel=Channel.TWITTER,
        provider_id=tweet_id,
        received_at=received_at,
        payload={
            "data": tweet,
            "includes": {k: v for k, v in picked.items() if v},
            "mentions_of": user_id,
        },
    )


class TwitterConnector:
    """Reads the mentions of ``settings.user_id``; the runner saves ``since_id`` after Kafka."""

    name = "twitter"
    channel = Channel.TWITTER

    def __init__(
        self,
        settings: TwitterSettings,
        stop: asyncio.Event | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not settings.configured:
            raise ValueError("the Twitter connector needs a bearer token and a user id")
        self.settings = settings
        self.user_id = str(settings.user_id)
        self._stop = stop or asyncio.Event()
        self._clock = clock
        self._client: _XClient | None = None
        self._cycle: _Cycle | None = None

    async def open(self) -> None:
        """Build the client; credentials are checked by the first request (401 → refused)."""
        token = self.settings.bearer_token
        assert token is not None  # checked by ``configured``
        self._client = _XClient(token.get_secret_value(), self.settings.api_base_url)

    async def close(self) -> None:
        """Drop the client and any pagination run (the next one restarts from the cursor)."""
        client, self._client, self._cycle = self._client, None, None
        if client is not None:
            client.session.close()

    async def wait(self) -> None:
        """Poll again after the configured interval."""
        await asyncio.sleep(self.settings.poll_interval_s)

    async def confirm(self, batch: Batch) -> None:
        """The page is durable: move on to the next page, or end the cycle."""
        self._cycle = batch.token

    async def fetch(self, cursor: str | None) -> Batch:
        """The next page of mentions after ``cursor`` (the saved since_id)."""
        cycle = self._cycle if self._cycle and self._cycle.since_id == cursor else None
        page = await self._page(cursor, cycle.next_token if cycle else None)
        data, includes, meta = page.get("data") or [], page.get("includes") or {}, page.get("meta")
        if not isinstance(data, list) or not isinstance(includes, dict):
            raise SourceUnavailable("the mentions response is not in the API v2 shape")
        meta = meta if isinstance(meta, dict) else {}
        for error in page.get("errors") or []:
            log.info("twitter: partial error in the response: %s", error)
        now = self._clock()
        records: list[OutRecord] = []
        good = 0
        for tweet in data:
            try:
                records.append(raw_record(mention_event(tweet, includes, self.user_id, now)))
                good += 1
            except MALFORMED as exc:
                records.append(self._dead(tweet, exc, now, cursor))
        newest = cycle.newest_id if cycle else _newest(meta, data)
        next_token = meta.get("next_token")
        if next_token and data and newest is not None:
            step = _Cycle(cursor, newest, str(next_token))
            return Batch(records, cursor=None, messages=good, more=True, token=step)
        return Batch(records, cursor=newest, messages=good, more=False, token=None)

    def _dead(self, tweet: Any, exc: Exception, now: datetime, cursor: str | None) -> OutRecord:
        raw = json.dumps(tweet, ensure_ascii=False).encode("utf-8")
        key = tweet.get("id") if isinstance(tweet, dict) else None
        log.warning("twitter: malformed tweet sent to the dead-letter topic: %s", exc)
        return dead_record(
            self.name,
            key if isinstance(key, str) else None,
            raw,
            exc,
            now,
            user_id=self.user_id,
            since_id=cursor or "",
        )

    async def _page(self, since_id: str | None, token: str | None) -> dict[str, Any]:
        """One page; a 429 is waited out until its reset, unless the connector is stopped."""
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(self._request, since_id, token)
            except RateLimited as exc:
                attempt += 1
                if attempt > RATE_LIMIT_RETRIES or self._stop.is_set():
                    raise
                delay = _rate_limit_delay(exc.reset_at, time.time())
                log.warning("twitter: rate limited; waiting %.0f s for the window to reset", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    raise

    def _request(self, since_id: str | None, token: str | None) -> dict[str, Any]:
        """One blocking API call, its failures translated into connector errors."""
        client = self._client
        if client is None:
            raise SourceUnavailable("the Twitter client is not open")
        try:
            page = client.get_users_mentions(
                id=self.user_id,
                since_id=since_id,
                pagination_token=token,
                max_results=self.settings.page_size,
                expansions=EXPANSIONS,
                tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS,
                media_fields=MEDIA_FIELDS,
                place_fields=PLACE_FIELDS,
            )
        except tweepy.TooManyRequests as exc:
            raise RateLimited(f"rate limited: {_one_line(exc)}", reset_at=exc.reset_time) from exc
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            raise AuthenticationFailed(f"X API refused the bearer token: {_one_line(exc)}") from exc
        except tweepy.HTTPException as exc:
            raise SourceUnavailable(f"X API error: {_one_line(exc)}") from exc
        except (requests.RequestException, ValueError) as exc:  # network, or a body not JSON
            raise SourceUnavailable(f"X API unreachable: {type(exc).__name__}: {exc}") from exc
        if not isinstance(page, dict):
            raise SourceUnavailable("the mentions response is not a JSON object")
        return page


def _one_line(exc: BaseException) -> str:
    """tweepy puts the API's error details on lines of their own."""
    return " ".join(str(exc).split())


def _newest(meta: dict[str, Any], data: list[Any]) -> str | None:
    """The cycle's new since_id: ``meta.newest_id``, else the largest tweet id on the page."""
    newest = meta.get("newest_id")
    if isinstance(newest, str) and newest.isdigit():
        return newest
    ids = [t["id"] for t in data if isinstance(t, dict) and str(t.get("id", "")).isdigit()]
    return str(max(ids, key=int)) if ids else None


def _rate_limit_delay(reset_at: float | None, now: float) -> float:
    """Seconds to wait for a rate-limit window, bounded."""
    if reset_at is None:
        return RATE_LIMIT_DEFAULT_WAIT_S
    return min(max(reset_at - now, 0.0) + RATE_LIMIT_MARGIN_S, RATE_LIMIT_MAX_WAIT_S)


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """``intake connector twitter``: 0 when stopped, ``EXIT_CONFIG`` (78) when it is not
    configured or the token is refused."""
    section = settings.connectors.twitter
    if not section.configured:
        log.error("twitter: set INTAKE_CONNECTORS__TWITTER__BEARER_TOKEN and __USER_ID")
        return EXIT_CONFIG
    # tweepy logs request headers (the bearer token) and tweets at DEBUG.
    logging.getLogger("tweepy").setLevel(max(logging.INFO, logging.getLogger().level))
    return await run_connector(TwitterConnector(section, stop), settings, stop)
