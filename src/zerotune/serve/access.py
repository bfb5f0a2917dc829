"""Who may call a server and whether it is up: the bearer-token check and GET /health, the same in
the predictions app (serve/app.py) and the OpenAI-compatible one (serve/openai_app.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel


class Health(BaseModel):
    status: str
    model: str
    backend: str


def bearer_guard(token: str | None, refusal: Callable[[], Exception]) -> list:
    """The route dependencies that require `token` as a bearer token (none when no token is set).

    Args:
        token: the token given to ``zerotune serve --token``, or None.
        refusal: makes the exception a request without the token gets, a 401 in its app's error shape.
    """
    if token is None:
        return []
    bearer = HTTPBearer(auto_error=False, description="the token given to `zerotune serve --token`")

    def authorized(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        # compare_digest: the time taken says nothing about how much of a guess was right
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise refusal()

    return [Depends(authorized)]


def add_health(app: FastAPI, served, response_model: type[BaseModel] | None = None) -> None:
    """GET /health, open without the token so that probes need no secret: the model is loaded and serving.

    Args:
        served: has ``name`` and ``backend``.
        response_model: how OpenAPI describes the answer (`Health`), or None for no description.
    """

    @app.get("/health", response_model=response_model, summary="liveness: the model is loaded and serving")
    async def health():
        return {"status": "ok", "model": served.name, "backend": served.backend}
