"""Citizens' e-mail as data: parsing, text clean-up and the bilgi edinme form check.

``charset``, ``headers``, ``text``, ``parse`` and ``bilgi_edinme`` are pure functions over
bytes and strings; ``session`` is the blocking IMAP session that fetches the bytes and stores
the attachments, and ``connectors.imap`` the thin async loop around it.
"""

from __future__ import annotations

from connectors.mail.bilgi_edinme import Application, check_application, is_application
from connectors.mail.parse import MailAttachment, MailRejected, ParsedMail, parse_mail

__all__ = [
    "Application",
    "MailAttachment",
    "MailRejected",
    "ParsedMail",
    "check_application",
    "is_application",
    "parse_mail",
]
