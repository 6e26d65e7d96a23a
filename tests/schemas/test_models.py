from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas import AttachmentRef, CaseEvent, Classification, RawEvent, UnitWorkItem
from schemas.case import CaseEventKind
from schemas.registry import TOPIC_MODELS, all_topic_names


def test_naive_datetimes_are_refused_and_aware_ones_become_utc() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        RawEvent(channel="api", provider_id="x", received_at=datetime(2026, 1, 1), payload={})
    raw = RawEvent(
        channel="api",
        provider_id="x",
        received_at=datetime(2026, 1, 1, 3, tzinfo=timezone(timedelta(hours=3))),
        payload={},
    )
    assert raw.received_at == datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert raw.received_at.utcoffset() == timedelta(0)


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    ref = AttachmentRef(sha256="0" * 64, size=1, content_type="image/png")
    with pytest.raises(ValidationError):
        ref.size = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        AttachmentRef(sha256="0" * 64, size=1, content_type="image/png", colour="red")


def test_unit_and_district_codes_come_from_the_taxonomy() -> None:
    Classification(unit="su-kanalizasyon", district="cukurova", confidence=0.5, method="t")
    with pytest.raises(ValidationError, match="unknown unit code 'su'"):
        Classification(unit="su", confidence=0.5, method="t")
    with pytest.raises(ValidationError, match="unknown district code"):
        Classification(unit="zabita", district="kadikoy", confidence=0.5, method="t")


def test_wire_round_trip_keeps_turkish_letters() -> None:
    event = CaseEvent(
        event_id="e" * 32,
        case_id="153-AAAAA-AAAAAA",
        tracking_number="153-AAAAA-AAAAAA",
        kind=CaseEventKind.CREATED,
        at=datetime(2026, 11, 22, tzinfo=UTC),
        note="Çukurova'da ağaç devrildi",
    )
    data = event.to_bytes()
    assert "Çukurova'da ağaç".encode() in data
    assert CaseEvent.from_bytes(data) == event
    # the wire bytes are pydantic's own JSON of the model, byte for byte
    assert data == event.model_dump_json().encode("utf-8")


def test_every_payload_has_a_schema_version() -> None:
    for model in TOPIC_MODELS.values():
        assert "schema_version" in model.model_fields, model.__name__


def test_unit_work_item_has_no_citizen_identity_field() -> None:
    assert not {"citizen", "phone", "email", "name"} & set(UnitWorkItem.model_fields)


def test_topic_names_cover_the_contract() -> None:
    names = set(all_topic_names())
    assert {"intake.raw.api", "intake.raw.email", "intake.messages", "intake.cases"} <= names
    assert {
        "units.su-kanalizasyon",
        "units.diger",
        "districts.seyhan",
        "external.dogalgaz",
    } <= names
    assert {"intake.deadletter", "intake.review", "intake.emergency", "units.responses"} <= names
    assert len([n for n in names if n.startswith("districts.")]) == 15
