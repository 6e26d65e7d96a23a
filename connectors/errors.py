"""Errors raised by the connectors. One root; ``retriable`` says whether trying again can help.

Third-party exceptions (aiokafka, pydantic) are translated into these at the edge, so callers
never need to import a client library to handle a failure.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "ConnectorError",
    "InvalidSubmission",
    "PublishFailed",
    "PublishTimeout",
    "RateLimited",
    "RejectedLines",
    "SourceUnavailable",
]


class ConnectorError(Exception):
    """Root of every connector error."""

    retriable: bool = False


class PublishFailed(ConnectorError):
    """The broker refused the record or could not be reached; it was not acknowledged."""

    retriable = True


class PublishTimeout(ConnectorError):
    """The broker did not acknowledge in time; the record may or may not have been written."""

    retriable = True


class InvalidSubmission(ConnectorError):
    """Input from outside is not a valid submission; sending it again unchanged cannot help."""


class RejectedLines(InvalidSubmission):
    """Some lines of an injected file were invalid and went to the dead-letter topic."""

    def __init__(
        self, message: str, *, tracking_numbers: list[str], rejected: list[tuple[int, str]]
    ) -> None:
        super().__init__(message)
        #: Tracking numbers of the lines that were published.
        self.tracking_numbers = tracking_numbers
        #: ``(line number, reason)`` of each line sent to the dead-letter topic.
        self.rejected = rejected


class AuthenticationFailed(ConnectorError):
    """The provider refused our credentials; retrying cannot help until someone fixes them."""


class SourceUnavailable(ConnectorError):
    """The channel's server could not be reached or failed; the fetch can be tried again."""

    retriable = True


class RateLimited(SourceUnavailable):
    """The provider asked us to wait (HTTP 429) until ``reset_at`` (epoch seconds)."""

    def __init__(self, message: str, reset_at: float | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at
