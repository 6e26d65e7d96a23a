"""Shared pieces: a real blob store with a real JPEG collage, and the signed-media route
served by uvicorn on a loopback port (the public URL Twilio is given)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image
from pydantic import SecretStr

from schemas.common import AttachmentRef
from schemas.ids import tracking_number
from sinks.blobstore import BlobStore
from sinks.replies.links import MediaLinks, media_router
from tests.integration.services import free_port
from tests.sinks.replies.fakes import ServerThread

SECRET = SecretStr("medya-imza-anahtari-test")
TTL_S = 3600
#: A tracking number with a valid check character.
TRACKING = tracking_number("whatsapp:SM0123456789abcdef0123456789abcdef")


def collage_jpeg() -> bytes:
    """A small before/after JPEG: grey on the left, green on the right."""
    image = Image.new("RGB", (320, 160), (120, 120, 120))
    image.paste((40, 160, 60), (160, 0, 320, 160))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes=5 * 1024 * 1024)


@pytest.fixture
def collage(blobs: BlobStore) -> AttachmentRef:
    return blobs.put(collage_jpeg(), filename="collage.jpg", declared_type="image/jpeg")


@pytest.fixture
def links() -> MediaLinks:
    """Links to a public URL nothing here serves (for tests that do not fetch them)."""
    return MediaLinks(SECRET, "https://intake.example.gov.tr", TTL_S)


@pytest.fixture
def media(blobs: BlobStore) -> Iterator[tuple[MediaLinks, ServerThread]]:
    """The ``/media`` route on uvicorn; the links name that server as the public base URL."""
    port = free_port()
    links = MediaLinks(SECRET, f"http://127.0.0.1:{port}/", TTL_S)
    app = FastAPI()
    app.include_router(media_router(links, blobs))
    with ServerThread(app, port) as server:
        yield links, server
