"""The benchmark's message generator: deterministic, valid, Turkish, duplicates as configured."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from infra.bench.generate import PROBLEMS, generate
from schemas.common import Channel
from schemas.raw import ApiSubmission, RawEvent
from streams.normalizers.api import normalize

TURKISH_LETTERS = set("çğıöşüÇĞİÖŞÜ")


def test_same_arguments_give_the_same_bytes() -> None:
    first = generate(500, run_id="r1", seed=7)
    again = generate(500, run_id="r1", seed=7)
    assert [e.value for e in first] == [e.value for e in again]
    assert [e.kind for e in first] == [e.kind for e in again]


def test_other_seed_or_run_gives_other_messages() -> None:
    base = [e.value for e in generate(100, run_id="r1", seed=7)]
    assert base != [e.value for e in generate(100, run_id="r1", seed=8)]
    assert base != [e.value for e in generate(100, run_id="r2", seed=7)]


@pytest.mark.parametrize(("exact", "near"), [(0.05, 0.10), (0.0, 0.0), (0.2, 0.3)])
def test_duplicate_shares_are_exact(exact: float, near: float) -> None:
    events = generate(1000, run_id="shares", exact_share=exact, near_share=near)
    kinds = Counter(e.kind for e in events)
    assert kinds["exact"] == round(1000 * exact)
    assert kinds["near"] == round(1000 * near)
    assert kinds["original"] == 1000 - kinds["exact"] - kinds["near"]


def test_exact_duplicates_resend_an_earlier_original_unchanged() -> None:
    events = generate(1000, run_id="exact", exact_share=0.1, near_share=0.0)
    by_seq = {e.seq: e for e in events}
    for event in (e for e in events if e.kind == "exact"):
        original = by_seq[event.original_seq]
        assert original.kind == "original" and original.seq < event.seq
        assert event.value == original.value and event.key == original.key
        assert event.case_id == original.case_id


def test_near_duplicates_are_the_same_problem_at_the_same_place_in_other_words() -> None:
    events = generate(1000, run_id="near", exact_share=0.0, near_share=0.2)
    by_seq = {e.seq: e for e in events}
    for event in (e for e in events if e.kind == "near"):
        original = by_seq[event.original_seq]
        assert original.kind == "original" and original.seq < event.seq
        assert event.key != original.key and event.case_id != original.case_id
        assert event.problem == original.problem and event.wording != original.wording
        assert event.address == original.address
        sub, first = event.raw.payload, original.raw.payload
        assert sub["source"] != first["source"]
        assert sub["citizen"]["phone"] != first["citizen"]["phone"]
        assert sub["text"] != first["text"]
        assert abs(sub["location"]["lat"] - first["location"]["lat"]) < 0.001


def test_originals_are_distinct_reports() -> None:
    originals = [e for e in generate(2000, run_id="orig") if e.kind == "original"]
    assert len({e.key for e in originals}) == len(originals)
    assert len({e.raw.payload["citizen"]["phone"] for e in originals}) == len(originals)
    assert len({e.address for e in originals}) > 0.95 * len(originals)


def test_every_event_is_a_valid_api_raw_event_the_normalizer_accepts() -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for event in generate(300, run_id="valid", start_seq=40, base_time=start):
        raw = RawEvent.from_bytes(event.value)
        assert raw == event.raw and raw.channel is Channel.API
        assert raw.provider_id == f"bench-valid-{event.seq:07d}" or event.kind == "exact"
        assert raw.received_at >= start
        ApiSubmission.model_validate(raw.payload)
        message = normalize(raw)
        assert message.tracking_number == event.case_id


def test_sequence_numbers_continue_from_start_seq() -> None:
    events = generate(50, run_id="seq", start_seq=1000)
    assert [e.seq for e in events] == list(range(1000, 1050))


def test_the_tail_is_made_of_originals() -> None:
    events = generate(1000, run_id="tail", exact_share=0.3, near_share=0.3)
    assert all(e.kind == "original" for e in events[-20:])
    assert events[0].kind == "original"


def test_text_is_turkish_with_ascii_variants_and_every_problem() -> None:
    events = generate(1000, run_id="tr")
    texts = [e.raw.payload["text"] for e in events]
    with_letters = sum(bool(TURKISH_LETTERS & set(t)) for t in texts)
    assert 0.5 * len(texts) < with_letters < len(texts)  # some typed without Turkish letters
    assert any(t.startswith("Vatandas bildiriyor") for t in texts)
    joined = " ".join(texts).lower()
    for word in ("mahalle", "sokak", "gündür", "lütfen"):
        assert word in joined
    assert {e.problem for e in events} == set(range(len(PROBLEMS)))
    units = {PROBLEMS[e.problem].unit for e in events}
    assert {"su-kanalizasyon", "yol-altyapi", "temizlik", "zabita"} <= units


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate(0, run_id="x")
    with pytest.raises(ValueError):
        generate(10, run_id="x", exact_share=1.5)
    with pytest.raises(ValueError):
        generate(10, run_id="x", exact_share=0.6, near_share=0.6)
