"""create_app: the FastAPI application for one Assay home."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.errors import InputError, NotFoundError, one_line
from assay.services.redact import for_clients
from assay.services.workspace import Workspace
from assay.web import pages, routes_api
from assay.web.guard import Guard
from assay.worker.queue import Queue, open_queue

DEFAULT_MAX_UPLOAD_MB = 512
SMALL_BODY = 4 << 20  # any request body but a multipart upload


def create_app(
    home: Path | str | None = None,
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
    queue: Queue | None = None,
) -> FastAPI:
    """The API and the pages over the store at ``home``; runs go to ``queue`` (default: Huey
    on SQLite beside the store)."""
    ws = Workspace.open(home)
    app = FastAPI(title="Assay", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.ws = ws
    app.state.queue = queue or open_queue(ws.home)
    app.state.max_upload_bytes = max_upload_mb << 20

    def public(exc: Exception) -> str:
        """The message for a client: one line, and no path of the server's (store or temp)."""
        return for_clients(ws, str(exc))

    @app.exception_handler(InputError)
    def bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": public(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer is a list of errors that echoes the input, a secret posted to
        # /api/session included: one line naming the field, and nothing of what was sent.
        first: dict[str, Any] = next(iter(exc.errors()), {})
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
        return JSONResponse(
            {"detail": f"{where}: {one_line(str(first.get('msg', 'invalid')), 200)}"},
            status_code=422,
        )

    @app.exception_handler(NotFoundError)
    def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": public(exc)}, status_code=404)

    # Room for the spec and the form fields beside the model file.
    app.add_middleware(BodyLimit, limit=app.state.max_upload_bytes + (1 << 20), mb=max_upload_mb)
    # Added last, so it runs first: credentials and origin before any body is read.
    app.add_middleware(Guard, ws=ws)

    _offline_docs(app)
    app.include_router(routes_api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")
    return app


class BodyTooLarge(HTTPException):
    """Raised from inside the request stream once a body passes the limit (the app's own
    handlers answer it, with this detail)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes, with or without a Content-Length.

    A declared length over the limit is refused before anything is read. A chunked body is
    counted as it streams and refused the moment it passes the limit, so the multipart parser
    never spools more than the limit to disk.
    """

    def __init__(self, app: ASGIApp, limit: int, mb: int) -> None:
        self.app, self.limit, self.mb = app, limit, mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # Only a model upload (multipart) may be large; a JSON body or a form is a few
        # kilobytes, and parsed into objects it takes many times its size in memory.
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.limit if upload else min(self.limit, SMALL_BODY)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await self._refuse(scope, receive, send, upload)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(self._detail(upload))
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, upload)

    def _detail(self, upload: bool) -> str:
        if upload:
            return f"upload larger than the {self.mb} MiB limit"
        return f"request body larger than {SMALL_BODY >> 20} MiB (only model uploads may be)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, upload: bool) -> None:
        detail = self._detail(upload)
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs from files this server sends (FastAPI's default loads a CDN,
    which a plant without internet cannot reach). Swagger UI 5, from fastapi-offline's copy:
    FastAPI writes OpenAPI 3.1, which Swagger UI 4 (swagger-ui-bundle's) would not render."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html

    static = str(files("fastapi_offline") / "static")
    app.mount("/api/docs/static", StaticFiles(directory=static), name="swagger-ui")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Assay API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon.png",
        )
