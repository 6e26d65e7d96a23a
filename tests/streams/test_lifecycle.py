"""The legal clock of a new case, and what a unit's answer sets in motion (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.case import CaseEventKind, Classification, MessageType, UnitResponse
from schemas.common import AttachmentRef, Channel, CitizenContact
from schemas.ids import message_id, tracking_number
from schemas.message import CitizenMessage
from sinks.store import CaseRecord, CaseStatus
from sinks.store.records import CaseReport
from streams.deadlines import ISTANBUL, Basis, DeadlineSettings, WorkingCalendar
from streams.lifecycle import (
    ResponseRefused,
    basis_for,
    handle_response,
    reply_address,
)
from streams.routing import open_case, route_case

CAL = WorkingCalendar(DeadlineSettings(unit_targets={"su-kanalizasyon": 3}))
RECEIVED = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # Monday 10:00 in Adana
CASE_ID = tracking_number(message_id("whatsapp", "SM1"))
COLLAGE = AttachmentRef(sha256="c" * 64, size=1000, content_type="image/jpeg")


def _msg(channel: str = "whatsapp", source: str | None = None) -> CitizenMessage:
    mid = message_id(channel, "p1")
    return CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel=channel,
        source=source,
        received_at=RECEIVED,
        text="Reşatbey'de su borusu patladı",
        text_folded="reşatbey'de su borusu patladı",
        citizen=CitizenContact(phone="+905321112233"),
    )


def _cls(type_: MessageType = MessageType.SIKAYET) -> Classification:
    return Classification(unit="su-kanalizasyon", type=type_, confidence=0.9, method="test")


def _case(type_: MessageType = MessageType.SIKAYET) -> CaseRecord:
    return CaseRecord(
        case_id=CASE_ID,
        tracking_number=CASE_ID,
        channel=Channel.WHATSAPP,
        source=None,
        unit="su-kanalizasyon",
        type=type_,
        urgency=None,
        district="seyhan",
        responsible=None,
        status=CaseStatus.OPEN,
        received_at=RECEIVED,
        created_at=RECEIVED,
        updated_at=RECEIVED,
        due=None,
        subject=None,
        text="Reşatbey'de su borusu patladı, ara: 0532 111 22 33",
        citizen=CitizenContact(phone="+905321112233"),
        location=None,
        attachments=(),
    )


def _report(channel: Channel, pid: str, contact: CitizenContact, hours: int = 0) -> CaseReport:
    return CaseReport(
        message_id=message_id(channel, pid),
        case_id=CASE_ID,
        tracking_number=CASE_ID,
        channel=channel,
        received_at=RECEIVED + timedelta(hours=hours),
        subject="Su arızası" if channel is Channel.EMAIL else None,
        citizen=contact,
    )


def _response(status: str, at: datetime, answer: str = "Boru değiştirildi.") -> UnitResponse:
    return UnitResponse(
        case_id=CASE_ID, unit="su-kanalizasyon", status=status, answer=answer, responded_at=at
    )


@pytest.mark.parametrize(
    ("channel", "source", "type_", "basis"),
    [
        ("whatsapp", None, MessageType.BILGI_EDINME, Basis.BILGI_EDINME),
        ("api", "cimer", MessageType.SIKAYET, Basis.CIMER),
        ("email", None, MessageType.TALEP, Basis.DILEKCE),
        ("whatsapp", None, MessageType.SIKAYET, Basis.SIKAYET),
        ("calls", "alo153", MessageType.SIKAYET, Basis.SIKAYET),
    ],
)
def test_legal_basis_of_a_new_case(channel: str, source: str | None, type_, basis) -> None:
    assert basis_for(_msg(channel, source), _cls(type_)) is basis


def test_routing_starts_the_clock_with_rule_and_calendar() -> None:
    created = open_case(_msg(), _cls())
    routing = route_case(created, RECEIVED, 0.0, CAL)
    item = routing.work_item
    assert item is not None and item.due is not None
    # The unit's target is 3 working days: Mon 16 Nov → Thu 19 Nov, end of day in Adana.
    assert item.due.astimezone(ISTANBUL).date() == date(2026, 11, 19)
    routed = routing.events[0]
    assert routed.due == item.due
    assert routed.note is not None and "3 iş günü" in routed.note and "takvim" in routed.note
    assert route_case(created, RECEIVED, 0.0).work_item.due is None  # type: ignore[union-attr]


def test_answer_goes_to_every_reporter_on_their_own_channel() -> None:
    ayse = CitizenContact(phone="+905321112233")
    reports = [
        _report(Channel.WHATSAPP, "SM1", ayse),
        _report(
            Channel.WHATSAPP, "SM2", ayse, hours=30
        ),  # she wrote again: one reply, later window
        _report(Channel.EMAIL, "m1@x", CitizenContact(email="mehmet@example.com"), 1),
        _report(Channel.TWITTER, "1901", CitizenContact(handle="@veli"), 2),
        _report(Channel.CALLS, "c1", CitizenContact(phone="+903221234567"), 3),
        _report(Channel.API, "f1", CitizenContact(name="Adsız")),  # no address: no reply
    ]
    at = RECEIVED + timedelta(days=2)
    outcome = handle_response(
        _response("resolved", at), _case(), reports, calendar=CAL, collage=COLLAGE
    )
    (answered,) = outcome.events
    assert answered.kind is CaseEventKind.ANSWERED and answered.response is not None
    by_channel = {r.channel: r for r in outcome.replies}
    assert sorted(by_channel) == sorted(
        [Channel.WHATSAPP, Channel.EMAIL, Channel.TWITTER, Channel.CALLS]
    )
    wa = by_channel[Channel.WHATSAPP]
    assert wa.recipient == "+905321112233" and wa.attachments == (COLLAGE,)
    assert wa.last_inbound_at == RECEIVED + timedelta(hours=30)
    assert "Boru değiştirildi." in wa.text and CASE_ID in wa.text
    mail = by_channel[Channel.EMAIL]
    assert mail.in_reply_to == "email:m1@x" and mail.subject == "Su arızası"
    assert mail.attachments == (COLLAGE,)
    tweet = by_channel[Channel.TWITTER]
    assert tweet.attachments == () and "Boru" not in tweet.text  # public: outcome only
    assert by_channel[Channel.CALLS].recipient == "+903221234567"
    assert all(r.kind == "answer" for r in outcome.replies)
    again = handle_response(
        _response("resolved", at), _case(), reports, calendar=CAL, collage=COLLAGE
    )
    assert [r.reply_id for r in again.replies] == [r.reply_id for r in outcome.replies]


def test_extension_only_for_information_requests_within_fifteen_working_days() -> None:
    reports = [_report(Channel.EMAIL, "m1@x", CitizenContact(email="a@example.com"))]
    early = RECEIVED + timedelta(days=5)
    outcome = handle_response(
        _response("extended", early, "Diğer birimden veri bekleniyor."),
        _case(MessageType.BILGI_EDINME),
        reports,
        calendar=CAL,
    )
    (event,) = outcome.events
    assert event.kind is CaseEventKind.EXTENDED and event.due is not None
    # 30 working days from Tue 17 Nov 2026 (counted from the day after receipt).
    assert event.due.astimezone(ISTANBUL).date() == CAL.add_working_days(date(2026, 11, 16), 30)
    (notice,) = outcome.replies
    assert notice.kind == "notice" and "30 iş gününe uzatılmıştır" in notice.text
    assert "Diğer birimden veri bekleniyor." in notice.text

    with pytest.raises(ResponseRefused, match="not a right-to-information"):
        handle_response(_response("extended", early), _case(), reports, calendar=CAL)
    late = RECEIVED + timedelta(days=40)
    with pytest.raises(ResponseRefused, match="within the first 15 working days"):
        handle_response(
            _response("extended", late), _case(MessageType.BILGI_EDINME), reports, calendar=CAL
        )


def test_not_ours_goes_back_to_review_masked_and_in_progress_records_nothing() -> None:
    at = RECEIVED + timedelta(days=1)
    outcome = handle_response(_response("not-ours", at), _case(), [], calendar=CAL)
    (event,) = outcome.events
    assert event.kind is CaseEventKind.REROUTED
    assert outcome.review is not None and outcome.review.reason == "manual"
    assert "0532" not in outcome.review.text_masked
    assert handle_response(_response("in-progress", at), _case(), [], calendar=CAL).events == ()


def test_response_for_another_case_is_refused() -> None:
    wrong = UnitResponse(
        case_id="153-AAAAA-AAAAAA",
        unit="su-kanalizasyon",
        status="resolved",
        answer="x",
        responded_at=RECEIVED,
    )
    with pytest.raises(ResponseRefused):
        handle_response(wrong, _case(), [], calendar=CAL)


def test_reply_address_by_channel() -> None:
    both = CitizenContact(phone="+905321112233", email="a@example.com")
    assert reply_address(Channel.API, both) == (Channel.EMAIL, "a@example.com")
    assert reply_address(Channel.API, CitizenContact(phone="+905321112233")) == (
        Channel.CALLS,
        "+905321112233",
    )
    assert reply_address(Channel.TWITTER, both) is None
