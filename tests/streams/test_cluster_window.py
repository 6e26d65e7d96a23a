"""The indexed window (``KeyWindow``) and its table (``ClusterWindow``, over a dict twin).

The index must give exactly the verdicts of the rules' reference, ``logic.decide``: a
randomised comparison over realistic report mixes holds the two together.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.case import Classification
from schemas.common import CitizenContact, GeoPoint
from schemas.ids import tracking_number
from schemas.message import CitizenMessage
from streams.cluster.logic import (
    ClusterSettings,
    Decision,
    DecisionKind,
    Fingerprint,
    decide,
    fingerprints,
    joined,
    prune,
)
from streams.cluster.state import (
    ClusterWindow,
    decode_fingerprint,
    decode_verdict,
    encode_fingerprint,
    entry_key,
)
from streams.cluster.window import KeyWindow
from streams.text import turkish_casefold

T0 = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
SETTINGS = ClusterSettings(salt="test-salt")
WATER = Classification(unit="su-kanalizasyon", district="seyhan", confidence=0.8, method="test")
RESATBEY = (36.9914, 35.3308)
TEXTS = [
    "Reşatbey 62012 sokakta su borusu patlamış sular akıyo",
    "Reşatbey Mahallesi 62012 Sokak'ta su borusu patladı, sular akıyor. Gereğini arz ederim.",
    "reşatbey 62012 sk su borusu patladi sular akiyor hala gelen yok",
    "Reşatbey 62014 sokakta su borusu patlamış sular akıyo",
    "Kurtuluş'ta rögar taştı pis koku var çocuklar oynayamıyor",
    "kurtulus mahallesinde rogar tasti koku berbat",
    "sabahtan beri su yok 3 gündür aynı durum",
    "sabahtan beri su yok 3 gundur ayni durum bina no 145",
    "Cemalpaşa 145 numaralı binanın önünde su kaçağı var",
    "cemalpasa 147 numara önünde su kacagi",
]
PHONES = ["+905321112233", "+905551234567", "+905059998877", None, None, None]


def _msg(
    provider_id: str,
    text: str,
    at: datetime,
    *,
    phone: str | None = None,
    point: tuple[float, float] | None = None,
) -> CitizenMessage:
    mid = f"api:{provider_id}"
    return CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel="api",
        received_at=at,
        text=text,
        text_folded=turkish_casefold(text),
        citizen=CitizenContact(phone=phone),
        location=GeoPoint(lat=point[0], lon=point[1]) if point else None,
    )


def _fp(msg: CitizenMessage, cls: Classification = WATER) -> Fingerprint:
    return fingerprints([(msg, cls)], SETTINGS)[0]


def _random_reports(rng: random.Random, n: int) -> list[Fingerprint]:
    """A mix like the city's: look-alike texts, repeat citizens, nearby and far points,
    some re-deliveries, times spread over weeks and out of order."""
    reports: list[Fingerprint] = []
    for i in range(n):
        if reports and rng.random() < 0.07:
            reports.append(rng.choice(reports))  # the same message again
            continue
        at = T0 + timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        point = None
        if rng.random() < 0.6:
            north, east = rng.gauss(0, 200), rng.gauss(0, 200)
            point = (RESATBEY[0] + north / 111_320, RESATBEY[1] + east / 88_900)
        msg = _msg(f"m{i}", rng.choice(TEXTS), at, phone=rng.choice(PHONES), point=point)
        cls = WATER if rng.random() < 0.9 else WATER.model_copy(update={"district": None})
        reports.append(_fp(msg, cls))
    return reports


def test_the_index_decides_exactly_as_the_rules() -> None:
    rng = random.Random(153)
    settings = SETTINGS.model_copy(update={"max_reports_per_key": 40})
    verdicts: dict[DecisionKind, int] = {}
    for _ in range(12):
        listed: list[Fingerprint] = []
        index = KeyWindow(settings.num_perm)
        for fp in _random_reports(rng, 120):
            now = datetime.fromtimestamp(fp.received_at, UTC) + timedelta(hours=1)
            expected = decide(fp, listed, settings, now)
            assert index.decide(fp, settings, now) == expected
            verdicts[expected.kind] = verdicts.get(expected.kind, 0) + 1
            if expected.kind is DecisionKind.DUPLICATE:
                continue
            kept = joined(fp, expected)
            newest = max([kept.received_at, *(s.received_at for s in listed)])
            reference = datetime.fromtimestamp(newest, UTC)
            listed = prune([*listed, kept], reference, settings)
            index.add(kept)
            index.prune(reference, settings)
            assert [s.message_id for s in index] == [s.message_id for s in listed]
    assert all(verdicts.get(kind, 0) > 20 for kind in DecisionKind), verdicts


def test_removed_reports_free_their_slots_and_indexes() -> None:
    index = KeyWindow(SETTINGS.num_perm)
    a = _fp(_msg("a", TEXTS[0], T0, phone=PHONES[0], point=RESATBEY))
    index.add(a)
    assert index.remove("api:a") == a and index.remove("api:a") is None
    assert len(index) == 0 and list(index) == []
    b = _fp(_msg("b", TEXTS[0], T0 + timedelta(minutes=5), phone=PHONES[0], point=RESATBEY))
    # Neither the citizen nor the text nor the place of the removed report is still matched.
    assert index.decide(b, SETTINGS, T0 + timedelta(hours=1)).kind is DecisionKind.NEW
    index.add(b)
    again = _fp(_msg("c", TEXTS[1], T0 + timedelta(minutes=9), phone=PHONES[0]))
    attach = index.decide(again, SETTINGS, T0 + timedelta(hours=1))
    assert (attach.kind, attach.matched) == (DecisionKind.ATTACH_SAME_CITIZEN, "api:b")


def test_the_index_grows_past_its_first_columns() -> None:
    index = KeyWindow(SETTINGS.num_perm)
    reports = [
        _fp(_msg(f"g{i}", f"{100 + i} numaralı binada su yok", T0 + timedelta(minutes=i)))
        for i in range(50)
    ]
    for fp in reports:
        index.add(fp)
    probe = _fp(_msg("p", "149 numaralı binada su yok", T0 + timedelta(hours=1)))
    decision = index.decide(probe, SETTINGS, T0 + timedelta(hours=2))
    assert (decision.kind, decision.matched) == (DecisionKind.CLUSTER, "api:g49")
    assert decision == decide(probe, reports, SETTINGS, T0 + timedelta(hours=2))


class _TwinTable(dict[str, bytes]):
    """An in-memory twin of the Faust table that counts writes and deletes (each is a
    changelog record) and remembers its recovery callback."""

    writes = 0
    deletes = 0
    recover: Any = None

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.deletes += 1
        super().__delitem__(key)

    def on_recover(self, fun: Any) -> Any:
        self.recover = fun
        return fun


async def test_a_step_emits_before_it_writes_one_entry_per_report() -> None:
    table = _TwinTable()
    window = ClusterWindow(table, SETTINGS)  # type: ignore[arg-type]
    emitted: list[tuple[Decision, int]] = []

    async def emit(decision: Decision) -> None:
        emitted.append((decision, len(table)))  # what the table held when we emitted

    wa = _fp(_msg("SM1", TEXTS[0], T0))
    mail = _fp(_msg("m1", TEXTS[1], T0 + timedelta(hours=1)))
    now = T0 + timedelta(hours=2)
    first = await window.step("k", wa, now, emit)
    assert emitted[0] == (first, 0) and table.writes == 1
    second = await window.step("k", mail, now, emit)
    assert second.kind is DecisionKind.CLUSTER and emitted[1] == (second, 1)
    again = await window.step("k", mail, now, emit)
    assert again.kind is DecisionKind.DUPLICATE and table.writes == 2  # not recorded twice
    assert sorted(table) == sorted([entry_key("k", "api:SM1"), entry_key("k", "api:m1")])
    stored = decode_fingerprint(table[entry_key("k", "api:m1")])
    assert (stored.message_id, stored.case_id) == ("api:m1", wa.case_id)  # the case it joined
    assert max(len(v) for v in table.values()) < 512  # a changelog record is one report


async def test_a_record_replayed_after_a_crash_gets_its_recorded_verdict_again() -> None:
    # The entries reached the changelog, what was emitted did not: the restarted worker
    # reads the uncommitted records again and must emit the same verdicts, not drop them.
    table = _TwinTable()
    before = ClusterWindow(table, SETTINGS)  # type: ignore[arg-type]
    wa = _fp(_msg("SM1", TEXTS[0], T0))
    mail = _fp(_msg("m1", TEXTS[1], T0 + timedelta(hours=1)))
    now = T0 + timedelta(hours=2)
    first = await before.step("k", wa, now, source=(2, 40))
    second = await before.step("k", mail, now, source=(2, 41))
    assert (first.kind, second.kind) == (DecisionKind.NEW, DecisionKind.CLUSTER)

    after = ClusterWindow(dict(table), SETTINGS)  # type: ignore[arg-type]  # recovered
    emitted: list[Decision] = []

    async def emit(decision: Decision) -> None:
        emitted.append(decision)

    assert await after.step("k", wa, now, emit, (2, 40)) == first
    assert await after.step("k", mail, now, emit, (2, 41)) == second
    assert emitted == [first, second] and len(after.table) == 2
    # a provider's second delivery is another record: a duplicate, emitted as such
    again = await after.step("k", mail, now, emit, (2, 57))
    assert again.kind is DecisionKind.DUPLICATE and emitted[-1] == again
    # so is any message whose entry was written before verdicts were kept
    after.table[entry_key("k", "api:SM1")] = encode_fingerprint(wa)
    assert (await after.step("k", wa, now, emit, (2, 40))).kind is DecisionKind.DUPLICATE
    assert decode_verdict(encode_fingerprint(mail)) is None
    # a damaged verdict is no verdict: the record is a duplicate, the step does not fail
    damaged = json.loads(table[entry_key("k", "api:m1")])
    damaged[13] = "no-such-kind"
    after.table[entry_key("k", "api:m1")] = json.dumps(damaged).encode()
    assert (await after.step("k", mail, now, emit, (2, 41))).kind is DecisionKind.DUPLICATE
    assert decode_fingerprint(table[entry_key("k", "api:m1")]).case_id == wa.case_id


async def test_old_reports_are_expired_one_tombstone_each() -> None:
    table = _TwinTable()
    window = ClusterWindow(table, SETTINGS)  # type: ignore[arg-type]
    named = _fp(_msg("a", TEXTS[4], T0, phone=PHONES[0]))
    anonymous = _fp(_msg("b", TEXTS[6], T0))
    for fp in (named, anonymous):
        await window.step("k", fp, T0)
    # Four days on: the anonymous report is past the cluster and place windows; the
    # citizen's is kept for the 30-day attach window.
    later = T0 + timedelta(days=4)
    await window.step("k", _fp(_msg("c", TEXTS[8], later)), later)
    assert entry_key("k", "api:b") not in table and table.deletes == 1
    assert entry_key("k", "api:a") in table
    far = T0 + SETTINGS.horizon + timedelta(days=5)
    await window.step("k", _fp(_msg("d", TEXTS[9], far)), far)
    assert sorted(table) == [entry_key("k", "api:d")] and table.deletes == 3
    assert [fp.message_id for fp in window.window("k")] == ["api:d"]


async def test_after_a_recovery_the_index_is_rebuilt_from_the_table() -> None:
    table = _TwinTable()
    window = ClusterWindow(table, SETTINGS)  # type: ignore[arg-type]
    first = _fp(_msg("a", TEXTS[0], T0, phone=PHONES[1]))
    await window.step("k", first, T0)
    # A restarted worker: a new index over the table as Faust restored it (other objects).
    restored = _TwinTable({k: bytes(bytearray(v)) for k, v in table.items()})
    fresh = ClusterWindow(restored, SETTINGS)  # type: ignore[arg-type]
    follow = _fp(_msg("b", TEXTS[6], T0 + timedelta(days=3), phone=PHONES[1]))
    decision = await fresh.step("k", follow, T0 + timedelta(days=3))
    assert (decision.kind, decision.case_id) == (DecisionKind.ATTACH_SAME_CITIZEN, first.case_id)
    # A rebalance takes the key away: Faust drops its entries, then calls back.
    restored.clear()
    await restored.recover()
    probe = _fp(_msg("c", TEXTS[0], T0 + timedelta(days=3), phone=PHONES[1]))
    assert (await fresh.step("k", probe, T0 + timedelta(days=3))).kind is DecisionKind.NEW


async def test_day_buckets_of_the_earlier_version_are_read_and_rewritten() -> None:
    old = [
        joined(_fp(_msg("a", TEXTS[0], T0, phone=PHONES[2])), Decision(DecisionKind.NEW, "C-1")),
        _fp(_msg("b", TEXTS[6], T0 + timedelta(minutes=3))),
    ]
    rows = [json.loads(encode_fingerprint(fp)) for fp in old]
    bucket = "k#2026-11-22"
    doc = json.dumps({"v": 1, "r": rows}, separators=(",", ":")).encode()
    table = _TwinTable({bucket: doc, "other#2026-11-22": b'{"v": 99}'})
    window = ClusterWindow(table, SETTINGS)  # type: ignore[arg-type]
    follow = _fp(_msg("c", TEXTS[7], T0 + timedelta(hours=2), phone=PHONES[2]))
    decision = await window.step("k", follow, T0 + timedelta(hours=3))
    assert (decision.kind, decision.case_id) == (DecisionKind.ATTACH_SAME_CITIZEN, "C-1")
    assert bucket not in table  # rewritten as one entry per report
    assert {entry_key("k", f"api:{x}") for x in "abc"} <= set(table)
    assert decode_fingerprint(table[entry_key("k", "api:a")]).case_id == "C-1"


def test_ties_go_to_the_first_report_in_window_order_as_in_the_rules() -> None:
    index = KeyWindow(SETTINGS.num_perm)
    listed = []
    for name, text in (("a", TEXTS[4]), ("b", TEXTS[6])):  # the same citizen, the same second
        fp = joined(
            _fp(_msg(name, text, T0, phone=PHONES[0])), Decision(DecisionKind.NEW, f"C-{name}")
        )
        index.add(fp)
        listed.append(fp)
    follow = _fp(_msg("c", TEXTS[8], T0 + timedelta(hours=1), phone=PHONES[0]))
    now = T0 + timedelta(hours=2)
    expected = decide(follow, listed, SETTINGS, now)
    assert expected.case_id == "C-a" and index.decide(follow, SETTINGS, now) == expected
