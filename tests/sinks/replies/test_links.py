"""Signed, expiring media links: the signer on its own, and the route over a real socket."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from schemas.common import AttachmentRef, utc_now
from sinks.blobstore import BlobStore
from sinks.replies.links import MediaLinks
from tests.sinks.replies.conftest import SECRET, TTL_S, collage_jpeg
from tests.sinks.replies.fakes import ServerThread

NOW = datetime(2025, 5, 12, 9, 30, tzinfo=UTC)
REF = AttachmentRef(sha256="ab" * 32, size=10, content_type="image/jpeg")


def parts(url: str) -> tuple[str, int, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.rsplit("/", 1)[1], int(query["exp"][0]), query["sig"][0]


def test_url_carries_expiry_and_hmac_of_digest_and_expiry() -> None:
    links = MediaLinks(SECRET, "https://intake.adana.bel.tr/", TTL_S)
    url = links.url_for(REF, NOW)
    exp = int(NOW.timestamp()) + TTL_S
    expected = hmac.new(
        SECRET.get_secret_value().encode(), f"{REF.sha256}:{exp}".encode(), hashlib.sha256
    ).hexdigest()
    assert url == f"https://intake.adana.bel.tr/media/{REF.sha256}?exp={exp}&sig={expected}"


def test_verify_accepts_only_the_exact_unexpired_signature() -> None:
    links = MediaLinks(SECRET, "https://intake.adana.bel.tr", TTL_S)
    sha, exp, sig = parts(links.url_for(REF, NOW))
    assert links.verify(sha, exp, sig, NOW)
    assert links.verify(sha, exp, sig, NOW + timedelta(seconds=TTL_S - 1))
    assert not links.verify(sha, exp, sig, NOW + timedelta(seconds=TTL_S))  # expired
    assert not links.verify(sha, exp + 3600, sig, NOW)  # expiry pushed out
    assert not links.verify("cd" * 32, exp, sig, NOW)  # another blob
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not links.verify(sha, exp, flipped, NOW)
    assert not links.verify(sha, exp, sig[:-2], NOW)
    other = MediaLinks(SecretStr("baska-anahtar"), "https://intake.adana.bel.tr", TTL_S)
    assert not other.verify(sha, exp, sig, NOW)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        MediaLinks(SecretStr(""), "https://intake.adana.bel.tr", TTL_S)


def test_route_serves_the_blob_with_private_caching_and_nosniff(
    media: tuple[MediaLinks, ServerThread], collage: AttachmentRef
) -> None:
    links, _server = media
    response = httpx.get(links.url_for(collage, utc_now()))
    assert response.status_code == 200
    assert response.content == collage_jpeg()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    cache = re.fullmatch(r"private, max-age=(\d+)", response.headers["cache-control"])
    assert cache is not None
    assert TTL_S - 5 <= int(cache.group(1)) <= TTL_S


def test_route_refuses_tampered_expired_and_unsigned_links(
    media: tuple[MediaLinks, ServerThread], collage: AttachmentRef
) -> None:
    links, server = media
    good = links.url_for(collage, utc_now())
    sha, exp, sig = parts(good)
    expired = links.url_for(collage, utc_now() - timedelta(seconds=TTL_S + 60))
    tampered = [
        f"{server.url}/media/{sha}?exp={exp}&sig={sig[::-1]}",
        f"{server.url}/media/{sha}?exp={exp + 1}&sig={sig}",
        f"{server.url}/media/{sha}?exp=abc&sig={sig}",
        f"{server.url}/media/{sha}",
        expired,
    ]
    for url in tampered:
        response = httpx.get(url)
        assert response.status_code == 403, url
        body = response.json()
        assert body["error"] == "forbidden"
        assert "süresi dolmuş" in body["detail"] and "expired" in body["detail"]
        assert response.content != collage_jpeg()


def test_route_answers_404_for_a_signed_link_to_a_missing_blob(
    media: tuple[MediaLinks, ServerThread], blobs: BlobStore
) -> None:
    links, _server = media
    missing = AttachmentRef(sha256=hashlib.sha256(b"yok").hexdigest(), size=3, content_type="x/y")
    response = httpx.get(links.url_for(missing, utc_now()))
    assert response.status_code == 404
    assert response.json()["error"] == "not-found"
