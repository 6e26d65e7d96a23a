"""Clustering and emergencies in the real worker on the real broker.

A report's fingerprint lives in the worker's Faust table; the worker is SIGKILLed and a new
one must rebuild that table from its changelog, so that another citizen's report of the same
problem on another channel, arriving after the restart, joins the first case.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.case import CaseEvent, CaseEventKind
from schemas.ids import message_id, tracking_number
from schemas.raw import RawEvent
from schemas.work import EmergencyItem
from sinks.store import CaseStore
from tests.integration.kafka_io import produce, read_until
from tests.integration.services import ProductEnv, wait_until

pytestmark = pytest.mark.integration

RESATBEY = (36.9914, 35.3308)


def _api(provider_id: str, text: str, phone: str, point: tuple[float, float]) -> bytes:
    return RawEvent(
        channel="api",
        provider_id=provider_id,
        received_at=datetime.now(UTC),
        payload={
            "source": "alo153",
            "text": text,
            "citizen": {"phone": phone},
            "location": {"lat": point[0], "lon": point[1]},
        },
    ).to_bytes()


def _whatsapp(sid: str, text: str, phone: str, point: tuple[float, float]) -> bytes:
    """A Twilio WhatsApp webhook form, as the connector publishes it."""
    return RawEvent(
        channel="whatsapp",
        provider_id=sid,
        received_at=datetime.now(UTC),
        payload={
            "MessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": f"whatsapp:{phone}",
            "To": "whatsapp:+14155238886",
            "WaId": phone.lstrip("+"),
            "ProfileName": "Ayşe",
            "Body": text,
            "NumMedia": "0",
            "Latitude": str(point[0]),
            "Longitude": str(point[1]),
        },
    ).to_bytes()


def _cases(records: list, case_id: str) -> list[CaseEvent]:
    return [CaseEvent.from_bytes(r.value) for r in records if r.key == case_id.encode()]


async def test_cluster_state_survives_a_worker_kill_and_emergencies_go_out_at_once(
    product: tuple[ProductEnv, Path],
) -> None:
    env, data_dir = product
    run = uuid.uuid4().hex[:8]
    first_id, second_sid = f"cl-{run}-1", f"SM{run}{'0' * 24}"
    first_case = tracking_number(message_id("api", first_id))
    second_case = tracking_number(message_id("whatsapp", second_sid))
    # A street of its own: reports of other tests (same broker, same window) must not match.
    street = 70000 + int(run, 16) % 9999
    text_a = f"Reşatbey Mahallesi {street} Sokakta ana su borusu patladı, sular sokağa akıyor"
    text_b = f"resatbey {street} sokakta su borusu patladi sular sokaga akiyo, hala gelen yok"
    near = (RESATBEY[0] + 0.0003, RESATBEY[1])  # about 35 m north

    worker = env.start_worker(data_dir)
    await produce(
        env.bootstrap,
        "intake.raw.api",
        [(first_id.encode(), _api(first_id, text_a, "+905321110001", RESATBEY))],
    )
    seen = await read_until(
        env.bootstrap, ["intake.cases"], lambda s: bool(_cases(s, first_case)), 60
    )
    assert _cases(seen, first_case)[0].kind is CaseEventKind.CREATED
    worker.kill()  # no clean shutdown: the table must come back from its changelog

    env.start_worker(data_dir)
    emergency_id = f"cl-{run}-acil"
    emergency_case = tracking_number(message_id("api", emergency_id))
    await produce(
        env.bootstrap,
        "intake.raw.whatsapp",
        [(second_sid.encode(), _whatsapp(second_sid, text_b, "+905447770002", near))],
    )
    await produce(
        env.bootstrap,
        "intake.raw.api",
        [
            # The first report delivered again: a duplicate, dropped.
            (first_id.encode(), _api(first_id, text_a, "+905321110001", RESATBEY)),
            (
                emergency_id.encode(),
                _api(
                    emergency_id,
                    "Yüreğir Kiremithane mahallesinde apartmanda yoğun doğalgaz kokusu var, "
                    "bina boşaltılıyor, acil yardım!",
                    "+905551230003",
                    (36.99, 35.37),
                ),
            ),
        ],
    )

    def attached(records: list) -> list[CaseEvent]:
        return [e for e in _cases(records, first_case) if e.kind is CaseEventKind.ATTACHED]

    cases = await read_until(env.bootstrap, ["intake.cases"], lambda s: bool(attached(s)), 90)
    joined = attached(cases)[0]
    assert joined.message is not None
    assert joined.message.message_id == f"whatsapp:{second_sid}"
    assert joined.message.citizen.phone == "+905447770002"  # this reporter is answered too
    assert not _cases(cases, second_case), "the second report must not open a case of its own"

    emergencies = await read_until(
        env.bootstrap,
        ["intake.emergency"],
        lambda s: any(r.key == emergency_case.encode() for r in s),
        60,
    )
    item = EmergencyItem.from_bytes(
        next(r for r in emergencies if r.key == emergency_case.encode()).value
    )
    assert item.handoff == "112" and item.callback_phone == "+905551230003"

    store = CaseStore(f"sqlite:///{data_dir / 'cases.sqlite3'}")

    def recorded() -> bool:
        kinds = [e.kind for e in store.history(first_case)]
        return CaseEventKind.ATTACHED in kinds

    wait_until(recorded, 60, "the attached report in the case store")
    kinds = [e.kind for e in store.history(first_case)]
    assert kinds.count(CaseEventKind.CREATED) == 1  # the re-delivery added nothing
    assert store.get_case(second_case) is None
    assert store.get_case(emergency_case) is not None
