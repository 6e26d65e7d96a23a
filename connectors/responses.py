"""What every HTTP endpoint of the product shares: the error shape and the staff APIs'
bearer-token check (constant-time, never logged)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.settings import Settings

__all__ = ["BEARER", "bearer_guard", "error_response"]

log = logging.getLogger(__name__)

#: The security scheme of the staff APIs (shown in the OpenAPI document).
BEARER = HTTPBearer(auto_error=False, description="INTAKE_WEB__API_TOKEN")

Guard = Callable[[HTTPAuthorizationCredentials | None, str], JSONResponse | None]


def error_response(
    status_code: int,
    error: str,
    detail: str,
    *,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error shape of the web API: ``{"error": code, "detail": text[, "errors": …]}``."""
    body: dict[str, Any] = {"error": error, "detail": detail}
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status_code, headers=headers)


def bearer_guard(settings: Settings) -> Guard:
    """A check that returns None for the right token, else the 401 answer to send."""
    expected = settings.web.api_token.get_secret_value().encode("utf-8")

    def refuse(
        credentials: HTTPAuthorizationCredentials | None, endpoint: str
    ) -> JSONResponse | None:
        if (
            credentials is not None
            and expected
            and hmac.compare_digest(credentials.credentials.encode("utf-8"), expected)
        ):
            return None
        log.info("%s refused: missing or wrong bearer token", endpoint)
        return error_response(
            401,
            "unauthorized",
            "Missing or wrong API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return refuse
