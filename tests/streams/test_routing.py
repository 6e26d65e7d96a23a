from datetime import UTC, datetime

import pytest

from schemas.case import Classification
from schemas.common import AttachmentRef, CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from schemas.work import ForwardedWorkItem, UnitWorkItem
from streams.routing import citizen_address, open_case, route_case
from streams.text import turkish_casefold

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def _msg(text: str, channel: str = "whatsapp", **extra: object) -> CitizenMessage:
    extra.setdefault("citizen", CitizenContact(name="Ayşe Kaya", phone="+905320001122"))
    return CitizenMessage(
        message_id=f"{channel}:abc",
        tracking_number="153-AAAAA-AAAAAA",
        channel=channel,
        received_at=NOW,
        text=text,
        text_folded=turkish_casefold(text),
        **extra,
    )


def _cls(unit: str, **extra: object) -> Classification:
    extra.setdefault("confidence", 0.93)
    return Classification(unit=unit, method="test", **extra)


def test_open_case_is_stable_and_a_unit_gets_the_problem_not_the_citizen() -> None:
    photo = AttachmentRef(sha256="a" * 64, size=10, content_type="image/jpeg")
    pdf = AttachmentRef(sha256="b" * 64, size=10, content_type="application/pdf")
    msg = _msg("Su borusu patladı, 0532 123 45 67 arayın", attachments=(photo, pdf))
    created = open_case(msg, _cls("su-kanalizasyon"))
    assert created == open_case(msg, _cls("su-kanalizasyon"))  # a replay is identical
    assert created.case_id == msg.tracking_number and created.at == NOW

    routing = route_case(created, NOW)
    ((topic, item),) = routing.work_items
    assert topic == "units.su-kanalizasyon" and isinstance(item, UnitWorkItem)
    assert "123 45" not in item.problem and "Ayşe" not in item.to_bytes().decode()
    assert item.photos == (photo,)
    assert (routing.review, routing.emergency, routing.notices) == (None, None, ())
    (routed,) = routing.events
    assert routed.route is not None and routed.route.topic == "units.su-kanalizasyon"
    later = route_case(created, datetime(2027, 1, 1, tzinfo=UTC))
    assert later.events[0].event_id == routed.event_id  # stable across replays
    assert later.work_items == routing.work_items


def test_district_duty_is_forwarded_and_the_citizen_told_to_whom() -> None:
    msg = _msg("Kiremithane'de çöpler alınmıyor")
    cls = _cls("temizlik", district="yuregir", responsible="ilce")
    routing = route_case(open_case(msg, cls), NOW)
    ((topic, item),) = routing.work_items
    assert topic == "districts.yuregir" and isinstance(item, ForwardedWorkItem)
    assert (item.target_kind, item.target) == ("district", "yuregir")
    (notice,) = routing.notices
    assert notice.channel == "whatsapp" and notice.recipient == "+905320001122"
    assert "Yüreğir Belediyesi" in notice.text and "153-AAAAA-AAAAAA" in notice.text


def test_outside_body_and_emergency_hand_off_at_once() -> None:
    msg = _msg(
        "Apartmanda doğalgaz kokusu var", location=GeoPoint(lat=37.0, lon=35.3, address="Kurtuluş")
    )
    cls = _cls(
        "itfaiye", urgency="acil", responsible="dis-kurum", external_body="dogalgaz", type="ihbar"
    )
    routing = route_case(open_case(msg, cls), NOW)
    assert routing.work_items[0][0] == "external.dogalgaz"
    assert routing.emergency is not None and routing.emergency.handoff == "112"
    assert routing.emergency.callback_phone == "+905320001122"  # 112 must call back
    topics = [e.route.topic for e in routing.events if e.route]
    assert topics == ["external.dogalgaz", "intake.emergency"]


def test_abuse_goes_to_alo_183() -> None:
    msg = _msg("Yan dairede yaşlı teyzeyi oğlu dövüyor")
    cls = _cls("sosyal-hizmetler", urgency="alo-183")
    routing = route_case(open_case(msg, cls), NOW)
    assert routing.emergency is not None and routing.emergency.handoff == "ALO 183"
    assert routing.work_items[0][0] == "units.sosyal-hizmetler"


def test_unsure_classification_and_public_posts_go_to_review_masked() -> None:
    unsure = route_case(
        open_case(_msg("bir şey sormak istiyorum"), _cls("diger", confidence=0.3)), NOW, 0.45
    )
    assert unsure.review is not None and unsure.review.reason == "low-confidence"
    tweet = _msg(
        "@AdanaBld çöpler alınmıyor, beni 0532 123 45 67'den arayın",
        channel="twitter",
        public=True,
        citizen=CitizenContact(handle="@vatandas"),
    )
    routing = route_case(open_case(tweet, _cls("temizlik")), NOW, 0.45)
    assert routing.review is not None and routing.review.reason == "public-post"
    assert "123 45" not in routing.review.text_masked
    assert citizen_address(tweet) == "@vatandas"


def test_follow_up_is_attached_to_its_case() -> None:
    msg = _msg("Hala su gelmedi!", reply_to_case="153-BBBBB-BBBBBB")
    event = open_case(msg, _cls("su-kanalizasyon"))
    assert (event.kind, event.case_id, event.message) == ("attached", "153-BBBBB-BBBBBB", msg)


def test_call_resolved_on_the_line_is_answered_without_a_work_item() -> None:
    msg = _msg(
        "Kesintinin ne zaman biteceği soruldu, bilgi verildi",
        channel="calls",
        resolved_on_line=True,
    )
    routing = route_case(open_case(msg, _cls("su-kanalizasyon")), NOW)
    assert routing.work_items == () and routing.notices == ()
    assert [e.kind.value for e in routing.events] == ["answered"]


def test_route_refuses_event_without_classification() -> None:
    created = open_case(_msg("su yok"), _cls("su-kanalizasyon"))
    with pytest.raises(ValueError, match="classification"):
        route_case(created.model_copy(update={"classification": None}), NOW)
