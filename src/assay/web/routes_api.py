"""The REST API under /api (OpenAPI at /openapi.json). Every route names the role it needs."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from assay.core.errors import InputError
from assay.core.records import DatasetVersion, ModelVersion, RunQuery, Token
from assay.services.browse import (
    ItemFilter,
    Picture,
    dataset_picture,
    dataset_samples,
    item_detail,
    item_page,
    run_picture,
)
from assay.services.budget import decisions_summary
from assay.services.datasets import get_dataset, list_datasets
from assay.services.history import history_parquet, item_history
from assay.services.integrity import checked_run_file
from assay.services.jobs import cancel as cancel_job
from assay.services.jobs import recover_jobs, submit
from assay.services.models import aliases as model_aliases
from assay.services.models import (
    get_model,
    list_models,
    model_suffixes,
    register_model,
    remove_alias,
    set_alias,
)
from assay.services.reviews import (
    corrections_csv,
    record_review,
    register_corrections,
    review_dict,
    reviews_csv,
    reviews_of,
)
from assay.services.run_views import run_sections, sections_etag
from assay.services.runs import annotate_run, get_run, run_page, run_row, tag_run
from assay.services.side_by_side import side_by_side
from assay.services.workspace import Workspace
from assay.web.auth import SESSION_COOKIE, need, workspace

router = APIRouter(prefix="/api")

# Bounds of the pages' sample counts and image sides: outside them a request is refused (422),
# where it was silently clamped (a review: size=-5 gave 32 pixels, per_class=10**8 gave 20).
PerClass = Annotated[int, Query(ge=0, le=20)]
Side = Annotated[int, Query(ge=32, le=2048)]
Viewer = Annotated[Token, Depends(need("viewer"))]
Validator = Annotated[Token, Depends(need("validator"))]
Admin = Annotated[Token, Depends(need("admin"))]
WS = Annotated[Workspace, Depends(workspace)]

# Files of a finished run that may be downloaded, by name (never a path from the request).
RUN_FILES = {
    "report.html": "text/html",
    "result.json": "application/json",
    "predictions.parquet": "application/vnd.apache.parquet",
    "verdict.md": "text/markdown",
    "junit.xml": "application/xml",
    "doubtful_labels.parquet": "application/vnd.apache.parquet",
    "comparison.parquet": "application/vnd.apache.parquet",
    "error_groups.parquet": "application/vnd.apache.parquet",
    "disputed_items.parquet": "application/vnd.apache.parquet",
}


def dataset_dict(d: DatasetVersion) -> dict[str, Any]:
    return {
        "ref": d.ref,
        "name": d.name,
        "number": d.number,
        "version": d.version,
        "format": d.format,
        "kind": d.kind,
        "n_items": d.n_items,
        "role": d.role,
        "label_counts": d.label_counts,
        "columns": d.columns,
        "notes": d.notes,
        "created_at": d.created_at.isoformat(),
    }


def model_dict(m: ModelVersion, aliases: list[str] | None = None) -> dict[str, Any]:
    return {
        "aliases": aliases or [],
        "ref": m.ref,
        "name": m.name,
        "number": m.number,
        "version": m.version,
        "runtime": m.runtime,
        "file_name": m.file_name,
        "size_bytes": m.size_bytes,
        "labels": m.spec.get("labels", []),
        "spec": m.spec,
        "created_at": m.created_at.isoformat(),
    }


@router.get("/health")
def health() -> dict[str, str]:
    """Open to everyone: is the server up."""
    return {"status": "ok"}


@router.post("/session")
def login(request: Request, body: dict[str, str], response: Response) -> dict[str, str]:
    """Exchange a token for an HTTP-only session cookie (the browser UI)."""
    ws = workspace(request)
    token = ws.access.check_token(str(body.get("token", "")).strip())
    if token is None:
        raise HTTPException(401, "unknown or revoked token")
    secret = ws.access.open_session(token)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        # Secure only over HTTPS: a plant's LAN often serves plain HTTP, where a Secure cookie
        # would never come back and nobody could log in (the login page says the link is plain).
        secure=request.url.scheme == "https",
        samesite="strict",
        max_age=12 * 3600,
        path="/",
    )
    return {"name": token.name, "role": token.role}


@router.delete("/session")
def logout(request: Request, response: Response) -> dict[str, str]:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        workspace(request).access.close_session(cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"status": "logged out"}


@router.get("/me")
def me(token: Viewer) -> dict[str, str]:
    return {"name": token.name, "role": token.role}


@router.get("/tokens")
def tokens(_: Admin, ws: WS) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "role": t.role,
            "created_at": t.created_at.isoformat(),
            "revoked": t.revoked_at is not None,
        }
        for t in ws.access.list_tokens()
    ]


@router.post("/tokens", status_code=201)
def create_token(body: dict[str, str], _: Admin, ws: WS) -> dict[str, str]:
    """A new token; its secret is in this response only."""
    token, secret = ws.access.create_token(str(body.get("name", "")), str(body.get("role", "")))
    return {"name": token.name, "role": token.role, "token": secret}


@router.delete("/tokens/{name}")
def revoke_token(name: str, _: Admin, ws: WS) -> dict[str, Any]:
    token = ws.access.revoke_token(name)
    return {"name": token.name, "revoked": True}


@router.get("/datasets")
def datasets(_: Viewer, ws: WS) -> list[dict[str, Any]]:
    return [dataset_dict(d) for d in list_datasets(ws)]


@router.get("/datasets/{ref}")
def dataset(ref: str, _: Viewer, ws: WS, per_class: PerClass = 4) -> dict[str, Any]:
    """A dataset version, with a few sample items per class (rows into its manifest)."""
    d = get_dataset(ws, ref)
    return dataset_dict(d) | {
        "samples": dataset_samples(d, per_class),
        "decisions": decisions_summary(ws, d),
    }


@router.get("/datasets/{name}/history")
def dataset_history(
    name: str,
    _: Viewer,
    ws: WS,
    model: str | None = None,
    candidate: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Every item of a dataset (all its versions) under every model version validated on it:
    the items the candidate breaks, those no version got right, those that flip, the churn."""
    if not 0 <= limit <= 1000:
        raise InputError("limit must be between 0 and 1000")
    return item_history(ws, name, model, candidate).summary(limit)


@router.get("/datasets/{name}/history.parquet")
def dataset_history_matrix(
    name: str, _: Viewer, ws: WS, model: str | None = None, candidate: str | None = None
) -> Response:
    """The whole outcome matrix: item_id, label, outcome:<model> and predicted:<model>."""
    return Response(
        history_parquet(item_history(ws, name, model, candidate)),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": 'attachment; filename="history.parquet"'},
    )


@router.get("/datasets/{ref}/items/{row}/image")
def dataset_image(ref: str, row: int, _: Viewer, ws: WS, size: Side = 160) -> Response:
    return _picture(dataset_picture(get_dataset(ws, ref), row, size))


def _picture(p: Picture) -> Response:
    return Response(
        p.data, media_type=p.media_type, headers={"Cache-Control": "private, max-age=3600"}
    )


def _aliases_by_id(ws: Workspace, name: str | None = None) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for a in model_aliases(ws, name):
        out.setdefault(a.model_id, []).append(a.alias)
    return out


@router.get("/models")
def models(_: Viewer, ws: WS) -> list[dict[str, Any]]:
    named = _aliases_by_id(ws)
    return [model_dict(m, named.get(m.id)) for m in list_models(ws)]


@router.get("/models/{ref}")
def model(ref: str, _: Viewer, ws: WS) -> dict[str, Any]:
    """A model version: ``NAME``, ``NAME@3``, ``NAME@production`` or a digest prefix."""
    m = get_model(ws, ref)
    return model_dict(m, _aliases_by_id(ws, m.name).get(m.id))


@router.get("/models/{name}/overview")
def model_overview(name: str, _: Viewer, ws: WS) -> dict[str, Any]:
    """A model's versions with their aliases, and its runs over time (newest 500)."""
    if "@" in name:
        raise InputError(f"{name}: a model page is the model's name, without @version")
    versions = [m for m in list_models(ws) if m.name == name]
    if not versions:
        get_model(ws, name)  # not found, with a did-you-mean
    named = _aliases_by_id(ws, name)
    page = run_page(ws, RunQuery(model=name, limit=500))
    return {
        "name": name,
        "versions": [model_dict(m, named.get(m.id)) for m in versions],
        "aliases": [
            {
                "alias": a.alias,
                "number": a.number,
                "set_by": a.set_by,
                "set_at": a.set_at.isoformat(),
            }
            for a in model_aliases(ws, name)
        ],
        "runs": [r.to_dict() for r in page.runs],
        "n_runs": page.total,
    }


@router.put("/models/{name}/aliases/{alias}")
def put_alias(
    name: str, alias: str, body: dict[str, Any], token: Validator, ws: WS
) -> dict[str, Any]:
    """Point ``name@alias`` at a version: ``{"version": 3}``."""
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError("version must be a version number (3)")
    a = set_alias(ws, f"{name}@{version}", alias, token.name)
    return {"name": a.name, "alias": a.alias, "number": a.number, "set_by": a.set_by}


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, _: Validator, ws: WS) -> dict[str, Any]:
    remove_alias(ws, name, alias)
    return {"name": name, "alias": alias, "removed": True}


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@router.post("/models", status_code=201)
async def upload_model(
    request: Request,
    _: Validator,
    ws: WS,
    name: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
    spec: Annotated[UploadFile | None, File()] = None,
    spec_text: Annotated[str | None, Form()] = None,
    weights: Annotated[UploadFile | None, File()] = None,
) -> JSONResponse:
    """Upload a model file and its spec (a file or text); the spec is checked against the model
    before anything is stored. An OpenVINO IR (``.xml``) comes with its ``.bin`` as
    ``weights``."""
    limit = request.app.state.max_upload_bytes
    if spec is None and not spec_text:
        raise InputError("a spec is required (spec file or spec_text)")
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in model_suffixes():
        raise InputError(
            f"unsupported model file type {suffix or '(none)'}: upload "
            + " or ".join(model_suffixes())
        )
    if (suffix == ".xml") != (weights is not None):
        # Every IR upload was refused for its missing .bin, which the form could not send.
        raise InputError(
            "an OpenVINO IR (.xml) comes with its weights (.bin) in the weights field"
            if suffix == ".xml"
            else "weights (a .bin) go with an OpenVINO IR (.xml) only"
        )
    tmp = ws.files.temp_dir()
    try:
        # The stored name is sanitised and lives in a fresh folder; the store then keeps the file
        # under its content digest, whatever the client called it.
        local = tmp / (_SAFE.sub("_", Path(file.filename or "model").name)[-100:] or "model")
        await _save(file, local, limit)
        if weights is not None:  # beside the IR, under its name, as OpenVINO reads it
            await _save(weights, local.with_suffix(".bin"), limit)
        if spec is not None:
            spec_path = tmp / "spec.yaml"
            await _save(spec, spec_path, 1 << 20)
            spec_source = _parse_spec(spec_path.read_bytes())
        else:
            spec_source = _parse_spec(str(spec_text))
        if spec_source.get("trusted_types"):
            # A skops file loads a trusted type by calling it with arguments from the file: an
            # uploader trusting a class on its own say-so (pyarrow's OSFile, opened for writing)
            # truncated a file of the server's. Trust is given where the store lives.
            raise InputError(
                "spec: trusted_types cannot be given through the web app; review the model's "
                "types on the server (assay model add --show-types) and trust them there (--trust)"
            )
        # Loading and checking a model runs its graph: off the event loop, so one upload does
        # not stall every other request (a model looping 8 million times held /api/health 10 s).
        registered = await run_in_threadpool(register_model, ws, name, local, spec_source)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return JSONResponse(
        model_dict(registered.model) | {"created": registered.created},
        status_code=201 if registered.created else 200,
    )


def _parse_spec(text: str | bytes) -> dict[str, Any]:
    from assay.services.yaml_input import parse_yaml

    try:
        encoded = text.encode("utf-8") if isinstance(text, str) else text
    except UnicodeEncodeError:
        raise InputError("spec: the text holds characters that are not valid Unicode") from None
    data = parse_yaml(encoded, "spec")
    if not isinstance(data, dict):
        raise InputError("spec: expected a mapping at the top level")
    return data


async def _save(upload: UploadFile, path: Path, limit: int) -> None:
    """Stream an upload to disk, refusing it as soon as it exceeds ``limit`` bytes."""
    written = 0
    with path.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"upload larger than the {limit // (1 << 20)} MiB limit")
            out.write(chunk)


def _run_dir(ws: Workspace, run_id: str) -> Path:
    run = get_run(ws, run_id)
    if run.status != "finished":
        raise HTTPException(409, f"run {run.id} is {run.status}: no results yet")
    return Path(run.run_dir)


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{name}: expected a date (2026-11-29) or a time (2026-11-29T08:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@router.post("/runs", status_code=202)
def create_runs(
    request: Request, body: dict[str, Any], token: Validator, ws: WS
) -> list[dict[str, Any]]:
    """Queue a validation of a model on one or several datasets: one run each, in the list of
    runs (status ``queued``) from this moment."""
    queue = request.app.state.queue
    jobs = submit(ws, body, token.name, queue.enqueue)
    return [run_row(ws, str(j.run_id)).to_dict() for j in jobs]


@router.get("/runs")
def runs(
    request: Request,
    _: Viewer,
    ws: WS,
    model: str | None = None,
    dataset: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    origin: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sort: str = "started_at",
    order: Literal["asc", "desc"] = "desc",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """Every run, wherever it started (CLI, Python, this app): a page of them, filtered and
    sorted; ``total`` counts every match."""
    # A job whose worker died is requeued (or failed) before anyone reads the list.
    recover_jobs(ws, request.app.state.queue.enqueue)
    query = RunQuery(
        model=model or None,
        dataset=dataset or None,
        verdict=verdict or None,
        status=status or None,
        tag=tag or None,
        origin=origin or None,
        since=_when(since, "since"),
        until=_when(until, "until"),
        sort=sort,
        descending=order == "desc",
        offset=offset,
        limit=limit,
    )
    return run_page(ws, query).to_dict() | {"tags": ws.catalog.all_tags()}


@router.get("/runs/{run_id}")
def run(run_id: str, _: Viewer, ws: WS) -> dict[str, Any]:
    """One run (by its id, a unique prefix, or the id of the web job that queued it)."""
    return run_row(ws, run_id).to_dict()


@router.post("/runs/{run_id}/cancel")
def cancel(run_id: str, _: Validator, ws: WS) -> dict[str, Any]:
    """Stop a run queued through this app (at its next batch when it is running)."""
    row = run_row(ws, run_id)
    if row.job_id is None:
        raise InputError(
            f"run {row.id[:12]} was started from the {row.origin}: stop it where it runs"
        )
    cancel_job(ws, row.job_id)
    return run_row(ws, row.id).to_dict()


@router.put("/runs/{run_id}/tags")
def set_tags(run_id: str, body: dict[str, Any], _: Validator, ws: WS) -> dict[str, Any]:
    """Replace the run's tags: ``{"tags": ["release-candidate", "line-3"]}``."""
    return tag_run(ws, run_id, body.get("tags")).to_dict()  # type: ignore[arg-type]


@router.put("/runs/{run_id}/note")
def set_note(run_id: str, body: dict[str, Any], _: Validator, ws: WS) -> dict[str, Any]:
    """Set the run's note (``{"note": "..."}``; empty clears it). Results never change."""
    return annotate_run(ws, run_id, body.get("note")).to_dict()


@router.get("/runs/{run_id}/result")
def result(run_id: str, _: Viewer, ws: WS) -> FileResponse:
    return FileResponse(_checked_file(ws, run_id, "result.json"), media_type="application/json")


@router.get("/runs/{run_id}/files")
def run_files(run_id: str, _: Viewer, ws: WS) -> list[dict[str, Any]]:
    """The run's files that can be downloaded, with their sizes."""
    folder = _run_dir(ws, run_id)
    return [
        {"name": name, "size_bytes": (folder / name).stat().st_size}
        for name in RUN_FILES
        if (folder / name).is_file()
    ]


@router.get("/runs/{run_id}/files/{name}")
def run_file(run_id: str, name: str, _: Viewer, ws: WS) -> FileResponse:
    if name not in RUN_FILES:
        raise HTTPException(404, f"no file {name[:80]!r} (files: {', '.join(sorted(RUN_FILES))})")
    path = _checked_file(ws, run_id, name)
    return FileResponse(path, media_type=RUN_FILES[name], filename=name)


def _checked_file(ws: Workspace, run_id: str, name: str) -> Path:
    """A finished run's file, checked against the digest the run kept: a file edited after the
    run (a verdict.md turned to PASS) is refused (422), never served as the run's."""
    _run_dir(ws, run_id)  # 409 unless finished
    try:
        return checked_run_file(get_run(ws, run_id), name)
    except FileNotFoundError:
        raise HTTPException(404, f"this run has no {name}") from None


@router.get("/compare")
def compare(runs: str, _: Viewer, ws: WS) -> dict[str, Any]:
    """Finished runs side by side (``runs=ID,ID,...``, the first the reference): metrics with
    intervals, the paired ledger against the reference, per-slice and per-class values."""
    return side_by_side(ws, runs.split(","))


@router.get("/runs/{run_id}/reviews")
def reviews(run_id: str, _: Viewer, ws: WS, items: str | None = None) -> dict[str, Any]:
    """Reviewers' decisions on the labels of the run's dataset version (on ``items``, ids
    joined by newlines, if given), with each item's consensus and the review's progress."""
    return reviews_of(ws, run_id, items.split("\n") if items else None)


@router.post("/runs/{run_id}/reviews", status_code=201)
def post_review(run_id: str, body: dict[str, Any], token: Validator, ws: WS) -> dict[str, Any]:
    """Record your decision on an item's label: ``{"item_id": ..., "decision": "keep" |
    "relabel" | "unsure", "label": ... (relabel), "note": ...}``; it replaces your earlier one."""
    review = record_review(
        ws,
        run_id,
        body.get("item_id"),  # type: ignore[arg-type]
        token.name,
        str(body.get("decision", "")),
        body.get("label"),
        body.get("note"),
    )
    return review_dict(review)


@router.get("/runs/{run_id}/reviews.csv")
def reviews_file(run_id: str, _: Viewer, ws: WS) -> Response:
    """Every decision, one row per reviewer and item."""
    return _csv_file(reviews_csv(ws, run_id), "reviews.csv")


@router.get("/runs/{run_id}/corrections.csv")
def corrections_file(run_id: str, _: Viewer, ws: WS) -> Response:
    """The reviewers' consensus corrections, as ``assay dataset add --corrections`` reads them."""
    return _csv_file(corrections_csv(ws, run_id), "corrections.csv")


@router.post("/runs/{run_id}/corrections", status_code=201)
def post_corrections(run_id: str, _: Validator, ws: WS) -> JSONResponse:
    """Register a new version of the run's dataset with the consensus corrections."""
    registered = register_corrections(ws, run_id)
    return JSONResponse(
        dataset_dict(registered.dataset) | {"created": registered.created},
        status_code=201 if registered.created else 200,
    )


def _csv_file(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/runs/{run_id}/view")
def view(run_id: str, request: Request, _: Viewer, ws: WS) -> Response:
    """The run's report sections as HTML (the report's own template), with links into its
    item explorer: what the run page shows."""
    tag = f'"{sections_etag(ws, run_id)}"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(
        run_sections(ws, run_id),
        media_type="text/html",
        # A fragment for the run page; opened on its own, it may run nothing and load nothing.
        headers={
            "ETag": tag,
            "Cache-Control": "private, no-cache",
            "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/runs/{run_id}/items")
def items(
    run_id: str,
    request: Request,
    _: Viewer,
    ws: WS,
    offset: int = 0,
    limit: int = 60,
) -> dict[str, Any]:
    """A page of the run's items that the query selects: ``label``, ``predicted``,
    ``correct``, ``judged``, ``change`` (broken, fixed, both_wrong, both_right), ``group``,
    ``doubtful``, ``disputed``, ``slice`` (JSON predicates), ``where`` (``col>=v;col2=w``),
    ``score`` (``class>=0.9``), ``item`` (part of the id); ``sort``: row, confidence,
    -confidence, doubt, typical."""
    params = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}
    return item_page(ws, run_id, ItemFilter.parse(params), offset, limit).to_dict()


@router.get("/runs/{run_id}/items/{row}")
def item(run_id: str, row: int, _: Viewer, ws: WS) -> dict[str, Any]:
    """One item in full: every class score, the expert label(s), the dataset's columns, the
    baseline's answer, and its doubtful-label and error-group findings."""
    return item_detail(ws, run_id, row)


@router.get("/runs/{run_id}/items/{row}/image")
def run_image(run_id: str, row: int, _: Viewer, ws: WS, size: Side = 160) -> Response:
    """The item's image (at most ``size`` pixels a side, up to 2048); for detection,
    segmentation and anomaly runs, with the experts' boxes or mask (green) and the model's
    (magenta) drawn over it."""
    return _picture(run_picture(ws, run_id, row, size))
