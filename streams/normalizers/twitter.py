"""Mentions of the municipality's X account (``intake.raw.twitter``).

The payload is ``{"data": tweet, "includes": {"users", "media", "places", "tweets"},
"mentions_of": account id}`` in the API v2 shapes (see ``connectors.twitter``). A mention is a
public post, so the message is marked ``public`` and routing also sends it to review.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from schemas.common import CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.errors import BadPayload
from streams.normalizers.common import build_message

__all__ = ["normalize", "strip_leading_mentions"]

_LEADING_MENTION = re.compile(r"\s*@([A-Za-z0-9_]{1,15})(?=\s|$)")


def strip_leading_mentions(text: str, handles: set[str]) -> str:
    """``text`` without the @mentions of ``handles`` (case-insensitive) in its leading run of
    mentions; other accounts in that run, and everything after it, are kept."""
    wanted = {h.lower() for h in handles}
    kept: list[str] = []
    pos = 0
    while match := _LEADING_MENTION.match(text, pos):
        if match.group(1).lower() not in wanted:
            kept.append("@" + match.group(1))
        pos = match.end()
    return " ".join([*kept, text[pos:].strip()]).strip()


def _first(includes: dict[str, Any], kind: str, key: str, value: Any) -> dict[str, Any] | None:
    for item in includes.get(kind) or []:
        if isinstance(item, dict) and value is not None and item.get(key) == value:
            return item
    return None


def _account_handles(tweet: dict[str, Any], account_id: Any) -> set[str]:
    mentions = (tweet.get("entities") or {}).get("mentions") or []
    return {
        str(m["username"])
        for m in mentions
        if isinstance(m, dict) and "username" in m and account_id and m.get("id") == account_id
    }


def _location(tweet: dict[str, Any], place: dict[str, Any] | None) -> GeoPoint | None:
    lat = lon = None
    point = (tweet.get("geo") or {}).get("coordinates") or {}
    bbox = ((place or {}).get("geo") or {}).get("bbox")
    if point.get("type") == "Point" and len(point.get("coordinates") or []) == 2:
        lon, lat = (float(c) for c in point["coordinates"])
    elif isinstance(bbox, list) and len(bbox) == 4:
        west, south, east, north = (float(c) for c in bbox)
        lat, lon = (south + north) / 2, (west + east) / 2
    address = (place or {}).get("full_name")
    if lat is None and not address:
        return None
    return GeoPoint(lat=lat, lon=lon, address=address)


def normalize(raw: RawEvent) -> CitizenMessage:
    """A mention as a public citizen message from ``@username``."""
    tweet = raw.payload.get("data")
    includes = raw.payload.get("includes") or {}
    if not isinstance(tweet, dict) or not isinstance(tweet.get("text"), str):
        raise BadPayload("the twitter payload has no tweet with text")
    author = _first(includes, "users", "id", tweet.get("author_id"))
    place = _first(includes, "places", "id", (tweet.get("geo") or {}).get("place_id"))
    handles = _account_handles(tweet, raw.payload.get("mentions_of"))
    citizen = CitizenContact()
    if author is not None:
        username = author.get("username")
        citizen = CitizenContact(
            name=author.get("name"), handle=f"@{username}" if username else None
        )
    created = tweet.get("created_at")
    return build_message(
        raw,
        text=strip_leading_mentions(html.unescape(tweet["text"]), handles),
        source="twitter",
        received_at=datetime.fromisoformat(created) if created else raw.received_at,
        citizen=citizen,
        location=_location(tweet, place),
        public=True,
    )
