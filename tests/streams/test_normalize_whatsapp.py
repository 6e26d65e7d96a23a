"""The WhatsApp normalizer: a Twilio webhook form (as stored in the raw event) → CitizenMessage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.common import AttachmentRef, GeoPoint
from schemas.ids import message_id, tracking_number
from schemas.raw import RawEvent
from streams.normalize import normalize
from streams.normalizers.whatsapp import normalize as normalize_whatsapp

SID = "SM0123456789abcdef0123456789abcdef"
PHOTO = AttachmentRef(sha256="a" * 64, size=357, content_type="image/jpeg", filename=f"{SID}-0.jpg")


def _raw(attachments: tuple[AttachmentRef, ...] = (), **fields: Any) -> RawEvent:
    payload = {
        "MessageSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "From": "whatsapp:+905321112233",
        "To": "whatsapp:+908502221530",
        "WaId": "905321112233",
        "ProfileName": "Mehmet Öztürk",
        "Body": "",
        "NumMedia": "0",
        "media": [],
        "media_failed": [],
    }
    payload.update(fields)
    return RawEvent(
        channel="whatsapp",
        provider_id=SID,
        received_at=datetime(2026, 11, 22, 12, 30, tzinfo=timezone(timedelta(hours=3))),
        payload={k: v for k, v in payload.items() if v is not None},
        attachments=attachments,
    )


def test_a_text_message_becomes_a_citizen_message() -> None:
    msg = normalize(_raw(Body="  Kozan'da   çöpler\ntoplanmadı  "))

    assert msg.message_id == message_id("whatsapp", SID) == f"whatsapp:{SID}"
    assert msg.tracking_number == tracking_number(msg.message_id)
    assert msg.channel == "whatsapp" and msg.source == "whatsapp"
    assert msg.text == "Kozan'da   çöpler\ntoplanmadı"
    assert msg.text_folded == "kozan'da çöpler toplanmadı"
    assert msg.citizen.name == "Mehmet Öztürk"
    assert msg.citizen.phone == "+905321112233"
    assert msg.received_at == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert msg.location is None and msg.attachments == ()
    assert not msg.public


def test_the_phone_falls_back_to_from_without_the_whatsapp_prefix() -> None:
    msg = normalize_whatsapp(_raw(Body="Merhaba", WaId=None, From="whatsapp:+905551112233"))

    assert msg.citizen.phone == "+905551112233"


def test_missing_name_and_number_are_none() -> None:
    msg = normalize_whatsapp(_raw(Body="Merhaba", WaId=None, From=None, ProfileName=""))

    assert msg.citizen.name is None and msg.citizen.phone is None


def test_a_photo_without_text_is_a_photo_placeholder_with_the_attachment() -> None:
    raw = _raw(
        attachments=(PHOTO,),
        NumMedia="1",
        MediaContentType0="image/jpeg",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/SM/Media/ME",
    )

    msg = normalize(raw)

    assert msg.text == "(fotoğraf)"
    assert msg.attachments == (PHOTO,)


def test_a_photo_that_could_not_be_stored_is_still_a_photo() -> None:
    raw = _raw(
        NumMedia="1",
        MediaContentType0="image/jpeg",
        media_failed=[{"index": 0, "content_type": "image/jpeg", "reason": "download_failed"}],
    )

    assert normalize(raw).text == "(fotoğraf)"


@pytest.mark.parametrize(
    ("kind", "text"),
    [("audio/ogg", "(ses kaydı)"), ("video/mp4", "(video)"), ("application/pdf", "(dosya)")],
)
def test_other_media_without_text_say_what_they_are(kind: str, text: str) -> None:
    assert normalize(_raw(NumMedia="1", MediaContentType0=kind)).text == text


def test_a_caption_is_the_text_of_a_photo() -> None:
    raw = _raw(attachments=(PHOTO,), NumMedia="1", MediaContentType0="image/jpeg", Body="Çukur")

    assert normalize(raw).text == "Çukur"


def test_a_location_pin_is_the_location_and_a_location_placeholder() -> None:
    raw = _raw(
        Latitude="37.0017",
        Longitude="35.3213",
        Address="Cumhuriyet Mah., Seyhan/Adana",
        Label="Seyhan Belediyesi",
    )

    msg = normalize(raw)

    assert msg.text == "(konum)"
    assert msg.location == GeoPoint(
        lat=37.0017,
        lon=35.3213,
        address="Cumhuriyet Mah., Seyhan/Adana",
        label="Seyhan Belediyesi",
    )


def test_a_location_with_text_keeps_the_text() -> None:
    msg = normalize(_raw(Body="Burada su borusu patladı", Latitude="37.0", Longitude="35.3"))

    assert msg.text == "Burada su borusu patladı"
    assert msg.location == GeoPoint(lat=37.0, lon=35.3)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [("abc", "35.3"), ("95", "35.3"), ("37.0", "nan"), ("37.0", None)],
    ids=["not-a-number", "out-of-range", "nan", "missing-lon"],
)
def test_bad_coordinates_are_dropped_but_the_address_kept(lat: str, lon: str | None) -> None:
    msg = normalize(_raw(Latitude=lat, Longitude=lon, Address="Ceyhan"))

    assert msg.location == GeoPoint(address="Ceyhan")


def test_bad_coordinates_alone_are_no_location() -> None:
    msg = normalize(_raw(Body="Merhaba", Latitude="abc", Longitude="xyz"))

    assert msg.location is None


def test_an_empty_message_has_empty_text() -> None:
    assert normalize(_raw()).text == ""
