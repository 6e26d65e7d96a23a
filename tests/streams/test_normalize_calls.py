"""Call records (``intake.raw.calls``) → ``CitizenMessage``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.ids import is_tracking_number
from schemas.raw import RawEvent
from streams.normalize import normalize
from streams.normalizers.calls import parse_call_time, parse_flag

RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CALL: dict[str, Any] = {
    "call_id": "1772431331.1021",
    "caller": "0555 000 10 10",
    "start": "2026-03-02 09:02:11",
    "end": "2026-03-02 09:06:07",
    "operator": "op-1532",
    "queue": "genel",
    "category": "Su arızası",
    "notes": "  Sabahtan beri mahallede   su yok.  ",
    "address": "Reşatbey Mah. 62003 Sk. No:7, Seyhan",
    "resolved": "hayır",
}


def _raw(payload: dict[str, Any]) -> RawEvent:
    return RawEvent(
        channel="calls",
        provider_id=str(payload.get("call_id", "x")),
        received_at=RECEIVED,
        payload=payload,
    )


def test_a_routed_call_becomes_a_citizen_message() -> None:
    msg = normalize(_raw(CALL))

    assert msg.message_id == "calls:1772431331.1021" and is_tracking_number(msg.tracking_number)
    assert msg.channel == "calls" and msg.source == "alo153"
    assert msg.subject == "Su arızası"
    assert msg.text == "Sabahtan beri mahallede   su yok."
    assert msg.text_folded == "su arızası sabahtan beri mahallede su yok."
    assert msg.citizen.phone == "0555 000 10 10" and msg.citizen.name is None
    assert msg.location is not None and msg.location.address == CALL["address"]
    assert msg.received_at == datetime(2026, 3, 2, 6, 2, 11, tzinfo=UTC)  # Istanbul is UTC+3
    assert msg.resolved_on_line is False


@pytest.mark.parametrize("flag", ["evet", "EVET", "true", "1", "Evet "])
def test_a_call_resolved_on_the_line_says_so(flag: str) -> None:
    assert normalize(_raw({**CALL, "resolved": flag})).resolved_on_line is True


def test_without_notes_the_category_is_the_text_and_without_a_flag_it_is_not_resolved() -> None:
    payload = {k: v for k, v in CALL.items() if k not in ("notes", "resolved", "address")}

    msg = normalize(_raw(payload))

    assert msg.text == "Su arızası" and msg.subject is None
    assert msg.location is None and msg.resolved_on_line is False


def test_received_at_falls_back_to_the_cdr_start_then_to_the_raw_event() -> None:
    without_start = {k: v for k, v in CALL.items() if k != "start"}
    joined = {**without_start, "cdr": {"start": "2026-03-02 09:01:50", "disposition": "ANSWERED"}}

    assert normalize(_raw(joined)).received_at == datetime(2026, 3, 2, 6, 1, 50, tzinfo=UTC)
    assert normalize(_raw(without_start)).received_at == RECEIVED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02 09:02:11", datetime(2026, 3, 2, 6, 2, 11, tzinfo=UTC)),
        ("2026-03-02T09:02:11+03:00", datetime(2026, 3, 2, 6, 2, 11, tzinfo=UTC)),
        ("2026-03-02T06:02:11Z", datetime(2026, 3, 2, 6, 2, 11, tzinfo=UTC)),
        ("02.03.2026 09:02", datetime(2026, 3, 2, 6, 2, tzinfo=UTC)),
        ("02/03/2026 09:02:11", datetime(2026, 3, 2, 6, 2, 11, tzinfo=UTC)),
        ("2016-01-15 09:00:00", datetime(2016, 1, 15, 7, 0, tzinfo=UTC)),  # UTC+2 back then
    ],
)
def test_call_times_are_istanbul_local_unless_they_say_otherwise(
    text: str, expected: datetime
) -> None:
    assert parse_call_time(text) == expected
    assert parse_call_time(text).tzinfo == UTC


@pytest.mark.parametrize("text", ["dün", "32.03.2026 09:00", "", "09:02"])
def test_a_time_that_cannot_be_read_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_call_time(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("evet", True), ("E", True), ("HAYIR", False), ("hayir", False), ("0", False), ("", False)],
)
def test_flags_in_turkish_or_english(text: str, expected: bool) -> None:
    assert parse_flag(text) is expected


def test_an_unknown_flag_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_flag("belki")
