"""Errors of the infrastructure layer. One root; ``retriable`` says whether trying again helps."""

from __future__ import annotations

__all__ = ["BrokerError", "InfraError", "TopicError"]


class InfraError(Exception):
    """Root of every infrastructure error."""

    retriable: bool = False


class BrokerError(InfraError):
    """The bundled Kafka could not be fetched, formatted, started or stopped."""


class TopicError(InfraError):
    """Topics could not be created or listed."""

    retriable = True
