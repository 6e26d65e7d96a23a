"""The committed JSON Schema files (what unit systems read) must match the models."""

import json
from pathlib import Path

from infra.cli import main
from schemas.registry import render_json_schemas

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "json"


def test_committed_json_schemas_are_up_to_date() -> None:
    rendered = render_json_schemas()
    stale = [
        name
        for name, text in rendered.items()
        if not (COMMITTED / name).is_file() or (COMMITTED / name).read_text("utf-8") != text
    ]
    extra = sorted({p.name for p in COMMITTED.glob("*.json")} - set(rendered))
    assert not stale and not extra, f"run `make schemas`: stale {stale}, extra {extra}"


def test_export_command_writes_valid_json_schema(tmp_path: Path) -> None:
    assert main(["schemas", "export", str(tmp_path)]) == 0
    work_item = json.loads((tmp_path / "unit-work-item.v1.schema.json").read_text())
    assert work_item["properties"]["unit"]["enum"][0] == "aydinlatma"
    assert work_item["properties"]["schema_version"]["const"] == 1
    index = json.loads((tmp_path / "topics.json").read_text())
    assert index["units.<unit>"] == "unit-work-item.v1.schema.json"
    assert main(["schemas", "export", str(tmp_path), "--check"]) == 0
    (tmp_path / "case-event.v1.schema.json").write_text("{}")
    assert main(["schemas", "export", str(tmp_path), "--check"]) == 1
