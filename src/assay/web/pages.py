"""The pages: HTML shells rendered on the server; their data comes from the API in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from assay.reports.html import plotly_js, report_asset
from assay.services.integrity import checked_run_file
from assay.services.runs import get_run
from assay.web.auth import caller

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

# The browser may load only what this server sends: no CDN, no inline scripts.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Pages that draw plotly figures: plotly.js injects its own <style> rules (the figure's layout,
# its toolbar), so inline styles are allowed there. Scripts stay 'self' only.
CSP_FIGURES = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def _page(
    request: Request, name: str, page: str, title: str, figures: bool = False, **data: Any
) -> Response:
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
    response.headers["Content-Security-Policy"] = CSP_FIGURES if figures else CSP
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


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, run_id: str) -> Response:
    return _page(request, "run.html", "run", "Run", figures=True, run=run_id)


@router.get("/runs/{run_id}/items", response_class=HTMLResponse)
def explorer(request: Request, run_id: str) -> Response:
    return _page(request, "items.html", "items", "Items", run=run_id)


@router.get("/runs/{run_id}/review", response_class=HTMLResponse)
def review(request: Request, run_id: str) -> Response:
    return _page(request, "review.html", "review", "Label review", run=run_id)


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
def report(request: Request, run_id: str) -> Response:
    """The run's own report.html, as a page of the app. It is a file with inline scripts and
    styles, so it is served sandboxed: an opaque origin that cannot read the session cookie or
    call the API, and loads nothing from anywhere."""
    if caller(request) is None:
        return RedirectResponse("/login", status_code=303)
    run = get_run(request.app.state.ws, run_id)
    if run.status != "finished":
        return Response(
            f"run {run.id} is {run.status}: its report is written when it finishes",
            status_code=409,
            media_type="text/plain",
        )
    try:
        # Checked as the API's files are: an edited report (a FAIL turned PASS) is refused (422)
        # here too, where the run page's button sent it unchecked (a review).
        path = checked_run_file(run, "report.html")
    except FileNotFoundError:
        return Response("this run has no report", status_code=404, media_type="text/plain")
    response = FileResponse(path, media_type="text/html")
    response.headers["Content-Security-Policy"] = (
        "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline'; "
        "style-src 'unsafe-inline'; img-src data:"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, runs: str = "") -> Response:
    return _page(request, "compare.html", "compare", "Compare runs", figures=True, runs=runs)


@router.get("/models/{name}", response_class=HTMLResponse)
def model(request: Request, name: str) -> Response:
    return _page(request, "model.html", "model", "Model", figures=True, model=name)


ASSETS = {
    "report.css": "text/css",
    "report.js": "text/javascript",
    "plotly.js": "text/javascript",
}


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """The report's stylesheet and script, and plotly.js, served from the installed packages
    (no CDN): the run page lays out the report's sections with them."""
    if name not in ASSETS:
        return Response(status_code=404)
    body = plotly_js() if name == "plotly.js" else report_asset(name)
    return Response(
        body,
        media_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/validate", response_class=HTMLResponse)
def validate(request: Request) -> Response:
    return _page(request, "validate.html", "validate", "New validation")


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> Response:
    from assay.services.models import model_suffixes

    return _page(request, "models.html", "models", "Models", suffixes=", ".join(model_suffixes()))


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request) -> Response:
    return _page(request, "datasets.html", "datasets", "Datasets")


@router.get("/datasets/{name}/history", response_class=HTMLResponse)
def history(request: Request, name: str) -> Response:
    return _page(request, "history.html", "history", "Item history", dataset=name)


@router.get("/datasets/{ref}", response_class=HTMLResponse)
def dataset(request: Request, ref: str) -> Response:
    return _page(request, "dataset.html", "dataset", "Dataset", ref=ref)
