from datetime import UTC, datetime

import pytest

from schemas.common import AttachmentRef
from schemas.message import CitizenMessage
from streams.routing import classify_placeholder, open_case, route_case
from streams.text import turkish_casefold

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def _msg(text: str, **extra: object) -> CitizenMessage:
    return CitizenMessage(
        message_id="api:abc",
        tracking_number="153-AAAAA-AAAAAA",
        channel="api",
        received_at=NOW,
        text=text,
        text_folded=turkish_casefold(text),
        **extra,
    )


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Seyhan'da SULAR KESİK, ASKİ telefonu açmıyor", "su-kanalizasyon"),
        ("Kozan'da sokak lambasi yanmiyor her yer karanlik", "aydinlatma"),
        ("Yüreğir'de çöp konteyneri taştı", "temizlik"),
        ("Sarıçam'da sokak köpekleri saldırıyor", "veteriner"),
        ("merhaba, iyi çalışmalar", "diger"),
    ],
)
def test_placeholder_rule(text: str, unit: str) -> None:
    assert classify_placeholder(_msg(text)).unit == unit


def test_open_case_is_stable_and_route_masks_personal_data() -> None:
    photo = AttachmentRef(sha256="a" * 64, size=10, content_type="image/jpeg")
    pdf = AttachmentRef(sha256="b" * 64, size=10, content_type="application/pdf")
    msg = _msg("Su borusu patladı, 0532 123 45 67 arayın", attachments=(photo, pdf))
    created = open_case(msg, classify_placeholder(msg))
    assert created == open_case(msg, classify_placeholder(msg))  # a replay is identical
    assert created.case_id == msg.tracking_number and created.at == NOW

    routing = route_case(created, NOW)
    item = routing.work_item
    assert item is not None and item.unit == "su-kanalizasyon"
    assert "123 45" not in item.problem
    assert item.photos == (photo,)
    assert routing.review is None
    (routed,) = routing.events
    assert routed.kind == "routed"
    assert routed.route is not None and routed.route.topic == "units.su-kanalizasyon"
    later = route_case(created, datetime(2027, 1, 1, tzinfo=UTC))
    assert later.events[0].event_id == routed.event_id  # stable across replays
    assert later.work_item == item


def test_follow_up_is_attached_to_its_case() -> None:
    msg = _msg("Hala su gelmedi!", reply_to_case="153-BBBBB-BBBBBB")
    event = open_case(msg, classify_placeholder(msg))
    assert (event.kind, event.case_id, event.message) == ("attached", "153-BBBBB-BBBBBB", msg)


def test_call_resolved_on_the_line_is_answered_without_a_work_item() -> None:
    msg = _msg("Su kesintisinin ne zaman biteceği soruldu, bilgi verildi", resolved_on_line=True)
    routing = route_case(open_case(msg, classify_placeholder(msg)), NOW)
    assert routing.work_item is None
    assert [e.kind.value for e in routing.events] == ["answered"]


def test_public_post_also_goes_to_review_with_personal_data_masked() -> None:
    msg = _msg("@AdanaBld çöpler alınmıyor, beni 0532 123 45 67'den arayın", public=True)
    routing = route_case(open_case(msg, classify_placeholder(msg)), NOW)
    assert routing.work_item is not None and routing.work_item.unit == "temizlik"
    assert routing.review is not None and routing.review.reason == "public-post"
    assert "123 45" not in routing.review.text_masked


def test_route_refuses_event_without_classification() -> None:
    created = open_case(_msg("su yok"), classify_placeholder(_msg("su yok")))
    with pytest.raises(ValueError, match="classification"):
        route_case(created.model_copy(update={"classification": None}), NOW)
