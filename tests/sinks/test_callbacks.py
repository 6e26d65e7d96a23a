"""The reply log and the feedback operators' callbacks, on SQLite (PostgreSQL: the same list).

The ``check_*`` scenarios take a migrated, empty store and its URL;
``tests/integration/test_records_postgres.py`` runs ``REPLY_SCENARIOS`` against PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from schemas.common import Channel
from schemas.work import ReplyRequest
from sinks.errors import SinkError
from sinks.store import (
    CallbackStatus,
    CaseStore,
    ReplyStatus,
    UnknownCallback,
    format_callbacks,
    mask_recipient,
)
from tests.sinks.test_store import T0, Case, Scenario, scenario_id

PHONE = "+905321234567"


def reply(
    reply_id: str = "reply-1",
    *,
    case: Case | None = None,
    channel: Channel = Channel.WHATSAPP,
    recipient: str = PHONE,
    tracking: str | None = None,
) -> ReplyRequest:
    """A reply request for ``case`` (a default case when none is given)."""
    case = case or Case()
    return ReplyRequest(
        reply_id=reply_id,
        case_id=case.case_id,
        channel=channel,
        recipient=recipient,
        text="Başvurunuz çözüldü, ekibimiz arızayı giderdi.",
        tracking_number=tracking,
        kind="answer",
    )


def raw_rows(url: str, table: str) -> list[dict[str, object]]:
    """Every row of ``table``, read with plain SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def check_reply_log_records_and_masks(store: CaseStore, url: str) -> None:
    request = reply(recipient=f"whatsapp:{PHONE}")
    error = f"Twilio 21211: invalid 'To' {PHONE} (ayse.celik@example.com)\n" + "x" * 400
    failed = store.record_reply(request, ReplyStatus.FAILED, attempts=3, error=error, at=T0)
    assert failed.status is ReplyStatus.FAILED and failed.attempts == 3
    assert failed.recipient_masked == "+90 5** *** ** 67"
    assert failed.error is not None and failed.error.startswith("Twilio 21211: invalid 'To' ")
    assert len(failed.error) <= 300 and "\n" not in failed.error
    assert (failed.created_at, failed.updated_at) == (T0, T0)
    (row,) = raw_rows(url, "case_replies")
    stored = f"{row['error']} {row['recipient_masked']}"
    assert "5321234567" not in stored and "ayse.celik" not in stored and "1234567" not in stored

    later = T0 + timedelta(minutes=5)
    sent = store.record_reply(request, ReplyStatus.SENT, provider_id="SM1", attempts=1, at=later)
    assert (sent.status, sent.provider_id, sent.error) == (ReplyStatus.SENT, "SM1", None)
    assert (sent.created_at, sent.updated_at) == (T0, later)  # created once, updated after


def check_sent_is_never_overwritten(store: CaseStore, url: str) -> None:
    request = reply()
    store.record_reply(request, ReplyStatus.SENT, provider_id="SM1", at=T0)
    replayed = store.record_reply(request, ReplyStatus.FAILED, error="timeout", attempts=5)
    assert (replayed.status, replayed.provider_id, replayed.error) == (
        ReplyStatus.SENT,
        "SM1",
        None,
    )
    assert replayed.updated_at == T0
    assert len(raw_rows(url, "case_replies")) == 1


def check_sent_reply_ids(store: CaseStore, url: str) -> None:
    case = Case()
    store.record_reply(reply("sent", case=case), ReplyStatus.SENT, at=T0)
    store.record_reply(reply("failed", case=case), ReplyStatus.FAILED, error="550", at=T0)
    store.add_callback(reply("call", case=case, channel=Channel.CALLS), at=T0)
    many = [f"unknown-{n}" for n in range(1200)]  # more than one IN (...) chunk
    asked = [*many, "sent", "failed", "call"]
    assert store.sent_reply_ids(asked) == {"sent", "call"}
    assert store.reply_statuses(asked) == {
        "sent": ReplyStatus.SENT,
        "failed": ReplyStatus.FAILED,
        "call": ReplyStatus.CALLBACK,
    }
    later = reply("failed-later", case=case)
    store.record_reply(later, ReplyStatus.FAILED, error="21211", at=T0 + timedelta(minutes=1))
    assert [e.reply_id for e in store.failed_replies()] == ["failed-later", "failed"]
    assert [e.reply_id for e in store.failed_replies(limit=1)] == ["failed-later"]
    store.record_reply(later, ReplyStatus.SENT, at=T0 + timedelta(minutes=2))
    assert [e.reply_id for e in store.failed_replies()] == ["failed"]
    entries = store.replies_for(case.case_id)
    assert [e.reply_id for e in entries] == ["call", "failed", "sent", "failed-later"]
    assert store.replies_for("case:yok") == []


def check_callbacks_for_the_operators(store: CaseStore, url: str) -> None:
    case = Case()
    store.apply([case.created()])
    request = reply("cb-1", case=case, channel=Channel.CALLS, recipient=f"tel:{PHONE}")
    assert store.add_callback(request, at=T0) is True
    assert store.add_callback(request, at=T0 + timedelta(hours=1)) is False
    other = reply("cb-2", case=Case("wamid.not-stored"), channel=Channel.CALLS, tracking="153-X")
    assert store.add_callback(other, citizen_name="Mehmet Yılmaz", at=T0 + timedelta(minutes=1))

    waiting = store.list_callbacks()
    assert [c.callback_id for c in waiting] == ["cb-1", "cb-2"]
    first = waiting[0]
    assert (first.phone, first.citizen_name) == (PHONE, "Ayşe Çelik")  # name from the case
    assert first.tracking_number == case.first.tracking_number
    assert (first.status, first.created_at, first.done_at) == (CallbackStatus.OPEN, T0, None)
    assert waiting[1].citizen_name == "Mehmet Yılmaz" and waiting[1].tracking_number == "153-X"
    logged = store.replies_for(case.case_id)
    assert [(e.status, e.recipient_masked) for e in logged] == [
        (ReplyStatus.CALLBACK, "+90 5** *** ** 67")
    ]

    done_at = T0 + timedelta(days=1)
    done = store.complete_callback(
        "cb-1", " Operatör Zeynep ", "Vatandaş bilgilendirildi.", at=done_at
    )
    assert (done.status, done.operator, done.done_at) == (
        CallbackStatus.DONE,
        "Operatör Zeynep",
        done_at,
    )
    assert done.note == "Vatandaş bilgilendirildi."
    assert [c.callback_id for c in store.list_callbacks()] == ["cb-2"]
    assert [c.callback_id for c in store.list_callbacks(CallbackStatus.DONE)] == ["cb-1"]
    assert len(store.list_callbacks(None)) == 2

    again = store.complete_callback(
        "cb-1", "Başka Operatör", "ikinci kez", at=done_at + timedelta(1)
    )
    assert again == done  # the first completion stays
    assert store.add_callback(request) is False
    assert store.get_callback("cb-1") == done  # re-adding does not reopen it

    with pytest.raises(UnknownCallback, match="cb-yok") as caught:
        store.complete_callback("cb-yok", "Operatör Zeynep")
    assert isinstance(caught.value, SinkError) and not caught.value.retriable
    with pytest.raises(ValueError, match="operator"):
        store.complete_callback("cb-2", "   ")
    assert store.get_callback("cb-2") is not None
    assert store.get_callback("cb-2").status is CallbackStatus.OPEN  # type: ignore[union-attr]


REPLY_SCENARIOS: tuple[Scenario, ...] = (
    check_reply_log_records_and_masks,
    check_sent_is_never_overwritten,
    check_sent_reply_ids,
    check_callbacks_for_the_operators,
)


@pytest.mark.parametrize("scenario", REPLY_SCENARIOS, ids=scenario_id)
def test_replies_on_sqlite(scenario: Scenario, store: CaseStore, sqlite_url: str) -> None:
    scenario(store, sqlite_url)


def test_callback_needs_a_phone(store: CaseStore) -> None:
    with pytest.raises(ValueError, match="phone"):
        store.add_callback(reply(channel=Channel.CALLS, recipient="tel:"))
    assert store.list_callbacks(None) == []


@pytest.mark.parametrize(
    ("channel", "recipient", "masked"),
    [
        (Channel.WHATSAPP, "whatsapp:+905321234567", "+90 5** *** ** 67"),
        (Channel.CALLS, "0532 123 45 67", "05** *** ** 67"),
        (Channel.CALLS, "+49 151 2345 6789", "+***********89"),
        (Channel.EMAIL, "ayse.celik@example.com", "a***@example.com"),
        (Channel.API, "ayse@example.com", "a***@example.com"),
        (Channel.TWITTER, "@ayse_celik", "@a***"),
        (Channel.API, "bilinmeyen", "***"),
        (Channel.WHATSAPP, "  ", ""),
    ],
)
def test_mask_recipient(channel: Channel, recipient: str, masked: str) -> None:
    assert mask_recipient(channel, recipient) == masked


def test_format_callbacks_for_a_terminal(store: CaseStore) -> None:
    assert format_callbacks([]) == "Bekleyen geri arama yok."
    store.add_callback(reply("cb-1", channel=Channel.CALLS, tracking="153-ABCDE-FGHJK7"), at=T0)
    store.complete_callback(
        "cb-1", "Zeynep", "ulaşıldı", at=datetime(2025, 3, 4, 21, 30, tzinfo=UTC)
    )
    shown = format_callbacks(store.list_callbacks(None))
    assert "[tamamlandı] cb-1" in shown
    assert "Başvuru no: 153-ABCDE-FGHJK7" in shown
    assert "Oluşturma: 03.03.2025 10:15" in shown  # 07:15Z is 10:15 in Istanbul
    assert f"Aranacak: (ad yok)  {PHONE}" in shown
    assert "Arayan: Zeynep (05.03.2025 00:30)  Not: ulaşıldı" in shown  # past midnight there
