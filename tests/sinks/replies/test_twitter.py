"""Public X replies through tweepy against a local API v2 server that checks the exact JSON
body and verifies the OAuth 1.0a HMAC-SHA1 signature with oauthlib; the public text."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import signature, utils
from pydantic import SecretStr

from schemas.common import Channel
from schemas.work import ReplyRequest
from sinks.replies.base import SendError
from sinks.replies.retry import send_with_retry
from sinks.replies.settings import ReplySettings
from sinks.replies.twitter import TwitterSender, public_text, tweet_length
from streams.pii import is_valid_tc_kimlik_no
from tests.integration.services import free_port
from tests.sinks.replies.conftest import TRACKING
from tests.sinks.replies.fakes import Answer, FakeApi, Seen

CONSUMER_KEY, CONSUMER_SECRET = (
    "xvz1evFS4wEEPTGEFPHBog",
    "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
)
ACCESS_TOKEN = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"
ACCESS_SECRET = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
CITIZEN_TWEET = "1890123456789012345"
HINT = "Ayrıntılar için DM gönderebilir veya Alo 153'ü arayabilirsiniz."
TCKN = "10000000146"
WITH_PERSONAL_DATA = (
    "Sayın Ayşe Yılmaz, Kiremithane Mahallesi'ndeki çöp konteynerleri değiştirildi. "
    "Sizi 0532 123 45 67 numaralı telefondan aradık. "
    "Ayrıntıları ayse.yilmaz@example.com adresine gönderdik. "
    f"T.C. kimlik numaranız {TCKN} ile kaydınız güncellendi. "
    "İlginiz için teşekkür ederiz."
)


def verify_oauth(seen: Seen, consumer_secret: str = CONSUMER_SECRET) -> bool:
    """Whether the request carries an OAuth 1.0a header of our keys, correctly signed."""
    header = seen.header("Authorization") or ""
    if not header.startswith("OAuth "):
        return False
    fields = dict(utils.parse_authorization_header(header))
    if (fields.get("oauth_consumer_key"), fields.get("oauth_token")) != (
        CONSUMER_KEY,
        ACCESS_TOKEN,
    ):
        return False
    if fields.get("oauth_signature_method") != "HMAC-SHA1":
        return False
    uri = f"http://{seen.header('Host')}{seen.path}"
    params = signature.collect_parameters(
        uri_query=urlsplit(seen.path).query, headers={"Authorization": header}
    )
    base = signature.signature_base_string(
        "POST", signature.base_string_uri(uri), signature.normalize_parameters(params)
    )
    keys = Client(CONSUMER_KEY, client_secret=consumer_secret, resource_owner_secret=ACCESS_SECRET)
    expected = signature.sign_hmac_sha1_with_client(base, keys)
    return bool(expected == utils.unescape(fields.get("oauth_signature", "")))


def x_like(seen: Seen) -> Answer:
    """201 with the new tweet for a correctly signed POST /2/tweets; X's errors otherwise."""
    if seen.path != "/2/tweets":
        return Answer(404, {"title": "Not Found Error", "detail": "no route", "status": 404})
    if not verify_oauth(seen):
        return Answer(401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401})
    text = json.loads(seen.body)["text"]
    return Answer(201, {"data": {"id": "1890999", "text": text, "edit_history_tweet_ids": []}})


@pytest.fixture
def x_api() -> Iterator[FakeApi]:
    with FakeApi(x_like) as api:
        yield api


def sender_for(url: str, consumer_secret: str = CONSUMER_SECRET) -> TwitterSender:
    settings = ReplySettings(
        twitter_consumer_key=SecretStr(CONSUMER_KEY),
        twitter_consumer_secret=SecretStr(consumer_secret),
        twitter_access_token=SecretStr(ACCESS_TOKEN),
        twitter_access_secret=SecretStr(ACCESS_SECRET),
        private_channel_hint=HINT,
        request_timeout_s=5.0,
    )
    return TwitterSender(settings, url)


def request(text: str = WITH_PERSONAL_DATA, **fields: object) -> ReplyRequest:
    values: dict[str, object] = {
        "reply_id": "r-x-1",
        "case_id": "case-0003",
        "channel": Channel.TWITTER,
        "recipient": "ayseyilmaz01",
        "text": text,
        "in_reply_to": f"twitter:{CITIZEN_TWEET}",
        "tracking_number": TRACKING,
        "kind": "answer",
    }
    values.update(fields)
    return ReplyRequest.model_validate(values)


def assert_no_personal_data(text: str) -> None:
    rest = text.replace(TRACKING, "")
    assert re.search(r"\d{2}", rest.replace("153", "")) is None, text
    for leak in ("Ayşe", "Yılmaz", "ayse", "@", "example.com", "ayseyilmaz01"):
        assert leak not in text, leak


async def test_public_reply_is_signed_threaded_and_free_of_personal_data(x_api: FakeApi) -> None:
    assert is_valid_tc_kimlik_no(TCKN)
    result = await sender_for(x_api.url).send(request())

    assert (result.provider_id, result.mode) == ("1890999", "public-reply")
    [seen] = x_api.seen
    assert (seen.method, seen.path) == ("POST", "/2/tweets")
    assert verify_oauth(seen)
    body = json.loads(seen.body)
    assert set(body) == {"text", "reply"}
    assert body["reply"] == {"in_reply_to_tweet_id": CITIZEN_TWEET}
    text = body["text"]
    assert "Kiremithane Mahallesi'ndeki çöp konteynerleri değiştirildi." in text
    assert "İlginiz için teşekkür ederiz." in text
    assert f"Takip no: {TRACKING}." in text and text.endswith(HINT)
    assert_no_personal_data(text)
    assert tweet_length(text) <= 280


async def test_wrong_keys_are_refused_permanently(x_api: FakeApi) -> None:
    with pytest.raises(SendError) as caught:
        await sender_for(x_api.url, consumer_secret="wrong-secret").send(request())
    assert caught.value.permanent and "401" in str(caught.value)


async def test_429_then_201_is_retried_within_the_backoff_bound(x_api: FakeApi) -> None:
    reset = {"x-rate-limit-reset": str(int(time.time()) + 3)}
    x_api.script.append(Answer(429, {"title": "Too Many Requests", "status": 429}, reset))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    outcome = await send_with_retry(
        sender_for(x_api.url),
        request(),
        attempts=3,
        backoff_initial_s=0.5,
        backoff_max_s=10.0,
        sleep=sleep,
    )
    assert outcome.ok and outcome.attempts == 2
    [waited] = sleeps
    assert 1.0 < waited <= 3.0  # the reset time, not the 0.5 s backoff
    assert len(x_api.seen) == 2 and x_api.seen[0].body == x_api.seen[1].body


async def test_403_is_permanent_and_not_retried(x_api: FakeApi) -> None:
    detail = "You are not allowed to create a Tweet with duplicate content."
    x_api.script.append(Answer(403, {"title": "Forbidden", "detail": detail, "status": 403}))
    outcome = await send_with_retry(
        sender_for(x_api.url), request(), attempts=4, backoff_initial_s=0.0, backoff_max_s=0.0
    )
    assert not outcome.ok and outcome.permanent and outcome.attempts == 1
    assert outcome.error is not None and "duplicate content" in str(outcome.error)
    assert len(x_api.seen) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(x_api: FakeApi, status: int) -> None:
    x_api.script.append(Answer(status, {"title": "Service Unavailable", "status": status}))
    with pytest.raises(SendError) as caught:
        await sender_for(x_api.url).send(request())
    assert not caught.value.permanent


async def test_unreachable_is_transient_and_no_tweet_id_is_permanent() -> None:
    sender = sender_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SendError) as caught:
        await sender.send(request())
    assert not caught.value.permanent
    for reference in (None, "whatsapp:SM123", "twitter:abc"):
        with pytest.raises(SendError) as caught:
            await sender.send(request(in_reply_to=reference))
        assert caught.value.permanent


def test_public_text_fits_280_and_keeps_links_whole() -> None:
    url = "https://www.adana.bel.tr/tr/duyurular/su-kesintisi-programi-2025-mayis"
    long_answer = ("Çukurova'da su şebekesi yenileme çalışmaları sürüyor. " * 12) + url
    text = public_text(long_answer, TRACKING, HINT)
    assert tweet_length(text) <= 280
    assert text.endswith(f"Takip no: {TRACKING}. {HINT}")
    assert "…" in text and "https://www" not in text  # cut before the link, not inside it
    short = public_text(f"Arıza giderildi: {url}", TRACKING, HINT)
    assert url in short and tweet_length(short) <= 280


def test_public_text_without_anything_publishable_falls_back() -> None:
    text = public_text("Sayın Ayşe Yılmaz, sizi 0532 123 45 67 numaradan arayacağız.", None, HINT)
    assert text == f"Başvurunuz yanıtlanmıştır. {HINT}"


def test_tweet_length_counts_like_x() -> None:
    assert tweet_length("çğıİöşü ÇĞÖŞÜ") == 13
    assert tweet_length("a https://a.co b") == 1 + 1 + 23 + 1 + 1
    assert tweet_length("adana.bel.tr") == 23  # a bare domain becomes a link on X
    assert tweet_length("🚰") == 2
    assert tweet_length("日本") == 4
