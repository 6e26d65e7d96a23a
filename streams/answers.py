"""The worker's side of a unit's answer: look the case up, make the collage, decide.

``AnswerDesk.handle`` does the I/O around :func:`streams.lifecycle.handle_response`: the case
and its reports from the case store, the citizen's photos and the unit's after-photos from
the blob store (after-photos given as URLs are fetched once, within size and time limits,
and kept in the blob store), and the before/after collage, rendered in a thread. Photo
problems never stop the answer: they are written on the ``answered`` event and the reply
goes out with text only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from pydantic import AnyHttpUrl

from schemas.case import UnitResponse
from schemas.common import AttachmentRef
from sinks.blobstore import BlobStore
from sinks.collage import CollageSettings, PhotoInput, render_collage
from sinks.errors import UnknownCase
from sinks.store import CaseRecord, CaseStore
from streams.deadlines import WorkingCalendar
from streams.lifecycle import Outcome, handle_response

__all__ = ["AnswerDesk"]

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 20.0


@dataclass
class AnswerDesk:
    """Turns a ``UnitResponse`` into an :class:`~streams.lifecycle.Outcome`."""

    store: CaseStore
    blobs: BlobStore
    calendar: WorkingCalendar
    collage: CollageSettings
    #: How long an answer waits for its case to reach the store (the store writes in
    #: batches, so a unit that answers at once can be a moment ahead of it).
    unknown_case_wait_s: float = 5.0

    async def handle(self, response: UnitResponse) -> Outcome:
        """The outcome of ``response``; ``UnknownCase`` (not retriable) when no such case."""
        case = await self._case(response.case_id)
        reports = await asyncio.to_thread(self.store.reports_of, case.case_id)
        collage_ref, note = None, None
        if response.status in ("resolved", "rejected"):
            collage_ref, note = await self._collage(case, response)
        return handle_response(
            response,
            case,
            reports,
            calendar=self.calendar,
            collage=collage_ref,
            collage_note=note,
        )

    async def _case(self, case_id: str) -> CaseRecord:
        deadline = asyncio.get_running_loop().time() + self.unknown_case_wait_s
        while True:
            case = await asyncio.to_thread(self.store.get_case, case_id)
            if case is not None:
                return case
            if asyncio.get_running_loop().time() >= deadline:
                raise UnknownCase([case_id])
            await asyncio.sleep(0.25)

    async def _collage(
        self, case: CaseRecord, response: UnitResponse
    ) -> tuple[AttachmentRef | None, str | None]:
        problems: list[str] = []
        before = self._photos([a for a in case.attachments if _image(a)], problems)
        after_refs: list[AttachmentRef] = []
        for item in response.after_photos:
            if isinstance(item, AttachmentRef):
                after_refs.append(item)
            else:
                fetched = await self._fetch(item, problems)
                if fetched is not None:
                    after_refs.append(fetched)
        after = self._photos(after_refs, problems)
        if not before or not after:
            side = "vatandaş fotoğrafı" if not before else "birim fotoğrafı"
            return None, _note([f"kolaj yok: {side} yok", *problems])
        result = await asyncio.to_thread(
            render_collage,
            before,
            after,
            tracking_number=case.tracking_number,
            before_date=case.received_at,
            after_date=response.responded_at,
            settings=self.collage,
        )
        problems += [f"{p.side} {p.name}: {p.reason}" for p in result.problems]
        if result.jpeg is None:
            return None, _note([f"kolaj yok: {result.skipped_reason}", *problems])
        ref = await asyncio.to_thread(
            self.blobs.put,
            result.jpeg,
            filename=f"once-sonra-{case.tracking_number}.jpg",
            declared_type="image/jpeg",
        )
        return ref, _note(problems)

    def _photos(self, refs: list[AttachmentRef], problems: list[str]) -> list[PhotoInput]:
        photos = []
        for ref in refs:
            try:
                photos.append(PhotoInput.from_ref(ref, self.blobs.get(ref)))
            except (FileNotFoundError, ValueError):
                problems.append(f"{ref.sha256[:16]}: blob store'da yok")
        return photos

    async def _fetch(self, url: AnyHttpUrl, problems: list[str]) -> AttachmentRef | None:
        """Download an after-photo given by URL (at most the blob store's size limit)."""
        limit = self.blobs.max_bytes
        try:
            async with (
                httpx.AsyncClient(timeout=_FETCH_TIMEOUT_S, follow_redirects=True) as client,
                client.stream("GET", str(url)) as answer,
            ):
                answer.raise_for_status()
                chunks, size = [], 0
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ValueError(f"larger than {limit} bytes")
                    chunks.append(chunk)
                declared = answer.headers.get("content-type")
            return await asyncio.to_thread(self.blobs.put, b"".join(chunks), declared_type=declared)
        except (httpx.HTTPError, ValueError) as exc:
            host = url.host or "?"
            problems.append(f"fotoğraf indirilemedi ({host}): {type(exc).__name__}")
            log.warning("after-photo from %s not fetched: %s", host, type(exc).__name__)
            return None


def _image(ref: AttachmentRef) -> bool:
    return ref.content_type.startswith("image/")


def _note(problems: list[str]) -> str | None:
    return "; ".join(problems)[:2000] if problems else None
