"""``POST /api/v1/calls``: call-centre software sends call records as they are closed.

The body is one record (a JSON object, Turkish or English field names, as in the drop files)
or a list of them. The answer is 202 with the calls' tracking numbers only after
``Delivery.deliver`` returned, that is after Kafka acknowledged the raw events or, when Kafka
is unreachable, after they were stored in the durable outbox that is published when it is back.
A call id is the Kafka key, so sending the same call again records nothing new and gives the
same tracking number. Nothing is accepted when any record is invalid (422).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from connectors.api import RETRY_AFTER_S
from connectors.calls.cdr import CdrIndex
from connectors.calls.records import call_event, call_tracking_number, parse_call
from connectors.errors import ConnectorError
from connectors.responses import BEARER, bearer_guard, error_response
from connectors.runtime import Delivery, raw_record
from infra.settings import Settings
from schemas.common import Channel, utc_now
from schemas.ids import message_id

__all__ = ["CALLS_PATH", "MAX_CALLS_PER_REQUEST", "build_calls_router"]

log = logging.getLogger(__name__)

CALLS_PATH = "/api/v1/calls"
#: More records than this in one request is 413: send them in several requests.
MAX_CALLS_PER_REQUEST = 500
#: Module level so that FastAPI can resolve the annotation of the endpoint's parameter.

_REQUEST_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "description": "one call record"},
                        {"type": "array", "items": {"type": "object"}, "minItems": 1},
                    ],
                    "description": "cagri_id/call_id, arayan/caller, baslangic/start, "
                    "bitis/end, operator, kuyruk/queue, kategori/category, notlar/notes, "
                    "adres/address, hatta_cozuldu/resolved (evet/hayır, true/false, 1/0)",
                }
            }
        },
    }
}


def _invalid(detail: str, errors: list[dict[str, Any]]) -> JSONResponse:
    return error_response(422, "invalid_call_record", detail, errors=errors)


def _read_records(
    document: Any,
) -> tuple[list[dict[str, str]], list[dict[str, Any]]] | JSONResponse:
    """The canonical records of the body, or the response refusing it."""
    prefixes: list[list[str | int]]
    if isinstance(document, dict):
        rows, prefixes = [document], [["body"]]
    elif isinstance(document, list) and document:
        rows, prefixes = document, [["body", index] for index in range(len(document))]
    else:
        message = "must be a call record (a JSON object) or a non-empty list of them"
        return _invalid(f"The body {message}", [{"location": ["body"], "message": message}])
    if len(rows) > MAX_CALLS_PER_REQUEST:
        detail = f"At most {MAX_CALLS_PER_REQUEST} call records per request, not {len(rows)}"
        return error_response(413, "too_many_calls", detail)
    records: list[dict[str, str]] = []
    errors: list[dict[str, Any]] = []
    for row, prefix in zip(rows, prefixes, strict=True):
        if not isinstance(row, dict):
            errors.append({"location": prefix, "message": "must be a JSON object"})
            continue
        record, problems = parse_call(row)
        errors.extend({"location": [*prefix, field], "message": why} for field, why in problems)
        records.append(record)
    return records, errors


def build_calls_router(
    settings: Settings,
    delivery: Delivery,
    *,
    cdrs: CdrIndex | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> APIRouter:
    """The router with ``POST /api/v1/calls``; see the module docstring for the contract.

    ``delivery`` publishes (its publisher must be started) and keeps the outbox; ``cdrs``
    defaults to ``settings.connectors.calls.cdr_file``, joined like the drop files.
    """
    router = APIRouter(tags=["calls"])
    guard = bearer_guard(settings)
    cdr_index = cdrs if cdrs is not None else CdrIndex(settings.connectors.calls.cdr_file)

    @router.post(
        CALLS_PATH,
        status_code=202,
        summary="Record Alo 153 calls (one record or a list)",
        openapi_extra=_REQUEST_BODY_DOC,
    )
    async def calls(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> JSONResponse:
        if (refused := guard(credentials, "calls")) is not None:
            return refused
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error_response(415, "unsupported_media_type", "Send application/json")
        try:
            document = json.loads(await request.body())
        except ValueError:
            message = "is not JSON (UTF-8)"
            return _invalid(f"The body {message}", [{"location": ["body"], "message": message}])
        read = _read_records(document)
        if isinstance(read, JSONResponse):
            return read
        records, errors = read
        if errors:
            listed = "; ".join(
                f"{'.'.join(map(str, e['location']))}: {e['message']}" for e in errors
            )
            return _invalid(f"Invalid call records: {listed}", errors)
        await asyncio.to_thread(cdr_index.refresh)
        now = clock()
        out = [raw_record(call_event(r, cdr_index.lookup(r["call_id"]), now)) for r in records]
        try:
            where = await delivery.deliver(out)
        except (ConnectorError, OSError, sqlite3.Error) as exc:
            log.warning("calls not recorded: %d records, %s", len(records), type(exc).__name__)
            return error_response(
                503,
                "not_recorded",
                "The calls could not be recorded right now; send them again in a few seconds.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        call_ids = [r["call_id"] for r in records]
        log.info("calls accepted (%s): %s", where, ", ".join(call_ids))
        return JSONResponse(
            {
                "status": "accepted",
                "tracking_numbers": [call_tracking_number(c) for c in call_ids],
                "calls": [
                    {
                        "call_id": c,
                        "message_id": message_id(Channel.CALLS.value, c),
                        "tracking_number": call_tracking_number(c),
                    }
                    for c in call_ids
                ],
            },
            status_code=202,
        )

    return router
