"""The REST API under /api (OpenAPI at /openapi.json). Every route names the role it needs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from assay.core.errors import InputError
from assay.core.records import DatasetVersion, Job, ModelVersion, Token
from assay.datasets import columns as cols
from assay.reports.json import read_result_json
from assay.reports.thumbnails import overlay_png, thumbnail_jpeg
from assay.runtimes import model_suffixes
from assay.services.datasets import get_dataset, list_datasets
from assay.services.jobs import recover_jobs, submit
from assay.services.models import get_model, list_models, register_model
from assay.services.overlays import row_overlay
from assay.services.workspace import Workspace
from assay.store.manifests import take_column
from assay.web.auth import SESSION_COOKIE, need, workspace

router = APIRouter(prefix="/api")
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
MAX_ITEMS = 500


def dataset_dict(d: DatasetVersion) -> dict[str, Any]:
    return {
        "ref": d.ref,
        "name": d.name,
        "number": d.number,
        "version": d.version,
        "format": d.format,
        "kind": d.kind,
        "n_items": d.n_items,
        "label_counts": d.label_counts,
        "columns": d.columns,
        "notes": d.notes,
        "created_at": d.created_at.isoformat(),
    }


def model_dict(m: ModelVersion) -> dict[str, Any]:
    return {
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
def dataset(ref: str, _: Viewer, ws: WS, per_class: int = 4) -> dict[str, Any]:
    """A dataset version, with a few sample items per class (rows into its manifest)."""
    d = get_dataset(ws, ref)
    labels = pq.read_table(d.manifest_path, columns=[cols.LABEL]).column(cols.LABEL)
    samples: dict[str, list[int]] = {}
    for label in list(d.label_counts)[:50]:
        rows = np.flatnonzero(
            pc.equal(labels, label).fill_null(False).to_numpy(zero_copy_only=False)
        )
        samples[label] = rows[: max(0, min(per_class, 20))].tolist()
    return dataset_dict(d) | {"samples": samples}


@router.get("/datasets/{ref}/items/{row}/image")
def dataset_image(ref: str, row: int, _: Viewer, ws: WS, size: int = 160) -> Response:
    return _image(get_dataset(ws, ref), row, size)


def _image(d: DatasetVersion, row: int, size: int) -> Response:
    """A thumbnail of one item's image; the path comes from the manifest, never the request."""
    if d.kind != "image":
        raise HTTPException(404, f"dataset {d.ref} has no images")
    if not 0 <= row < d.n_items:
        raise HTTPException(404, f"dataset {d.ref} has no row {row}")
    (path,) = take_column(Path(d.manifest_path), cols.PATH, np.array([row]))
    data = thumbnail_jpeg(path if isinstance(path, str) else None, max(32, min(size, 512)))
    if data is None:
        raise HTTPException(404, "the image cannot be read")
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get("/models")
def models(_: Viewer, ws: WS) -> list[dict[str, Any]]:
    return [model_dict(m) for m in list_models(ws)]


@router.get("/models/{ref}")
def model(ref: str, _: Viewer, ws: WS) -> dict[str, Any]:
    return model_dict(get_model(ws, ref))


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
) -> JSONResponse:
    """Upload a model file and its spec (a file or text); the spec is checked against the model
    before anything is stored."""
    limit = request.app.state.max_upload_bytes
    if spec is None and not spec_text:
        raise InputError("a spec is required (spec file or spec_text)")
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in model_suffixes():
        raise InputError(
            f"unsupported model file type {suffix or '(none)'}: upload "
            + " or ".join(model_suffixes())
        )
    tmp = ws.files.temp_dir()
    try:
        # The stored name is sanitised and lives in a fresh folder; the store then keeps the file
        # under its content digest, whatever the client called it.
        local = tmp / (_SAFE.sub("_", Path(file.filename or "model").name)[-100:] or "model")
        await _save(file, local, limit)
        spec_source: Any
        if spec is not None:
            spec_path = tmp / "spec.yaml"
            await _save(spec, spec_path, 1 << 20)
            spec_source = spec_path
        else:
            spec_source = _parse_spec_text(str(spec_text))
        registered = register_model(ws, name, local, spec_source)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return JSONResponse(
        model_dict(registered.model) | {"created": registered.created},
        status_code=201 if registered.created else 200,
    )


def _parse_spec_text(text: str) -> dict[str, Any]:
    from assay.services.yaml_input import parse_yaml

    try:
        encoded = text.encode("utf-8")
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


def _job(ws: Workspace, job_id: str) -> Job:
    return ws.jobs.get(job_id)


def _run_dir(ws: Workspace, job: Job) -> Path:
    if job.run_id is None or job.status != "finished":
        raise HTTPException(409, f"run {job.id} is {job.status}: no results yet")
    return Path(ws.catalog.get_run(job.run_id).run_dir)


@router.post("/runs", status_code=202)
def create_runs(
    request: Request, body: dict[str, Any], token: Validator, ws: WS
) -> list[dict[str, Any]]:
    """Queue a validation of a model on one or several datasets (one run each)."""
    queue = request.app.state.queue
    return [j.to_dict() for j in submit(ws, body, token.name, queue.enqueue)]


@router.get("/runs")
def runs(request: Request, _: Viewer, ws: WS, limit: int = 200) -> list[dict[str, Any]]:
    # A job whose worker died is requeued (or failed) before anyone reads the list.
    recover_jobs(ws, request.app.state.queue.enqueue)
    return [j.to_dict() for j in ws.jobs.list(max(1, min(limit, 1000)))]


@router.get("/runs/{job_id}")
def run(job_id: str, _: Viewer, ws: WS) -> dict[str, Any]:
    return _job(ws, job_id).to_dict()


@router.post("/runs/{job_id}/cancel")
def cancel(job_id: str, _: Validator, ws: WS) -> dict[str, Any]:
    return ws.jobs.request_cancel(job_id).to_dict()


@router.get("/runs/{job_id}/result")
def result(job_id: str, _: Viewer, ws: WS) -> FileResponse:
    return FileResponse(
        _run_dir(ws, _job(ws, job_id)) / "result.json", media_type="application/json"
    )


@router.get("/runs/{job_id}/files/{name}")
def run_file(job_id: str, name: str, _: Viewer, ws: WS) -> FileResponse:
    if name not in RUN_FILES:
        raise HTTPException(404, f"no file {name!r} (files: {', '.join(sorted(RUN_FILES))})")
    path = _run_dir(ws, _job(ws, job_id)) / name
    if not path.exists():
        raise HTTPException(404, f"this run has no {name}")
    return FileResponse(path, media_type=RUN_FILES[name], filename=name)


@router.get("/runs/{job_id}/items")
def items(
    job_id: str,
    _: Viewer,
    ws: WS,
    label: str | None = None,
    predicted: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """Judged items with this expert label and this prediction (a confusion-matrix cell)."""
    path = _run_dir(ws, _job(ws, job_id)) / "predictions.parquet"
    table = pq.read_table(path, columns=["item_id", "label", "predicted", "correct"])
    mask = table.column("correct").is_valid()
    if label is not None:
        mask = pc.and_(mask, pc.equal(table.column("label"), label))
    if predicted is not None:
        mask = pc.and_(mask, pc.equal(table.column("predicted"), predicted))
    rows = np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))
    page = rows[max(0, offset) : max(0, offset) + max(1, min(limit, MAX_ITEMS))]
    picked = table.take(page).to_pylist()
    return {
        "total": int(rows.size),
        "offset": offset,
        "items": [
            {
                "row": int(r),
                "item_id": p["item_id"],
                "label": p["label"],
                "predicted": p["predicted"],
            }
            for r, p in zip(page.tolist(), picked, strict=True)
        ],
    }


@router.get("/runs/{job_id}/items/{row}/image")
def run_image(job_id: str, row: int, _: Viewer, ws: WS, size: int = 160) -> Response:
    """The item's thumbnail; for detection, segmentation and anomaly runs, with the experts'
    boxes or mask (green) and the model's (magenta) drawn over it."""
    job = _job(ws, job_id)
    d = get_dataset(ws, job.request["dataset"])
    run_dir = _run_dir(ws, job)
    if (run_dir / "result.json").exists() and 0 <= row < d.n_items:
        result = read_result_json(run_dir / "result.json")
        overlay = row_overlay(result, run_dir, Path(d.manifest_path), row)
        if overlay is not None:
            (path,) = take_column(Path(d.manifest_path), cols.PATH, np.array([row]))
            data = overlay_png(path if isinstance(path, str) else None, overlay)
            if data is None:
                raise HTTPException(404, "the image cannot be read")
            return Response(
                data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
            )
    return _image(d, row, size)
