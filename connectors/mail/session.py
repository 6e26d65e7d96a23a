"""One blocking IMAP session (imapclient): log in, read a batch after the cursor, mark, IDLE.

``connectors.imap`` runs these calls in a worker thread, one at a time, and translates the
failures; this module only speaks IMAP. Mail is read with ``BODY.PEEK[]`` so the \\Seen flag
stays the staff's; processed mail is flagged (and moved with MOVE, or COPY + ``UID EXPUNGE``
of exactly those UIDs when the server has UIDPLUS): nothing else is ever expunged.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from connectors.errors import SourceUnavailable
from connectors.mail.headers import mail_key
from connectors.mail.parse import parse_mail
from connectors.runtime import Batch, dead_record, raw_record
from connectors.state import OutRecord
from infra.settings import ImapSettings
from schemas.common import Channel
from schemas.raw import RawEvent
from sinks.blobstore import BlobStore
from sinks.errors import BlobTooLarge

__all__ = ["ImapSession", "format_cursor", "mail_event", "parse_cursor"]

log = logging.getLogger("connectors.imap")

#: Bytes of mail fetched by one FETCH command (a batch of big mails is fetched in parts).
FETCH_CHUNK_BYTES = 32 * 1024 * 1024
#: A dead-lettered mail larger than this keeps only its first bytes (Kafka's record limit).
DEADLETTER_MAX_BYTES = 900_000
#: Seconds of one IDLE listening slice (how soon a stop or a close is noticed).
IDLE_SLICE_S = 1.0
_NEWS = (b"EXISTS", b"EXPUNGE", b"RECENT")


def format_cursor(mailbox: str, uidvalidity: int, uid: int) -> str:
    """The cursor string: ``<mailbox>:<UIDVALIDITY>:<last UID>``."""
    return f"{mailbox}:{uidvalidity}:{uid}"


def parse_cursor(cursor: str | None) -> tuple[str, int, int] | None:
    """``(mailbox, UIDVALIDITY, last UID)`` of a cursor; None when absent or unreadable."""
    parts = cursor.rsplit(":", 2) if cursor else []
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def mail_event(raw: bytes, *, received_at: datetime, blobs: BlobStore) -> RawEvent:
    """The raw event of one mail, its attachments stored in ``blobs``.

    An attachment over the blob store's size limit is skipped and listed in the payload's
    ``skipped_attachments``; ``MailRejected`` (a ``ValueError``) when the bytes are no mail.
    """
    parsed = parse_mail(raw)
    refs: dict[str, Any] = {}
    inline: list[str] = []
    skipped: list[dict[str, Any]] = []
    for part in parsed.attachments:
        try:
            ref = blobs.put(part.data, filename=part.filename, declared_type=part.content_type)
        except BlobTooLarge:
            skipped.append(
                {"filename": part.filename, "size": len(part.data), "reason": "too-large"}
            )
            continue
        refs.setdefault(ref.sha256, ref)
        if part.inline:
            inline.append(ref.sha256)
    payload = {**parsed.payload, "inline_images": inline, "skipped_attachments": skipped}
    if skipped:
        note = f"{len(skipped)} attachment(s) over {blobs.max_bytes} bytes were not stored"
        payload["notes"] = [*payload["notes"], note]
    return RawEvent(
        channel=Channel.EMAIL,
        provider_id=parsed.provider_id,
        received_at=received_at,
        payload=payload,
        attachments=tuple(refs.values()),
    )


class ImapSession:
    """A logged-in connection to one mailbox. Blocking and not thread-safe."""

    def __init__(
        self, settings: ImapSettings, blobs: BlobStore, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.mailbox = settings.mailbox
        self.clock = clock
        self.uidvalidity = 0
        self._client: IMAPClient | None = None
        self._caught_up = False
        self._keywords = True
        self._idle = False

    @property
    def client(self) -> IMAPClient:
        """The open connection; ``SourceUnavailable`` when there is none."""
        if self._client is None:
            raise SourceUnavailable("the IMAP connection is not open")
        return self._client

    @property
    def has_idle(self) -> bool:
        """Whether the open connection's server offers IDLE (RFC 2177); read at login."""
        return self._client is not None and self._idle

    def open(self) -> None:
        """Connect, log in, select the mailbox, create the processed folder when missing."""
        s = self.settings
        context = ssl.create_default_context() if s.ssl or s.starttls else None
        client = IMAPClient(
            str(s.host), port=s.port, ssl=s.ssl, ssl_context=context, timeout=s.timeout_s
        )
        try:
            if s.starttls and not s.ssl:
                client.starttls(context)
            client.login(str(s.username), s.password.get_secret_value() if s.password else "")
            client.normalise_times = False  # INTERNALDATE with its offset
            selected = client.select_folder(self.mailbox)
            self._idle = bool(client.has_capability("IDLE"))
            if s.processed_folder and not client.folder_exists(s.processed_folder):
                client.create_folder(s.processed_folder)
                log.info("imap: created the processed-mail folder %r", s.processed_folder)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        permanent = selected.get(b"PERMANENTFLAGS")  # absent: assume keywords are kept
        flag = s.processed_flag.encode()
        self._keywords = permanent is None or b"\\*" in permanent or flag in permanent
        if not self._keywords:
            log.warning("imap: the server does not keep the keyword %s on mail", s.processed_flag)
        self._client, self._caught_up = client, False
        log.info(
            "imap: logged in to %s:%s, %s (UIDVALIDITY %d, %s)",
            s.host,
            s.port,
            self.mailbox,
            self.uidvalidity,
            "IDLE" if self._idle else f"polling every {s.poll_interval_s:g} s",
        )

    def close(self) -> None:
        """Log out, or drop the socket when the server does not answer."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    def mark(self, uids: list[int]) -> None:
        """Flag the UIDs as processed, and move them when a processed folder is set."""
        client = self.client
        if self._keywords:
            client.add_flags(uids, [self.settings.processed_flag], silent=True)
        folder = self.settings.processed_folder
        if not folder:
            return
        if client.has_capability("MOVE"):
            client.move(uids, folder)
        elif client.has_capability("UIDPLUS"):  # UID EXPUNGE removes only these UIDs
            client.copy(uids, folder)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            client.uid_expunge(uids)
        else:
            log.warning("imap: the server has neither MOVE nor UIDPLUS; mail stays, flagged")

    def _catch_up(self, last_uid: int) -> None:
        """Mark mail the cursor already covers (a crash came between the cursor and
        ``confirm``): it was delivered, so it is processed."""
        if last_uid < 1:
            return
        criteria: list[Any] = ["UID", f"1:{last_uid}"]
        if not self.settings.processed_folder:
            if not self._keywords:
                return
            criteria += ["NOT", "KEYWORD", self.settings.processed_flag]
        uids = [uid for uid in self.client.search(criteria) if uid <= last_uid]
        if uids:
            self.mark(uids)
            log.info("imap: marked %d mails delivered before a restart as processed", len(uids))

    def fetch(self, cursor: str | None) -> Batch:
        """The next ``batch_size`` mails after ``cursor`` as raw or dead-letter records."""
        saved = parse_cursor(cursor)
        here = (self.mailbox, self.uidvalidity)
        last = saved[2] if saved is not None and saved[:2] == here else 0
        if saved is not None and saved[:2] != here:
            log.warning(
                "imap: cursor %s is for another mailbox or UIDVALIDITY (now %s:%d): reading "
                "the mailbox again; mail already published is not published again",
                cursor,
                *here,
            )
        if not self._caught_up:
            self._catch_up(last)
            self._caught_up = True
        uids = sorted(uid for uid in self.client.search(["UID", f"{last + 1}:*"]) if uid > last)
        todo = uids[: self.settings.batch_size]
        if not todo:
            fresh = saved is None or saved[:2] != here
            return Batch([], cursor=format_cursor(*here, last) if fresh else None)
        records = [self._record(uid, data) for uid, data in self._bodies(todo)]
        good = sum(record.topic.startswith("intake.raw.") for record in records)
        cursor_out = format_cursor(*here, todo[-1])
        return Batch(records, cursor_out, good, more=len(uids) > len(todo), token=todo)

    def _bodies(self, uids: list[int]) -> Iterator[tuple[int, dict[bytes, Any]]]:
        """FETCH the mails in parts of at most ``FETCH_CHUNK_BYTES`` (by RFC822.SIZE)."""
        sizes = self.client.fetch(uids, ["RFC822.SIZE"])
        chunks: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if chunks[-1] and total + size > FETCH_CHUNK_BYTES:
                chunks.append([])
                total = 0
            chunks[-1].append(uid)
            total += size
        for chunk in chunks:
            found = self.client.fetch(chunk, ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in chunk:
                if uid in found:  # else expunged meanwhile by someone: nothing to publish
                    yield uid, found[uid]

    def _record(self, uid: int, data: dict[bytes, Any]) -> OutRecord:
        raw = data.get(b"BODY[]") or b""
        when = data.get(b"INTERNALDATE")
        received = (
            when.astimezone(UTC) if isinstance(when, datetime) and when.tzinfo else self.clock()
        )
        try:
            return raw_record(mail_event(raw, received_at=received, blobs=self.blobs))
        except OSError:
            raise  # the blob store's disk: retriable, not the mail's fault
        except Exception as exc:  # one bad mail never stops the loop
            log.warning("imap: mail UID %d sent to the dead-letter topic: %s", uid, exc)
            where: dict[str, str | int] = {
                "uid": uid,
                "mailbox": self.mailbox,
                "uidvalidity": self.uidvalidity,
            }
            if len(raw) > DEADLETTER_MAX_BYTES:
                where["truncated_from"] = len(raw)
            key = mail_key(raw) if raw.strip() else None
            body = raw[:DEADLETTER_MAX_BYTES]
            return dead_record("imap", key, body, exc, self.clock(), **where)

    def idle(self, cancel: threading.Event) -> None:
        """IDLE until the mailbox changes, ``idle_timeout_s`` passes or ``cancel`` is set."""
        client = self.client
        deadline = time.monotonic() + self.settings.idle_timeout_s
        quick_empty = 0
        client.idle()
        try:
            while not cancel.is_set() and (left := deadline - time.monotonic()) > 0:
                slice_s = min(IDLE_SLICE_S, left)
                started = time.monotonic()
                responses = client.idle_check(timeout=slice_s)
                if any(isinstance(r, tuple) and r[1:2] and r[1] in _NEWS for r in responses):
                    return
                # imapclient returns [] at once on EOF: a closed connection, not silence
                quick = not responses and time.monotonic() - started < slice_s / 4
                quick_empty = quick_empty + 1 if quick else 0
                if quick_empty >= 3:
                    raise SourceUnavailable("the IMAP server closed the connection during IDLE")
        finally:
            client.idle_done()
