"""Public replies on X (Twitter): the answer without any personal data, and where to ask more.

A reply on X is public, so what goes out is built by :func:`public_text`: the salutation
(which names the citizen) is dropped, and so is every sentence in which personal data is
found (phone, e-mail, T.C. kimlik no, IBAN, any long number): masked fragments would still
say too much in public. What is left gets the tracking number and the private-channel hint
(:attr:`ReplySettings.private_channel_hint`) and is cut to fit 280 characters as X counts
them (:func:`tweet_length`). The citizen's handle is not written: X addresses a reply to the
author of the tweet it answers.

tweepy's client posts with OAuth 1.0a user context (the account's own keys) through
``connectors.twitter``'s host-rewriting session, so tests point it at a local server.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from typing import Any

import requests
import tweepy

from connectors.twitter import REQUEST_TIMEOUT_S, _HostSession
from schemas.common import Channel
from schemas.work import ReplyRequest
from sinks.replies.base import SendError, SendResult, collapse, provider_reference, redact
from sinks.replies.settings import ReplySettings

__all__ = ["TWEET_MAX", "URL_WEIGHT", "TwitterSender", "public_text", "tweet_length"]

#: X's limit for a tweet of a standard account, in weighted characters.
TWEET_MAX = 280
#: What X counts for any link, whatever its length.
URL_WEIGHT = 23
#: When nothing of the answer can be published.
FALLBACK = "Başvurunuz yanıtlanmıştır."
# A greeting names the citizen: "Sayın Ayşe Yılmaz," / "Sn. …:" / "Merhaba Ayşe Hanım!".
_GREETING = r"\s*(?:(?:say[ıiIİ]n|merhaba|de[ğg]erli|sevgili)\b|sn\.)"
_SALUTATION = re.compile("^" + _GREETING + r"[^\n,:;!]{0,80}[,:;!\n]\s*", re.IGNORECASE)
_GREETING_START = re.compile(_GREETING, re.IGNORECASE)
# Anything X may turn into a link: with a scheme, or a bare domain (adana.bel.tr/x).
_URL = re.compile(
    r"(?:https?://\S+|(?<![\w@.])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:/\S*)?)", re.IGNORECASE
)
# A sentence ends at . ! ? … and a space, but not after an initial ("T.C. 1…" is one).
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\b\w\.)\s+|\n+")
# Code points X counts once (twitter-text v3 config); everything else counts twice.
_SINGLE = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def tweet_length(text: str) -> int:
    """The weighted length X checks against 280 (links as at least 23), erring on the long
    side: a bare domain counts as a link too."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in _URL.finditer(text):
        total += _weight(text[position : match.start()]) + max(URL_WEIGHT, len(match.group()))
        position = match.end()
    return total + _weight(text[position:])


def _weight(text: str) -> int:
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in _SINGLE) else 2 for c in text)


def public_text(
    text: str, tracking_number: str | None, hint: str, *, limit: int = TWEET_MAX
) -> str:
    """The text of a public reply: no salutation, no sentence with personal data, then the
    tracking number and ``hint``; the answer is shortened (at a word) to fit ``limit``."""
    body = _SALUTATION.sub("", text.strip(), count=1)
    kept = [collapse(s) for s in _SENTENCE_END.split(body) if _publishable(s)]
    answer = " ".join(kept) or FALLBACK
    if answer[-1] not in ".!?…":
        answer += "."
    tail = collapse(hint)
    whole = f"{answer} {tail}"
    if tracking_number and tracking_number in answer and tweet_length(whole) <= limit:
        return unicodedata.normalize("NFC", whole)
    if tracking_number:
        tail = f"Takip no: {tracking_number}. {tail}"
    budget = limit - tweet_length(tail) - 1
    if tweet_length(answer) > budget:
        answer = _shorten(answer, budget)
    return unicodedata.normalize("NFC", f"{answer} {tail}" if answer else tail)


def _publishable(sentence: str) -> bool:
    """Whether a sentence can be published: not a greeting, no personal data, no address."""
    if not sentence.strip() or _GREETING_START.match(sentence):
        return False
    return "@" not in sentence and redact(sentence) == collapse(sentence)


def _shorten(text: str, budget: int) -> str:
    """``text`` cut at a word so that it and an ellipsis fit ``budget``; a link is kept whole
    or left out."""
    # Every character weighs at least 1, so nothing past ``budget`` characters can stay.
    words = text[: budget + 1].split(" ")
    if len(text) > budget + 1:
        words.pop()  # possibly cut in the middle
    while words and tweet_length(" ".join(words) + "…") > budget:
        words.pop()
    return (" ".join(words).rstrip(" ,;:") + "…") if words else ""


class TwitterSender:
    """Posts replies to the citizen's tweet from the municipality's account."""

    channel = Channel.TWITTER

    def __init__(self, settings: ReplySettings, api_base_url: str | None = None) -> None:
        if not settings.twitter_configured:
            raise ValueError("X replies need the consumer key/secret and access token/secret")
        self.settings = settings
        secrets = [
            s.get_secret_value() if s is not None else ""
            for s in (
                settings.twitter_consumer_key,
                settings.twitter_consumer_secret,
                settings.twitter_access_token,
                settings.twitter_access_secret,
            )
        ]
        self._client = tweepy.Client(
            consumer_key=secrets[0],
            consumer_secret=secrets[1],
            access_token=secrets[2],
            access_token_secret=secrets[3],
            return_type=dict,
            wait_on_rate_limit=False,
        )
        self._client.session = _HostSession(
            api_base_url, min(settings.request_timeout_s, REQUEST_TIMEOUT_S)
        )

    async def send(self, request: ReplyRequest) -> SendResult:
        """Reply to the tweet named by ``in_reply_to`` with the public-safe text."""
        if request.channel is not Channel.TWITTER:
            raise SendError(f"not an X reply: {request.channel}", permanent=True)
        tweet_id = provider_reference(request)
        if tweet_id is None or not tweet_id.isdigit():
            raise SendError("an X reply needs the id of the citizen's tweet", permanent=True)
        text = public_text(
            request.text, request.tracking_number, self.settings.private_channel_hint
        )
        answer = await asyncio.to_thread(self._post, text, tweet_id)
        data = answer.get("data") if isinstance(answer, dict) else None
        posted = data.get("id") if isinstance(data, dict) else None
        if not isinstance(posted, str) or not posted:
            raise SendError("X accepted the reply without a tweet id", permanent=False)
        return SendResult(posted, "public-reply")

    async def close(self) -> None:
        """Close the HTTP session."""
        self._client.session.close()

    def _post(self, text: str, tweet_id: str) -> Any:
        try:
            return self._client.create_tweet(text=text, in_reply_to_tweet_id=tweet_id)
        except tweepy.TooManyRequests as exc:
            wait = exc.reset_time - time.time() if exc.reset_time else None
            raise SendError(
                f"X rate limit: {_one_line(exc)}", permanent=False, retry_after_s=wait
            ) from None
        except (tweepy.BadRequest, tweepy.Unauthorized, tweepy.Forbidden, tweepy.NotFound) as exc:
            raise SendError(f"X refused the reply: {_one_line(exc)}", permanent=True) from None
        except tweepy.HTTPException as exc:  # 5xx and anything unexpected
            raise SendError(f"X API error: {_one_line(exc)}", permanent=False) from None
        except (requests.RequestException, ValueError) as exc:  # network, or a body not JSON
            raise SendError(f"X API unreachable: {type(exc).__name__}", permanent=False) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
