"""The municipality's e-mail box as a channel: ``intake connector imap``.

Each fetch reads the next ``batch_size`` mails after the cursor ``<mailbox>:<UIDVALIDITY>:<UID>``
and turns each into a raw event on ``intake.raw.email`` keyed by its Message-ID (a hash of
the bytes when it has none), attachments in the blob store; a mail that cannot be parsed
goes to ``intake.deadletter`` with its bytes. The runner publishes the batch and saves the
cursor; only then does ``confirm`` flag the mail on the server (or move it to the processed
folder). When UIDVALIDITY changes the mailbox is read again from the start and the delivery
drops the Message-IDs already published. ``wait`` IDLEs when the server offers it (re-issued
every ``idle_timeout_s``) and polls every ``poll_interval_s`` otherwise.

imapclient is blocking: the session's calls (``connectors.mail.session``) run in a worker
thread, one at a time under a lock, and their failures are translated here, at the edge:
a refused login is ``AuthenticationFailed`` (the runner stops: exit code 78, EX_CONFIG), the
rest ``SourceUnavailable`` (the runner reconnects with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from imapclient.exceptions import LoginError

from connectors.errors import AuthenticationFailed, SourceUnavailable
from connectors.mail.session import ImapSession
from connectors.runtime import EXIT_CONFIG, Batch, run_connector
from infra.settings import ImapSettings, Settings
from schemas.common import Channel, utc_now
from sinks.blobstore import BlobStore

__all__ = ["ImapConnector", "run"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextlib.contextmanager
def _translated(server: str, user: str) -> Iterator[None]:
    """imaplib, imapclient and socket failures as connector errors (no password in them)."""
    try:
        yield
    except LoginError as exc:
        said = exc.args[0] if exc.args else ""
        reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        if len(reason) > 2 and reason[0] == "b" and reason[1] == reason[-1] and reason[1] in "'\"":
            reason = reason[2:-1]  # imapclient passes the server's bytes through str()
        if "UNAVAILABLE" in reason.upper():  # RFC 5530: a temporary failure, try again
            raise SourceUnavailable(f"IMAP server {server} cannot log in now: {reason}") from exc
        raise AuthenticationFailed(
            f"IMAP server {server} refused the login of {user!r}: {reason}"
        ) from exc
    except (imaplib.IMAP4.error, OSError, ssl.SSLError, EOFError) as exc:
        raise SourceUnavailable(f"IMAP server {server}: {type(exc).__name__}: {exc}") from exc


class ImapConnector:
    """One IMAP mailbox as a source of raw e-mail events (the ``Connector`` protocol)."""

    name = "imap"
    channel = Channel.EMAIL

    def __init__(
        self, settings: ImapSettings, blobs: BlobStore, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if not settings.configured:
            raise ValueError("the IMAP connector needs a host and a username")
        self.settings = settings
        self.session = ImapSession(settings, blobs, clock)
        self._server = f"{settings.host}:{settings.port}"
        self._lock = threading.Lock()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking session call in a worker thread, alone, errors translated."""

        def locked() -> T:
            with self._lock, _translated(self._server, str(self.settings.username)):
                return fn(*args)

        return await asyncio.to_thread(locked)

    async def open(self) -> None:
        """Connect, log in (``AuthenticationFailed`` when refused) and select the mailbox."""
        await self._call(self.session.open)

    async def fetch(self, cursor: str | None) -> Batch:
        """The next batch of mail after ``cursor``; an empty batch when nothing is new."""
        return await self._call(self.session.fetch, cursor)

    async def confirm(self, batch: Batch) -> None:
        """The batch is durable: flag (and move) its mail on the server."""
        if batch.token:
            await self._call(self.session.mark, list(batch.token))

    async def wait(self) -> None:
        """IDLE when the server offers it, otherwise sleep ``poll_interval_s``."""
        if not self.session.has_idle:
            await asyncio.sleep(self.settings.poll_interval_s)
            return
        cancel = threading.Event()
        try:
            await self._call(self.session.idle, cancel)
        finally:
            cancel.set()  # a cancelled wait (stop) ends the IDLE within one slice

    async def close(self) -> None:
        """Log out (safe to call when not connected)."""
        await self._call(self.session.close)


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """``intake connector imap``: 0 when stopped, ``EXIT_CONFIG`` (78) when it is not
    configured or the server refuses the login (a restart cannot help)."""
    section = settings.connectors.imap
    if not section.configured:
        log.error("imap: set INTAKE_CONNECTORS__IMAP__HOST and __USERNAME (and __PASSWORD)")
        return EXIT_CONFIG
    # imapclient logs the protocol at DEBUG, mail bodies included.
    logging.getLogger("imapclient").setLevel(max(logging.INFO, logging.getLogger().level))
    return await run_connector(
        ImapConnector(section, BlobStore(settings.blob_dir, settings.blobs.max_bytes)),
        settings,
        stop,
    )
