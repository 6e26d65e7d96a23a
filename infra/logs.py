"""Logging set-up: one format, personal data masked in every record that passes a handler."""

from __future__ import annotations

import logging
import sys

from streams.pii import mask_personal_data

__all__ = ["MaskingFilter", "configure_logging"]


class MaskingFilter(logging.Filter):
    """Masks phone numbers, e-mail addresses, T.C. kimlik numbers and IBANs in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its masked rendering."""
        try:
            rendered = record.getMessage()
        except (TypeError, ValueError):
            return True
        record.msg = mask_personal_data(rendered)
        record.args = None
        return True


def configure_logging(level: str = "info") -> None:
    """Log to stderr with timestamps; masking on the handler so no logger can bypass it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": "WARNING"}.get(level, level.upper()))
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # tweepy and urllib3 log request headers (bearer tokens) and bodies at DEBUG.
    for noisy in ("tweepy", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.INFO if noisy == "tweepy" else logging.WARNING)
