"""Outgoing e-mail: one SMTP mailer for replies to citizens and reminders to units.

Without an SMTP host (the embedded defaults of ``make run``) messages are written as
``.eml`` files to an outbox directory instead, so nothing is lost and a newcomer can read
what would have been sent. Errors are sorted into permanent (the server refused the
message or the recipient: retrying will not help) and transient (connection, 4xx).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

__all__ = ["MailError", "SmtpMailer", "SmtpSettings"]

log = logging.getLogger(__name__)


class SmtpSettings(BaseModel):
    """``INTAKE_MAIL__*``: the SMTP relay the product sends through."""

    #: None: write messages to ``outbox_dir`` instead of sending them.
    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "alo153@adana.bel.tr"
    from_name: str = "Adana Büyükşehir Belediyesi Alo 153"
    timeout_s: float = Field(default=30.0, gt=0)
    #: Where messages go without a host; default ``<data_dir>/outbox``.
    outbox_dir: Path | None = None


class MailError(Exception):
    """A message could not be sent; ``permanent`` says whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmtpMailer:
    """Sends :class:`EmailMessage` objects; fills From, Message-ID and Date when missing."""

    def __init__(self, settings: SmtpSettings, outbox_dir: Path) -> None:
        self.settings = settings
        self.outbox_dir = settings.outbox_dir or outbox_dir

    @property
    def sender(self) -> str:
        """The From header of every message."""
        return formataddr((self.settings.from_name, self.settings.from_address))

    def prepare(self, message: EmailMessage) -> EmailMessage:
        """Add the headers every message needs (idempotent)."""
        if "From" not in message:
            message["From"] = self.sender
        if "Date" not in message:
            message["Date"] = formatdate(localtime=False, usegmt=True)
        if "Message-ID" not in message:
            domain = self.settings.from_address.rpartition("@")[2] or None
            message["Message-ID"] = make_msgid(domain=domain)
        return message

    def send(self, message: EmailMessage) -> str:
        """Send (or write to the outbox) and return the Message-ID; raises :class:`MailError`."""
        message = self.prepare(message)
        message_id = str(message["Message-ID"])
        if self.settings.host is None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            name = message_id.strip("<>").replace("/", "_").replace("@", "_at_")
            (self.outbox_dir / f"{name}.eml").write_bytes(message.as_bytes())
            return message_id
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError(
                f"all recipients refused: {_codes(exc.recipients)}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise MailError(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(
                f"SMTP unreachable: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        if refused:
            log.warning("SMTP refused %d of the recipients of %s", len(refused), message_id)
        return message_id

    async def send_async(self, message: EmailMessage) -> str:
        """:meth:`send` in a thread, for the event loop."""
        return await asyncio.to_thread(self.send, message)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        assert s.host is not None
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout_s, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            if s.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if s.username and s.password is not None:
            smtp.login(s.username, s.password.get_secret_value())
        return smtp


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _codes(recipients: dict[str, tuple[int, bytes]]) -> str:
    # Recipient addresses are personal data: report the codes only.
    return ", ".join(sorted({str(code) for code, _ in recipients.values()}))
