"""Mentions on X → citizen messages (a pure function over the stored API v2 payloads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.raw import RawEvent
from streams.errors import BadPayload
from streams.normalize import normalize
from streams.normalizers.twitter import strip_leading_mentions

ACCOUNT_ID = "2244994945153"
RECEIVED = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)


def _raw(tweet: dict[str, Any], **includes: list[dict[str, Any]]) -> RawEvent:
    payload = {"data": tweet, "includes": includes, "mentions_of": ACCOUNT_ID}
    return RawEvent(
        channel="twitter", provider_id=tweet["id"], received_at=RECEIVED, payload=payload
    )


def _tweet(text: str, **fields: Any) -> dict[str, Any]:
    mentions = [{"start": 0, "end": 9, "username": "AdanaBld", "id": ACCOUNT_ID}]
    if "@ASKIGenelMd" in text:
        mentions.append({"start": 10, "end": 22, "username": "ASKIGenelMd", "id": "99"})
    return {
        "id": "1861234567890123456",
        "text": text,
        "author_id": "1400000000000000001",
        "created_at": "2026-11-22T06:12:45.000Z",
        "lang": "tr",
        "entities": {"mentions": mentions},
        **fields,
    }


AUTHOR = {"id": "1400000000000000001", "name": "Ayşe Yılmaz", "username": "ayseyilmaz01"}


def test_a_mention_becomes_a_public_message_from_the_handle() -> None:
    text = "@AdanaBld Yüreğir Kiremithane'de 3 gündür çöpler alınmıyor, koku çekilmez oldu #Adana"
    msg = normalize(_raw(_tweet(text), users=[AUTHOR]))
    assert msg.message_id == "twitter:1861234567890123456"
    assert msg.text == "Yüreğir Kiremithane'de 3 gündür çöpler alınmıyor, koku çekilmez oldu #Adana"
    assert msg.text_folded.startswith("yüreğir kiremithane'de")
    assert msg.public is True and msg.source == "twitter" and msg.channel == "twitter"
    assert msg.citizen.name == "Ayşe Yılmaz" and msg.citizen.handle == "@ayseyilmaz01"
    assert msg.received_at == datetime(2026, 11, 22, 6, 12, 45, tzinfo=UTC)
    assert msg.location is None and msg.attachments == ()


def test_only_the_municipality_is_stripped_from_the_leading_mentions() -> None:
    text = "@AdanaBld @ASKIGenelMd Çukurova'da sabahtan beri su yok &amp; basınç düşük #susuzluk"
    msg = normalize(_raw(_tweet(text), users=[AUTHOR]))
    assert msg.text == "@ASKIGenelMd Çukurova'da sabahtan beri su yok & basınç düşük #susuzluk"


def test_a_mention_later_in_the_text_is_kept() -> None:
    text = "Seyhan'da lambalar yanmıyor @AdanaBld bakar mısınız"
    assert normalize(_raw(_tweet(text))).text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@adanabld\n\nKozan yolunda kanalizasyon taştı", "Kozan yolunda kanalizasyon taştı"),
        ("@AdanaBld'ye yazıyorum, cevap yok", "@AdanaBld'ye yazıyorum, cevap yok"),
        ("@ali @AdanaBld çukur var", "@ali çukur var"),
        ("@AdanaBld", ""),
    ],
)
def test_strip_leading_mentions(text: str, expected: str) -> None:
    assert strip_leading_mentions(text, {"AdanaBld"}) == expected


def test_a_place_gives_the_address_and_the_centre_of_its_box() -> None:
    place = {
        "id": "1e5c6bd5a2c2a0d1",
        "full_name": "Seyhan, Türkiye",
        "name": "Seyhan",
        "country_code": "TR",
        "geo": {"type": "Feature", "bbox": [35.19, 36.94, 35.39, 37.08], "properties": {}},
    }
    tweet = _tweet("@AdanaBld Reşatbey'de çukur", geo={"place_id": "1e5c6bd5a2c2a0d1"})
    msg = normalize(_raw(tweet, users=[AUTHOR], places=[place]))
    assert msg.location is not None
    assert msg.location.address == "Seyhan, Türkiye"
    assert msg.location.lat == pytest.approx(37.01) and msg.location.lon == pytest.approx(35.29)


def test_exact_coordinates_win_over_the_place_box() -> None:
    place = {"id": "p1", "full_name": "Adana, Türkiye", "geo": {"bbox": [35.0, 36.8, 35.6, 37.2]}}
    geo = {"place_id": "p1", "coordinates": {"type": "Point", "coordinates": [35.3213, 37.0017]}}
    msg = normalize(_raw(_tweet("@AdanaBld su borusu patladı", geo=geo), places=[place]))
    assert msg.location is not None
    assert (msg.location.lat, msg.location.lon) == (37.0017, 35.3213)
    assert msg.location.address == "Adana, Türkiye"


def test_a_place_without_a_box_gives_only_the_address() -> None:
    place = {"id": "p2", "full_name": "Ceyhan, Türkiye"}
    msg = normalize(_raw(_tweet("@AdanaBld köprü", geo={"place_id": "p2"}), places=[place]))
    assert msg.location is not None and msg.location.lat is None
    assert msg.location.address == "Ceyhan, Türkiye"


def test_without_author_or_time_the_message_still_normalizes() -> None:
    tweet = _tweet("@AdanaBld otobüs gelmedi")
    del tweet["created_at"]
    msg = normalize(_raw(tweet))
    assert msg.citizen.name is None and msg.citizen.handle is None
    assert msg.received_at == RECEIVED


def test_a_payload_without_a_tweet_is_refused() -> None:
    raw = RawEvent(channel="twitter", provider_id="1", received_at=RECEIVED, payload={"x": 1})
    with pytest.raises(BadPayload):
        normalize(raw)
