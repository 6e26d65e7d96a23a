"""The worker's answer desk on a real SQLite store and blob store (no Kafka)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from schemas.case import CaseEventKind, Classification, UnitResponse
from schemas.common import AttachmentRef, CitizenContact
from schemas.ids import message_id, tracking_number
from schemas.message import CitizenMessage
from sinks.blobstore import BlobStore
from sinks.collage import CollageSettings
from sinks.errors import UnknownCase
from sinks.store import CaseStore
from streams.answers import AnswerDesk
from streams.deadlines import WorkingCalendar
from streams.routing import open_case

T0 = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def desk(tmp_path: Path) -> AnswerDesk:
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.sqlite3'}")
    store.migrate()
    blobs = BlobStore(tmp_path / "blobs", 10_000_000)
    return AnswerDesk(store, blobs, WorkingCalendar(), CollageSettings(), unknown_case_wait_s=0.3)


def _open(desk: AnswerDesk, photos: tuple[AttachmentRef, ...]) -> str:
    mid = message_id("whatsapp", "SM-answers")
    msg = CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel="whatsapp",
        received_at=T0,
        text="Parkta banklar kırık",
        text_folded="parkta banklar kırık",
        citizen=CitizenContact(phone="+905321112233"),
        attachments=photos,
    )
    cls = Classification(unit="park-bahce", confidence=0.9, method="test")
    desk.store.apply([open_case(msg, cls)])
    return msg.tracking_number


def _response(case_id: str, after: tuple[AttachmentRef, ...]) -> UnitResponse:
    return UnitResponse(
        case_id=case_id,
        unit="park-bahce",
        status="resolved",
        answer="Banklar yenilendi.",
        after_photos=after,
        responded_at=T0 + timedelta(days=3),
    )


async def test_collage_made_from_both_sides_and_attached_to_the_reply(desk: AnswerDesk) -> None:
    before = desk.blobs.put(_jpeg((220, 20, 20)), declared_type="image/jpeg")
    after = desk.blobs.put(_jpeg((20, 200, 20)), declared_type="image/jpeg")
    case_id = _open(desk, (before,))
    outcome = await desk.handle(_response(case_id, (after,)))
    (reply,) = outcome.replies
    (collage,) = reply.attachments
    assert collage.content_type == "image/jpeg" and desk.blobs.exists(collage)
    assert collage.sha256 not in (before.sha256, after.sha256)
    assert Image.open(io.BytesIO(desk.blobs.get(collage))).format == "JPEG"
    assert outcome.events[0].kind is CaseEventKind.ANSWERED and outcome.events[0].note


async def test_no_before_photo_text_reply_and_the_reason_on_the_event(desk: AnswerDesk) -> None:
    after = desk.blobs.put(_jpeg((20, 200, 20)), declared_type="image/jpeg")
    case_id = _open(desk, ())
    outcome = await desk.handle(_response(case_id, (after,)))
    (reply,) = outcome.replies
    assert reply.attachments == ()
    assert "kolaj yok" in (outcome.events[0].note or "")


async def test_a_corrupt_after_photo_is_recorded_and_the_answer_still_goes(
    desk: AnswerDesk,
) -> None:
    before = desk.blobs.put(_jpeg((220, 20, 20)), declared_type="image/jpeg")
    broken = desk.blobs.put(_jpeg((20, 200, 20))[:200], declared_type="image/jpeg")
    case_id = _open(desk, (before,))
    outcome = await desk.handle(_response(case_id, (broken,)))
    (reply,) = outcome.replies
    assert reply.attachments == () and "Banklar yenilendi." in reply.text
    note = outcome.events[0].note or ""
    assert "kolaj yok" in note and broken.sha256[:16] in note


async def test_an_answer_to_an_unknown_case_is_refused_after_a_short_wait(
    desk: AnswerDesk,
) -> None:
    with pytest.raises(UnknownCase):
        await desk.handle(_response("153-ZZZZZ-ZZZZZZ", ()))
