"""Signed, expiring links to blobs, and the route that serves them (``GET /media/{sha256}``).

Twilio fetches a WhatsApp message's media from a public URL, without our credentials. The
collage is personal (a citizen's street, sometimes their house), so the URL carries an
expiry and an HMAC-SHA256 over ``"<sha256>:<exp>"``: only the product can mint one, and it
stops working after ``ttl_s``. Nothing else in the blob store is reachable this way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pydantic import SecretStr

from connectors.responses import error_response
from schemas.common import AttachmentRef, utc_now
from sinks.blobstore import BlobStore, sniff_content_type

__all__ = ["MEDIA_PATH", "MediaLinks", "media_router"]

log = logging.getLogger(__name__)

#: The route of a signed blob (``{sha256}`` is the hex digest).
MEDIA_PATH = "/media/{sha256}"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIG = re.compile(r"^[0-9a-f]{64}$")
#: Bytes read to tell the content type; every signature the sniffer knows fits.
_SNIFF_BYTES = 32
#: Types a browser may show inline; anything else is sent as a download.
_INLINE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class MediaLinks:
    """Mints and checks ``<public_base_url>/media/<sha256>?exp=<unix>&sig=<hex>`` links."""

    def __init__(self, secret: SecretStr, public_base_url: str, ttl_s: int) -> None:
        key = secret.get_secret_value().encode("utf-8")
        if not key:
            raise ValueError("the media-link secret must not be empty")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._key = key
        self.public_base_url = public_base_url.rstrip("/")
        self.ttl_s = ttl_s

    def signature(self, sha256: str, exp: int) -> str:
        """HMAC-SHA256 hex of ``"<sha256>:<exp>"`` with the secret."""
        return hmac.new(self._key, f"{sha256}:{exp}".encode("ascii"), hashlib.sha256).hexdigest()

    def url_for(self, ref: AttachmentRef, now: datetime) -> str:
        """A link to ``ref`` that works until ``now`` + ``ttl_s``."""
        exp = int(now.timestamp()) + self.ttl_s
        query = urlencode({"exp": exp, "sig": self.signature(ref.sha256, exp)})
        return f"{self.public_base_url}{MEDIA_PATH.format(sha256=ref.sha256)}?{query}"

    def verify(self, sha256: str, exp: int, sig: str, now: datetime) -> bool:
        """Whether ``sig`` is this secret's signature of ``sha256`` and ``exp`` is still ahead
        of ``now`` (the comparison takes the same time whatever the signature)."""
        if not _HEX64.match(sha256) or not _SIG.match(sig):
            return False
        good = hmac.compare_digest(self.signature(sha256, exp), sig)
        return good and exp > now.timestamp()


def media_router(
    links: MediaLinks, blob_store: BlobStore, clock: Callable[[], datetime] = utc_now
) -> APIRouter:
    """``GET /media/{sha256}?exp=…&sig=…``: the blob's bytes, or 403 (bad or expired link),
    or 404 (no such blob). Private caching until the link expires, no content sniffing."""
    router = APIRouter(tags=["media"])

    @router.get(
        MEDIA_PATH,
        summary="A blob behind a signed, expiring link (WhatsApp collages)",
        response_class=Response,
        responses={403: {"description": "bad or expired link"}, 404: {"description": "gone"}},
    )
    def get_media(sha256: str, exp: str = "", sig: str = "") -> Response:
        now = clock()
        expires = int(exp) if exp.isascii() and exp.isdigit() and len(exp) <= 12 else 0
        if not links.verify(sha256, expires, sig.lower(), now):
            log.info("media link refused: bad or expired signature")
            return error_response(
                403,
                "forbidden",
                "Bağlantı geçersiz veya süresi dolmuş / The link is invalid or has expired",
            )
        path = blob_store.path_for(sha256)
        try:
            with path.open("rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except FileNotFoundError:
            log.warning("media link to a missing blob %s…", sha256[:12])
            return error_response(
                404, "not-found", "Dosya bulunamadı / The file is no longer available"
            )
        content_type = sniff_content_type(head)
        remaining = max(int(expires - now.timestamp()), 0)
        headers = {
            "Cache-Control": f"private, max-age={remaining}",
            "X-Content-Type-Options": "nosniff",
        }
        if content_type not in _INLINE:
            headers["Content-Disposition"] = "attachment"
        return FileResponse(path, media_type=content_type, headers=headers)

    return router
