"""The operators' commands through ``intake``'s entry point, on a SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.cli import main
from schemas.case import Classification
from schemas.common import Channel, CitizenContact
from schemas.ids import message_id, tracking_number
from schemas.message import CitizenMessage
from schemas.work import ReplyRequest
from sinks.store import CaseStore
from streams.routing import open_case


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("INTAKE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _store(data_dir: Path) -> tuple[CaseStore, str]:
    store = CaseStore(f"sqlite:///{data_dir / 'cases.sqlite3'}")
    store.migrate()
    mid = message_id("calls", "c-1")
    msg = CitizenMessage(
        message_id=mid,
        tracking_number=tracking_number(mid),
        channel="calls",
        received_at=datetime(2026, 11, 10, 9, 0, tzinfo=UTC),
        text="Sokak lambası yanmıyor",
        text_folded="sokak lambası yanmıyor",
        citizen=CitizenContact(name="Hasan Deneme", phone="+903221234567"),
    )
    store.apply([open_case(msg, Classification(unit="aydinlatma", confidence=1, method="t"))])
    return store, msg.tracking_number


def test_callbacks_listed_and_marked_done(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, case_id = _store(data_dir)
    request = ReplyRequest(
        reply_id="cb-1",
        case_id=case_id,
        channel=Channel.CALLS,
        recipient="+903221234567",
        text="Lamba onarıldı.",
        tracking_number=case_id,
        kind="answer",
    )
    store.add_callback(request)
    assert main(["callbacks"]) == 0
    listed = capsys.readouterr().out
    assert case_id in listed and "Lamba onarıldı." in listed and "Hasan Deneme" in listed
    assert main(["callbacks", "done", "cb-1", "--operator", "op-7"]) == 0
    capsys.readouterr()
    assert main(["callbacks"]) == 0
    assert "Bekleyen geri arama yok." in capsys.readouterr().out
    assert main(["callbacks", "done", "nope", "--operator", "op-7"]) == 1


def test_case_history_and_monthly_report(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, case_id = _store(data_dir)
    assert main(["case", case_id]) == 0
    shown = capsys.readouterr().out
    assert case_id in shown and "created" in shown and "birim=aydinlatma" in shown
    assert main(["case", "153-ZZZZZ-ZZZZZZ"]) == 1
    assert main(["report", "--month", "2026-13"]) == 2
    assert main(["report", "--month", "2026-11"]) == 0
    csv_path, html_path = (Path(line) for line in capsys.readouterr().out.split())
    assert csv_path.parent == data_dir / "reports"
    assert "aydinlatma" in csv_path.read_text(encoding="utf-8-sig")
    assert "Kasım 2026" in html_path.read_text(encoding="utf-8")
