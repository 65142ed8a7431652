"""create_app: the FastAPI application for one Assay home."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from assay.core.errors import InputError, NotFoundError, one_line
from assay.services.workspace import Workspace
from assay.web import pages, routes_api
from assay.worker.queue import Queue, open_queue

DEFAULT_MAX_UPLOAD_MB = 512


def create_app(
    home: Path | str | None = None,
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
    queue: Queue | None = None,
) -> FastAPI:
    """The API and the pages over the store at ``home``; runs go to ``queue`` (default: Huey
    on SQLite beside the store)."""
    ws = Workspace.open(home)
    app = FastAPI(title="Assay", version="0.1.0", docs_url="/api/docs", redoc_url=None)
    app.state.ws = ws
    app.state.queue = queue or open_queue(ws.home)
    app.state.max_upload_bytes = max_upload_mb << 20

    def public(exc: Exception) -> str:
        """The message for a client: one line, and no path of the server's (store or temp)."""
        text = one_line(str(exc), 500)
        for root, name in ((str(ws.home), "ASSAY_HOME"), (tempfile.gettempdir(), "TMP")):
            text = text.replace(root, name)
        return text

    @app.exception_handler(InputError)
    def bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": public(exc)}, status_code=422)

    @app.exception_handler(NotFoundError)
    def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": public(exc)}, status_code=404)

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next: Any) -> Any:
        # Refuse before reading: the multipart parser would otherwise spool the whole body first.
        length = request.headers.get("content-length")
        limit = app.state.max_upload_bytes + (1 << 20)  # room for the spec and form fields
        if length is not None and length.isdigit() and int(length) > limit:
            return JSONResponse(
                {"detail": f"upload larger than the {max_upload_mb} MiB limit"}, status_code=413
            )
        return await call_next(request)

    app.include_router(routes_api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")
    return app
