"""Which model each topic carries, and the JSON Schema export for unit systems."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.case import CaseEvent
from schemas.common import Channel
from schemas.message import CitizenMessage
from schemas.ops import ChannelAlarm
from schemas.raw import ApiSubmission, RawEvent
from schemas.taxonomy import taxonomy
from schemas.work import (
    EmergencyItem,
    ForwardedWorkItem,
    ReplyRequest,
    ReviewItem,
    UnitResponse,
    UnitWorkItem,
)

__all__ = [
    "ALARMS_TOPIC",
    "CLUSTER_TOPIC",
    "DEADLETTER_TOPIC",
    "TOPIC_MODELS",
    "all_topic_names",
    "export_json_schemas",
    "raw_topic",
    "render_json_schemas",
    "unit_topic",
]

DEADLETTER_TOPIC = "intake.deadletter"
ALARMS_TOPIC = "intake.alarms"
#: Internal repartition topic: classified ``created`` events keyed by the clustering key, so
#: that reports that may be one problem meet on one partition and in one table window.
CLUSTER_TOPIC = "intake.cluster"


def raw_topic(channel: Channel | str) -> str:
    """``intake.raw.<channel>``."""
    return f"intake.raw.{Channel(channel).value}"


def unit_topic(unit: str) -> str:
    """``units.<unit>``."""
    return f"units.{unit}"


#: Topic (or topic pattern) → the model of its values. The dead-letter topic carries the
#: original bytes with headers (see ``streams.deadletter``), so it has no model.
TOPIC_MODELS: dict[str, type[BaseModel]] = {
    "intake.raw.<channel>": RawEvent,
    "intake.messages": CitizenMessage,
    "intake.cases": CaseEvent,
    CLUSTER_TOPIC: CaseEvent,
    "units.<unit>": UnitWorkItem,
    "districts.<ilce>": ForwardedWorkItem,
    "external.<body>": ForwardedWorkItem,
    "units.responses": UnitResponse,
    "intake.review": ReviewItem,
    "intake.emergency": EmergencyItem,
    "intake.replies": ReplyRequest,
    ALARMS_TOPIC: ChannelAlarm,
}

#: Models exported as JSON Schema, by file stem.
_EXPORTED: dict[str, type[BaseModel]] = {
    "raw-event": RawEvent,
    "api-submission": ApiSubmission,
    "citizen-message": CitizenMessage,
    "case-event": CaseEvent,
    "unit-work-item": UnitWorkItem,
    "forwarded-work-item": ForwardedWorkItem,
    "unit-response": UnitResponse,
    "review-item": ReviewItem,
    "emergency-item": EmergencyItem,
    "reply-request": ReplyRequest,
    "channel-alarm": ChannelAlarm,
}


def all_topic_names() -> list[str]:
    """Every concrete topic of the contract, derived from the channels and the taxonomy."""
    tax = taxonomy()
    names = [raw_topic(channel) for channel in Channel]
    names += ["intake.messages", CLUSTER_TOPIC, "intake.cases", "units.responses", "intake.review"]
    names += ["intake.emergency", "intake.replies", ALARMS_TOPIC, DEADLETTER_TOPIC]
    names += [unit_topic(code) for code in tax.units]
    names += [f"districts.{code}" for code in tax.districts]
    names += [f"external.{code}" for code in tax.bodies]
    return names


def _version(model: type[BaseModel]) -> int:
    field = model.model_fields.get("schema_version")
    return int(field.default) if field is not None else 1


def render_json_schemas() -> dict[str, str]:
    """File name → JSON text of every exported schema, plus ``topics.json`` (the index)."""
    files: dict[str, str] = {}
    stems = {model: stem for stem, model in _EXPORTED.items()}
    for stem, model in _EXPORTED.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"{stem}.v{_version(model)}.schema.json"
        files[f"{stem}.v{_version(model)}.schema.json"] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    index = {
        topic: f"{stems[model]}.v{_version(model)}.schema.json"
        for topic, model in TOPIC_MODELS.items()
    }
    index[DEADLETTER_TOPIC] = "original bytes; headers __intake.errors.* (see README)"
    files["topics.json"] = json.dumps(index, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return files


def export_json_schemas(directory: Path) -> list[Path]:
    """Write the JSON Schema files into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_json_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
