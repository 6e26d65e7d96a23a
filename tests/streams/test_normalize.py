import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.ids import is_tracking_number
from schemas.raw import RawEvent
from streams.errors import UnsupportedChannel
from streams.normalize import normalize, normalizer_for


def _raw(payload: dict, channel: str = "api") -> RawEvent:
    return RawEvent(
        channel=channel,
        provider_id="p-1",
        received_at=datetime(2026, 11, 22, 12, 0, tzinfo=timezone(timedelta(hours=3))),
        payload=payload,
    )


def test_api_submission_becomes_citizen_message() -> None:
    msg = normalize(
        _raw(
            {
                "source": "cimer",
                "subject": "İMAR KİRLİLİĞİ",
                "text": "  Karataş'ta   kaçak\nyapı var  ",
                "external_ref": "CMR-2026-ABC",
            }
        )
    )
    assert msg.message_id == "api:p-1"
    assert is_tracking_number(msg.tracking_number)
    assert msg.source == "cimer" and msg.external_ref == "CMR-2026-ABC"
    assert msg.text == "Karataş'ta   kaçak\nyapı var"
    assert msg.text_folded == "imar kirliliği karataş'ta kaçak yapı var"
    assert msg.received_at.tzinfo == UTC and msg.received_at.hour == 9


def test_invalid_submission_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        normalize(_raw({"source": "unknown", "text": ""}))


def test_channel_without_normalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "streams.normalizers.whatsapp", None)  # as if not there
    normalizer_for.cache_clear()
    try:
        with pytest.raises(UnsupportedChannel):
            normalize(_raw({"Body": "merhaba"}, channel="whatsapp"))
    finally:
        normalizer_for.cache_clear()
