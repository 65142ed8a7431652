"""Who is calling: a bearer token (API clients) or a session cookie (the browser UI).

Roles are ordered: viewers read, validators also upload and start runs, admins also manage tokens.
Every route declares the role it needs through ``need``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from assay.core.records import Token
from assay.services.workspace import Workspace
from assay.web.guard import SESSION_COOKIE, credentials

__all__ = ["SESSION_COOKIE", "caller", "need", "workspace"]


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def caller(request: Request) -> Token | None:
    """The token behind the request (``Guard`` found it before the body was read), or None."""
    found: Token | None = getattr(request.state, "token", None)
    if found is not None:
        return found
    return credentials(workspace(request), request.headers)


def need(role: str) -> Callable[[Request], Token]:
    """A dependency: 401 without a valid token, 403 when its role is below ``role``."""

    def check(request: Request) -> Token:
        token = caller(request)
        if token is None:
            raise HTTPException(
                401, "missing, unknown or revoked token", {"WWW-Authenticate": "Bearer"}
            )
        if not token.may(role):
            raise HTTPException(
                403, f"this needs the {role} role; token {token.name!r} is a {token.role}"
            )
        return token

    return check
