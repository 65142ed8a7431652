"""Guard: who may send a request to the API, decided before its body is read.

Two things a route's ``need`` dependency cannot do, because FastAPI reads and parses the body
before it resolves dependencies:

- **Credentials first.** A request to ``/api/`` (and the schema at ``/openapi.json``) without a
  valid token or session is answered 401 before a byte of its body is read: an anonymous client
  on the LAN cannot make the server parse a large JSON array or spool a multipart upload. The
  token found is kept on the request, and ``auth.caller`` takes it from there.
- **Same origin for the browser's credentials.** The session cookie rides along with any
  request a browser sends, also one a page from another port or host on the plant's network
  makes (``SameSite`` counts every port of a host as one site, and a multipart or empty POST
  needs no CORS preflight). A state-changing request authenticated by the cookie must show it
  comes from this server's own pages: an ``Origin`` (or, from older browsers, a ``Referer``) of
  this host, or ``Sec-Fetch-Site: same-origin`` (which, when a browser sends it, decides). Bearer tokens are not sent by browsers on
  their own, so API clients are not asked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from assay.core.records import Token
from assay.services.workspace import Workspace

SESSION_COOKIE = "assay_session"
# Reachable without credentials: the health probe, logging in and out.
OPEN = frozenset({("GET", "/api/health"), ("POST", "/api/session"), ("DELETE", "/api/session")})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def guarded(path: str) -> bool:
    """The API and its schema; not the docs page and its scripts, which hold no data (the page
    reads the schema with the browser's session)."""
    if path == "/api/docs" or path.startswith("/api/docs/"):
        return False
    return path.startswith("/api/") or path == "/openapi.json"


def session_secret(headers: Headers) -> str | None:
    """The session cookie's value, read as Starlette reads cookies for the routes: leniently,
    since another application on the host (cookies are shared across ports) may set one that
    a strict parser refuses, dropping every cookie with it."""
    raw = headers.get("cookie")
    if not raw:
        return None
    return cookie_parser(raw).get(SESSION_COOKIE) or None


def credentials(ws: Workspace, headers: Headers) -> Token | None:
    """The token behind a bearer header, else behind the session cookie; None if neither."""
    header = headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        return ws.access.check_token(secret.strip())
    cookie = session_secret(headers)
    return ws.access.check_session(cookie) if cookie else None


def same_origin(headers: Headers) -> bool:
    """Whether a browser says the request comes from this server's own pages.

    ``Sec-Fetch-Site`` first: the browser sets it and no page can, and it speaks of the origin
    the browser sees. Behind a reverse proxy that rewrites ``Host`` (nginx's default sends the
    upstream's, ``127.0.0.1:8000``), the page's ``Origin`` never equals ``Host``, and every
    upload from the browser was refused. Older browsers without it: ``Origin``, then ``Referer``,
    against ``Host``."""
    host = headers.get("host", "").lower()
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc.lower() == host
    referer = headers.get("referer")
    return referer is not None and urlsplit(referer).netloc.lower() == host


class Guard:
    def __init__(self, app: ASGIApp, ws: Workspace) -> None:
        self.app, self.ws = app, ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method = scope["method"]
        by_cookie = not headers.get("authorization") and session_secret(headers) is not None
        if method not in SAFE_METHODS and by_cookie and not same_origin(headers):
            site = headers.get("sec-fetch-site")
            why = (
                f"the browser calls it {site}"
                if site and site != "same-origin"
                else "its Origin is another site's"
                if headers.get("origin") or headers.get("referer")
                else "it names no Origin"
            )
            detail = (
                "a request with this server's session cookie must come from its own pages "
                f"({why}); API clients send a bearer token"
            )
            await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
            return
        if (method, scope["path"]) not in OPEN:
            token = await run_in_threadpool(credentials, self.ws, headers)
            if token is None:
                await JSONResponse(
                    {"detail": "missing, unknown or revoked token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )(scope, receive, send)
                return
            scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)
