"""The pages: HTML shells rendered on the server; their data comes from the API in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from assay.web.auth import caller

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

# The browser may load only what this server sends: no CDN, no inline scripts.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(request: Request, name: str, page: str, title: str, **data: Any) -> Response:
    user = caller(request)
    if user is None and page != "login":
        return RedirectResponse("/login", status_code=303)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "page": page,
            "title": title,
            "user": user,
            "data": data,
            "secure": request.url.scheme == "https",
        },
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: the same SVG icon."""
    return FileResponse(
        HERE / "static" / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> Response:
    return _page(request, "login.html", "login", "Log in")


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request) -> Response:
    return _page(request, "runs.html", "runs", "Runs")


@router.get("/runs/{job_id}", response_class=HTMLResponse)
def run(request: Request, job_id: str) -> Response:
    return _page(request, "run.html", "run", "Run", run=job_id)


@router.get("/validate", response_class=HTMLResponse)
def validate(request: Request) -> Response:
    return _page(request, "validate.html", "validate", "New validation")


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> Response:
    return _page(request, "models.html", "models", "Models")


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request) -> Response:
    return _page(request, "datasets.html", "datasets", "Datasets")


@router.get("/datasets/{ref}", response_class=HTMLResponse)
def dataset(request: Request, ref: str) -> Response:
    return _page(request, "dataset.html", "dataset", "Dataset", ref=ref)
