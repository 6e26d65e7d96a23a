"""The intake API (``POST /api/v1/intake``): operators, the field team and the CİMER and
bilgi edinme desks enter messages that did not arrive on an automated channel.

The answer is 202 with a tracking number only after Kafka acknowledged the raw event, so a
number read to a citizen always refers to a recorded message. Photos go to the blob store
first (content-addressed, so a retry stores nothing twice); the event carries references.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from connectors.errors import ConnectorError
from connectors.publisher import Publisher, publish_raw_event
from connectors.responses import BEARER, bearer_guard, error_response
from infra.settings import Settings
from schemas.common import AttachmentRef, Channel, utc_now
from schemas.ids import message_id, tracking_number
from schemas.raw import ApiSubmission, RawEvent
from sinks.blobstore import BlobStore, sniff_content_type
from sinks.errors import BlobTooLarge

__all__ = [
    "INTAKE_PATH",
    "build_intake_router",
    "field_errors",
    "provider_id_from_key",
    "submission_event",
    "submission_tracking_number",
]

log = logging.getLogger(__name__)

INTAKE_PATH = "/api/v1/intake"
#: Seconds a client is asked to wait before retrying when Kafka did not acknowledge.
RETRY_AFTER_S = 5
_MAX_IDEMPOTENCY_KEY = 128
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
_IDEMPOTENCY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:alo153-intake:idempotency-key")
_SNIFF_BYTES = 32
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
#: Module level so that FastAPI can resolve the annotation of the endpoint's parameter.


def field_errors(exc: ValidationError, prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """Each field error as ``{"location": [...], "message": ...}``, without the input values.

    The input is left out on purpose: it may hold a citizen's personal data.
    """
    return [
        {"location": [*prefix, *error["loc"]], "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def provider_id_from_key(idempotency_key: str | None) -> str:
    """A fresh UUID4, or a UUID5 derived from the client's ``Idempotency-Key``.

    The same key always gives the same provider id, hence the same Kafka key and tracking
    number, so a client retry is recognised downstream as the same message.
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, idempotency_key))


def submission_event(
    submission: ApiSubmission,
    provider_id: str,
    received_at: datetime,
    attachments: Sequence[AttachmentRef] = (),
) -> RawEvent:
    """The raw event for ``intake.raw.api`` that carries one submission."""
    return RawEvent(
        channel=Channel.API,
        provider_id=provider_id,
        received_at=received_at,
        payload=submission.model_dump(mode="json"),
        attachments=tuple(attachments),
    )


def submission_tracking_number(provider_id: str) -> str:
    """The tracking number of the API message with this provider id."""
    return tracking_number(message_id(Channel.API.value, provider_id))


class _Problem(Exception):
    """Ends a request early with an error response (private control flow of this module)."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _invalid(detail: str, errors: Sequence[dict[str, Any]] = ()) -> _Problem:
    return _Problem(error_response(422, "invalid_submission", detail, errors=errors))


def _invalid_fields(exc: ValidationError, prefix: Sequence[str | int]) -> _Problem:
    errors = field_errors(exc, prefix)
    listed = "; ".join(f"{'.'.join(map(str, e['location']))}: {e['message']}" for e in errors)
    return _invalid(f"The submission is invalid: {listed}", errors)


def _photo_too_large(name: str, limit: int) -> _Problem:
    detail = f"The photo {name!r} is larger than {limit} bytes"
    return _Problem(error_response(413, "photo_too_large", detail))


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not (0 < len(key) <= _MAX_IDEMPOTENCY_KEY and _VISIBLE_ASCII.match(key)):
        message = f"must be 1 to {_MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        raise _invalid(
            f"Idempotency-Key {message}",
            [{"location": ["header", "Idempotency-Key"], "message": message}],
        )
    return key


def _parse_submission(data: bytes | str, prefix: Sequence[str | int]) -> ApiSubmission:
    try:
        return ApiSubmission.model_validate_json(data)
    except ValidationError as exc:
        raise _invalid_fields(exc, prefix) from None


async def _read_multipart(
    request: Request, max_photos: int
) -> tuple[ApiSubmission, list[UploadFile]]:
    """Parse the form (the caller closes it) into the submission and the photo parts."""
    try:
        form = await request.form(max_files=max_photos, max_fields=16)
    except HTTPException as exc:  # starlette's translation of a multipart parser error
        raise _invalid(
            f"The multipart body could not be read: {exc.detail}",
            [{"location": ["body"], "message": str(exc.detail)}],
        ) from None
    submission: ApiSubmission | None = None
    photos: list[UploadFile] = []
    for name, value in form.multi_items():
        if name == "photos" and isinstance(value, UploadFile):
            if value.filename or value.size:  # a browser sends an empty part for "no file"
                photos.append(value)
            continue
        if name == "submission" and submission is None:
            data = await value.read() if isinstance(value, UploadFile) else value
            submission = _parse_submission(data, ["body", "submission"])
            continue
        message = {
            "photos": "must be a file part",
            "submission": "must be sent once",
        }.get(name, "unexpected field; send one 'submission' and zero or more 'photos'")
        raise _invalid(
            f"Form field {name!r} {message}", [{"location": ["body", name], "message": message}]
        )
    if submission is None:
        raise _invalid(
            "The form field 'submission' (the submission as JSON) is missing",
            [{"location": ["body", "submission"], "message": "Field required"}],
        )
    return submission, photos


async def _check_photos(photos: Sequence[UploadFile], max_bytes: int) -> list[str]:
    """Refuse oversized or non-image photos before anything is stored; returns sniffed types."""
    kinds = []
    for index, photo in enumerate(photos):
        name = photo.filename or f"photos[{index}]"
        if (photo.size or 0) > max_bytes:
            raise _photo_too_large(name, max_bytes)
        head = await photo.read(_SNIFF_BYTES)
        await photo.seek(0)
        kind = sniff_content_type(head)
        if not kind.startswith("image/"):
            message = f"{name!r} is not an image (its content is {kind})"
            raise _invalid(
                f"Only photos can be attached: {message}",
                [{"location": ["body", "photos", index], "message": message}],
            )
        kinds.append(kind)
    return kinds


async def _store_photos(
    photos: Sequence[UploadFile], kinds: Sequence[str], blobs: BlobStore
) -> list[AttachmentRef]:
    refs = []
    for photo, kind in zip(photos, kinds, strict=True):
        data = await photo.read()
        try:
            ref = await asyncio.to_thread(
                blobs.put, data, filename=photo.filename, declared_type=kind
            )
        except BlobTooLarge:
            raise _photo_too_large(photo.filename or "photo", blobs.max_bytes) from None
        refs.append(ref)
    return refs


_REQUEST_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "ApiSubmission (api-submission.v1)"}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["submission"],
                    "properties": {
                        "submission": {"type": "string", "description": "ApiSubmission as JSON"},
                        "photos": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            },
        },
    },
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": _MAX_IDEMPOTENCY_KEY},
            "description": "Same key on a retry → same tracking number",
        }
    ],
}


def build_intake_router(
    settings: Settings,
    publisher: Publisher,
    blobs: BlobStore,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> APIRouter:
    """The router with ``POST /api/v1/intake``; see the module docstring for the contract."""
    router = APIRouter(tags=["intake"])
    guard = bearer_guard(settings)
    max_photos = settings.web.max_photos
    max_photo_bytes = min(settings.blobs.max_bytes, blobs.max_bytes)

    async def read_body(request: Request) -> tuple[ApiSubmission, list[AttachmentRef]]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return _parse_submission(await request.body(), ["body"]), []
        if content_type in _FORM_TYPES:
            submission, photos = await _read_multipart(request, max_photos)
            kinds = await _check_photos(photos, max_photo_bytes)
            return submission, await _store_photos(photos, kinds, blobs)
        raise _Problem(
            error_response(
                415,
                "unsupported_media_type",
                "Send application/json, or multipart/form-data with 'submission' and 'photos'",
            )
        )

    @router.post(
        INTAKE_PATH,
        status_code=202,
        summary="Enter a citizen message (operator, field team, CİMER, bilgi edinme, desk)",
        openapi_extra=_REQUEST_BODY_DOC,
    )
    async def intake(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> JSONResponse:
        if (refused := guard(credentials, "intake")) is not None:
            return refused
        try:
            provider_id = provider_id_from_key(_idempotency_key(request))
            submission, refs = await read_body(request)
        except _Problem as problem:
            return problem.response
        finally:
            await request.close()  # closes uploaded files spooled to disk
        event = submission_event(submission, provider_id, clock(), refs)
        tracking = submission_tracking_number(provider_id)
        try:
            await publish_raw_event(publisher, event)
        except ConnectorError as exc:
            log.warning(
                "intake not recorded: tracking=%s source=%s error=%s",
                tracking,
                submission.source.value,
                type(exc).__name__,
            )
            return error_response(
                503,
                "not_recorded",
                "The message could not be recorded right now. Retry in a few seconds with the "
                "same Idempotency-Key; the tracking number will be the same.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        log.info(
            "intake accepted: tracking=%s source=%s photos=%d",
            tracking,
            submission.source.value,
            len(refs),
        )
        return JSONResponse(
            {
                "tracking_number": tracking,
                "message_id": message_id(Channel.API.value, provider_id),
                "status": "accepted",
                "message": f"Başvurunuz alındı. Takip numaranız: {tracking}",
            },
            status_code=202,
        )

    return router
