"""Deduplication and clustering: realistic Turkish reports across channels, decided by the pure
rules (``decide``); the indexed window and its table are in ``test_cluster_window``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.case import CaseEventKind, Classification, Urgency
from schemas.common import CitizenContact, GeoPoint
from schemas.ids import tracking_number
from schemas.message import CitizenMessage
from streams.cluster.features import citizen_keys, normalize_phone
from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    DecisionKind,
    Fingerprint,
    case_event_for,
    cluster_key,
    decide,
    fingerprints,
    joined,
    needs_clustering,
    partition_key,
    prune,
)
from streams.cluster.state import decode_fingerprint, encode_fingerprint
from streams.routing import open_case
from streams.text import turkish_casefold

T0 = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
SETTINGS = ClusterSettings(salt="test-salt")
WATER = Classification(unit="su-kanalizasyon", district="seyhan", confidence=0.8, method="test")
RESATBEY = (36.9914, 35.3308)

WHATSAPP_TEXT = "Reşatbey 62012 sokakta su borusu patlamış sular akıyo"
EMAIL_TEXT = (
    "Sayın yetkili, Reşatbey Mahallesi 62012 Sokak'ta su borusu patladı, sular akıyor. "
    "Gereğini arz ederim."
)
TWEET_TEXT = "@AdanaBld Reşatbey'de 62012 sk su borusu patladı sular akıyor hala gelen yok #ASKİ"


def _msg(
    channel: str,
    provider_id: str,
    text: str,
    *,
    at: datetime = T0,
    citizen: CitizenContact | None = None,
    point: tuple[float, float] | None = None,
) -> CitizenMessage:
    mid = f"{channel}:{provider_id}"
    return CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel=channel,
        received_at=at,
        text=text,
        text_folded=turkish_casefold(text),
        citizen=citizen or CitizenContact(),
        location=GeoPoint(lat=point[0], lon=point[1]) if point else None,
    )


def _fp(msg: CitizenMessage, cls: Classification = WATER) -> Fingerprint:
    return fingerprints([(msg, cls)], SETTINGS)[0]


def _run(reports: list[Fingerprint], now: datetime | None = None) -> list[Decision]:
    """Decide each report in turn against the ones before it, as the agent would."""
    window: list[Fingerprint] = []
    decisions = []
    for fp in reports:
        decision = decide(fp, window, SETTINGS, now or T0 + timedelta(days=60))
        decisions.append(decision)
        if decision.kind is not DecisionKind.DUPLICATE:
            window.append(joined(fp, decision))
    return decisions


def _offset(point: tuple[float, float], north_m: float = 0.0, east_m: float = 0.0) -> tuple:
    lat = point[0] + north_m / 111_320.0
    return (lat, point[1] + east_m / (111_320.0 * 0.7986))  # cos(37°)


def test_near_duplicates_across_channels_cluster_under_the_first_case() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT, citizen=CitizenContact(phone="+905321112233"))
    mail = _msg(
        "email",
        "m1@x",
        EMAIL_TEXT,
        at=T0 + timedelta(hours=2),
        citizen=CitizenContact(email="mehmet@example.com"),
    )
    tweet = _msg(
        "twitter",
        "190001",
        TWEET_TEXT,
        at=T0 + timedelta(hours=5),
        citizen=CitizenContact(handle="@cukurovali01"),
    )
    call = _msg(
        "calls",
        "1763790000.42",
        "Vatandaş Reşatbey Mah. 62012 Sok. su borusunun patladığını, suların aktığını bildirdi.",
        at=T0 + timedelta(hours=6),
        citizen=CitizenContact(phone="0322 444 55 66"),
    )
    first, second, third, fourth = _run([_fp(wa), _fp(mail), _fp(tweet), _fp(call)])
    assert first == Decision(DecisionKind.NEW, wa.tracking_number)
    assert (second.kind, second.case_id, second.reason) == (
        DecisionKind.CLUSTER,
        wa.tracking_number,
        "text",
    )
    assert second.score is not None and second.score >= SETTINGS.jaccard_threshold
    # The tweet joins the first report's case, not the e-mail's own tracking number.
    assert (third.kind, third.case_id) == (DecisionKind.CLUSTER, wa.tracking_number)
    assert (fourth.kind, fourth.case_id) == (DecisionKind.CLUSTER, wa.tracking_number)


def test_look_alike_reports_of_other_places_are_not_clustered() -> None:
    base = _msg("whatsapp", "SM1", WHATSAPP_TEXT, point=RESATBEY)
    window = [joined(_fp(base), Decision(DecisionKind.NEW, base.tracking_number))]
    later = T0 + timedelta(hours=1)
    yuregir = Classification(unit="su-kanalizasyon", district="yuregir", confidence=0.8, method="t")
    other_district = _msg("api", "a1", WHATSAPP_TEXT, at=later)
    far_away = _msg("api", "a2", WHATSAPP_TEXT, at=later, point=_offset(RESATBEY, north_m=2000))
    other_street = _msg("api", "a3", "Reşatbey 62015 sokakta su borusu patlamış sular akıyor")
    lamp = _msg("api", "a4", "Reşatbey 62012 sokakta sokak lambası yanmıyor", at=later)
    lighting = Classification(unit="aydinlatma", district="seyhan", confidence=0.8, method="t")
    for fp in (
        _fp(other_district, yuregir),
        _fp(far_away),
        _fp(other_street),
        _fp(lamp, lighting),
    ):
        assert decide(fp, window, SETTINGS, later).kind is DecisionKind.NEW, fp.message_id


def test_the_same_citizen_on_another_channel_is_attached_to_their_case() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT, citizen=CitizenContact(phone="+905321112233"))
    # A different text, on e-mail, with the same phone written in the contact field.
    mail = _msg(
        "email",
        "m2@x",
        "Dün bildirdiğim arıza hâlâ giderilmedi, su boşa akıyor",
        at=T0 + timedelta(days=3),
        citizen=CitizenContact(email="ayse@example.com", phone="0 (532) 111 22 33"),
    )
    salt = b"test-salt"
    assert set(citizen_keys(wa.citizen, salt)) & set(citizen_keys(mail.citizen, salt))
    first, second = _run([_fp(wa), _fp(mail)])
    assert first.kind is DecisionKind.NEW
    assert (second.kind, second.case_id) == (DecisionKind.ATTACH_SAME_CITIZEN, wa.tracking_number)


def test_the_same_citizen_elsewhere_in_the_district_is_a_new_problem() -> None:
    phone = CitizenContact(phone="+905321112233")
    home = _msg("whatsapp", "SM1", WHATSAPP_TEXT, citizen=phone, point=RESATBEY)
    work = _msg(
        "whatsapp",
        "SM2",
        "Kanalizasyon taştı",
        at=T0 + timedelta(days=1),
        citizen=phone,
        point=_offset(RESATBEY, north_m=3000),
    )
    assert [d.kind for d in _run([_fp(home), _fp(work)])] == [DecisionKind.NEW, DecisionKind.NEW]


def test_citizen_keys_are_salted_hashes_not_the_contact() -> None:
    contact = CitizenContact(phone="+905321112233", email="Ayse@Example.com", handle="@ayse")
    keys = citizen_keys(contact, b"salt-1")
    assert len(keys) == 3 and all(len(k) == 16 for k in keys)
    assert not any("5321112233" in k or "ayse" in k for k in keys)
    assert set(keys).isdisjoint(citizen_keys(contact, b"salt-2"))  # the salt matters
    assert citizen_keys(CitizenContact(email="ayse@example.com"), b"salt-1")[0] in keys


@pytest.mark.parametrize(
    "written", ["+90 532 111 22 33", "0532 111 2233", "0 (532) 111-22-33", "00905321112233"]
)
def test_turkish_phone_numbers_normalise_to_one_form(written: str) -> None:
    assert normalize_phone(written) == "905321112233"
    assert normalize_phone("5321112233") == "905321112233"
    assert normalize_phone("12") is None


def test_different_texts_from_the_same_spot_cluster_by_place() -> None:
    first = _msg("calls", "c1", "Kanalizasyon taştı, her yer pis su oldu", point=RESATBEY)
    near = _msg(
        "whatsapp",
        "SM9",
        "Rögar kapağından su fışkırıyor, çocuklar okula gidemiyor",
        at=T0 + timedelta(hours=6),
        point=_offset(RESATBEY, north_m=30, east_m=40),  # 50 m away
    )
    too_late = _msg(
        "api",
        "a9",
        "Rögar kapağından su fışkırıyor",
        at=T0 + timedelta(hours=49),
        point=_offset(RESATBEY, north_m=30, east_m=40),
    )
    decisions = _run([_fp(first), _fp(near)])
    cluster = decisions[1]
    assert (cluster.kind, cluster.case_id, cluster.reason) == (
        DecisionKind.CLUSTER,
        first.tracking_number,
        "place",
    )
    assert cluster.score == pytest.approx(1 - 50 / 150, abs=0.02)
    window = [joined(_fp(first), decisions[0])]
    assert decide(_fp(too_late), window, SETTINGS, too_late.received_at).kind is DecisionKind.NEW


def test_close_by_reports_on_other_numbered_streets_are_not_one_problem() -> None:
    """Place alone does not merge two reports whose street or building numbers differ."""
    first = _msg("calls", "c1", "62012 sokakta rögar taştı", point=RESATBEY)
    same_street = _msg(
        "whatsapp",
        "SM7",
        "62012 sk kanalizasyon taşıyor",
        at=T0 + timedelta(hours=2),
        point=_offset(RESATBEY, north_m=40),
    )
    next_street = _msg(
        "api",
        "a7",
        "62014 sokakta rögar kapağı kırık, su taşıyor",
        at=T0 + timedelta(hours=2),
        point=_offset(RESATBEY, east_m=60),  # 60 m away, another street
    )
    decisions = _run([_fp(first), _fp(same_street), _fp(next_street)])
    assert [d.kind for d in decisions] == [
        DecisionKind.NEW,
        DecisionKind.CLUSTER,
        DecisionKind.NEW,
    ]


def test_reports_outside_the_cluster_window_open_new_cases() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT)
    late = _msg("email", "m1@x", EMAIL_TEXT, at=T0 + timedelta(hours=73))
    assert [d.kind for d in _run([_fp(wa), _fp(late)])] == [DecisionKind.NEW, DecisionKind.NEW]


def test_a_message_delivered_twice_is_a_duplicate_of_its_case() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT)
    mail = _msg("email", "m1@x", EMAIL_TEXT, at=T0 + timedelta(hours=1))
    decisions = _run([_fp(wa), _fp(mail), _fp(mail), _fp(wa)])
    assert [d.kind for d in decisions] == [
        DecisionKind.NEW,
        DecisionKind.CLUSTER,
        DecisionKind.DUPLICATE,
        DecisionKind.DUPLICATE,
    ]
    assert decisions[2].case_id == wa.tracking_number  # the case the first delivery joined


def test_the_best_match_wins_then_the_oldest_master() -> None:
    older = _msg("api", "old", WHATSAPP_TEXT, at=T0, point=RESATBEY)
    newer = _msg("api", "new", WHATSAPP_TEXT, at=T0 + timedelta(hours=1), point=RESATBEY)
    window = [
        joined(_fp(newer), Decision(DecisionKind.NEW, newer.tracking_number)),
        joined(_fp(older), Decision(DecisionKind.NEW, older.tracking_number)),
    ]
    cand = _msg("api", "c", WHATSAPP_TEXT, at=T0 + timedelta(hours=2), point=RESATBEY)
    decision = decide(_fp(cand), window, SETTINGS, cand.received_at)
    assert (decision.case_id, decision.score) == (older.tracking_number, 1.0)


def test_prune_bounds_the_window_by_time_and_size() -> None:
    now = T0 + timedelta(days=40)
    named = CitizenContact(phone="+905321112233")
    kept_for_citizen = _fp(_msg("api", "a", "x y", at=now - timedelta(days=10), citizen=named))
    anonymous_old = _fp(_msg("api", "b", "x y", at=now - timedelta(days=10)))
    expired = _fp(_msg("api", "c", "x y", at=now - timedelta(days=31), citizen=named))
    recent = _fp(_msg("api", "d", "x y", at=now - timedelta(hours=1)))
    window = prune([recent, expired, anonymous_old, kept_for_citizen], now, SETTINGS)
    assert [fp.message_id for fp in window] == ["api:a", "api:d"]  # oldest first

    small = ClusterSettings(salt="s", max_reports_per_key=3)
    many = [_fp(_msg("api", f"n{i}", "x y", at=now - timedelta(minutes=i))) for i in range(10)]
    assert [fp.message_id for fp in prune(many, now, small)] == ["api:n2", "api:n1", "api:n0"]


def test_a_fingerprint_is_small(capsys: pytest.CaptureFixture[str]) -> None:
    msg = _msg(
        "whatsapp",
        "SM0123456789abcdef0123456789abcdef",
        EMAIL_TEXT,
        citizen=CitizenContact(phone="+905321112233", email="a@b.tr"),
        point=RESATBEY,
    )
    fp = _fp(msg)
    entry = encode_fingerprint(fp)
    with capsys.disabled():
        print(f"\nbytes per fingerprint (one table entry): {len(entry)}")
    assert len(fp.signature) == 2 * SETTINGS.num_perm
    assert len(entry) < 512  # target < 1 KB
    assert decode_fingerprint(entry) == fp


def test_partition_key_keeps_related_reports_together() -> None:
    no_district = WATER.model_copy(update={"district": None})
    a = _fp(_msg("api", "a", "x", point=RESATBEY), no_district)
    b = _fp(_msg("api", "b", "x", point=_offset(RESATBEY, 30, 40)), no_district)
    assert partition_key("su-kanalizasyon", "seyhan", a.cell) == "su-kanalizasyon|seyhan"
    key = partition_key(a.unit, a.district, a.cell)
    assert key.startswith("su-kanalizasyon|@") and key == partition_key(b.unit, b.district, b.cell)
    assert partition_key("temizlik", None, None) == "temizlik|-"
    located = _msg("api", "c", "x", point=RESATBEY)
    assert cluster_key(located, no_district, SETTINGS) == key
    assert cluster_key(located, WATER, SETTINGS) == "su-kanalizasyon|seyhan"


def test_case_events_keep_every_reporters_channel_and_contact() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT, citizen=CitizenContact(phone="+905321112233"))
    mail = _msg("email", "m1@x", EMAIL_TEXT, citizen=CitizenContact(email="m@example.com"))
    created_wa, created_mail = open_case(wa, WATER), open_case(mail, WATER)
    assert case_event_for(created_wa, Decision(DecisionKind.NEW, wa.tracking_number)) is created_wa
    cluster = Decision(DecisionKind.CLUSTER, wa.tracking_number, "text", 0.83, wa.message_id)
    attached = case_event_for(created_mail, cluster)
    assert attached is not None and attached == case_event_for(created_mail, cluster)  # stable
    assert (attached.kind, attached.case_id) == (CaseEventKind.ATTACHED, wa.tracking_number)
    assert attached.message == mail and attached.message.citizen.email == "m@example.com"
    assert attached.note is not None and "metin" in attached.note
    duplicate = Decision(DecisionKind.DUPLICATE, wa.tracking_number)
    assert case_event_for(created_mail, duplicate) is None


def test_only_normal_new_reports_are_clustered() -> None:
    wa = _msg("whatsapp", "SM1", WHATSAPP_TEXT)
    assert needs_clustering(open_case(wa, WATER))
    urgent = WATER.model_copy(update={"urgency": Urgency.ACIL})
    assert not needs_clustering(open_case(wa, urgent))  # handed off at once
    follow_up = wa.model_copy(update={"reply_to_case": "153-95WKG-F9383T"})
    assert not needs_clustering(open_case(follow_up, WATER))
    on_line = wa.model_copy(update={"resolved_on_line": True})
    assert not needs_clustering(open_case(on_line, WATER))
