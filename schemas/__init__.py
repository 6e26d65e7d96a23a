"""The topics' contracts: frozen pydantic v2 models, one family per pipeline stage.

This package imports no Kafka, Faust or database code, so unit systems can depend on it alone.
"""

from schemas.case import CaseEvent, CaseEventKind, Classification, Route
from schemas.common import AttachmentRef, Channel, CitizenContact, GeoPoint
from schemas.message import CitizenMessage
from schemas.raw import ApiSubmission, RawEvent
from schemas.registry import TOPIC_MODELS, export_json_schemas
from schemas.work import (
    EmergencyItem,
    ForwardedWorkItem,
    ReplyRequest,
    ReviewItem,
    UnitResponse,
    UnitWorkItem,
)

__all__ = [
    "TOPIC_MODELS",
    "ApiSubmission",
    "AttachmentRef",
    "CaseEvent",
    "CaseEventKind",
    "Channel",
    "CitizenContact",
    "CitizenMessage",
    "Classification",
    "EmergencyItem",
    "ForwardedWorkItem",
    "GeoPoint",
    "RawEvent",
    "ReplyRequest",
    "ReviewItem",
    "Route",
    "UnitResponse",
    "UnitWorkItem",
    "export_json_schemas",
]
