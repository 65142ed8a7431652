"""The run page's sections: the report's own template, rendered once per run and kept.

A finished run never changes, so its sections are rendered on first view and cached under the
store (``cache/views``), keyed by the run and by the templates' content: a new release of the
templates renders again; a corrupted or deleted cache file is simply rendered again.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from assay.core.errors import InputError
from assay.reports.html import render_sections, template_digest
from assay.reports.json import read_result_json
from assay.services.integrity import verify_run_files
from assay.services.runs import get_run
from assay.services.workspace import Workspace
from assay.store.files import write_atomically


@functools.cache
def _version() -> str:
    return template_digest()[:16]


def run_sections(ws: Workspace, run_id: str) -> str:
    """The HTML of a finished run's sections, with links into its item explorer."""
    run = get_run(ws, run_id)
    if run.status != "finished":
        raise InputError(f"run {run.id[:12]} is {run.status}: no results yet")
    folder = ws.home / "cache" / "views"
    path = folder / f"{run.id}-{_version()}.html"
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass  # rendered again below
    verify_run_files(run)  # never show results edited since the run
    result = read_result_json(Path(run.run_dir) / "result.json")
    html = render_sections(result, f"/runs/{run.id}/items", f"/runs/{run.id}/review")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(path, html.encode("utf-8"))
    return html


def sections_etag(ws: Workspace, run_id: str) -> str:
    """Changes only with the run (never, once finished) and the templates."""
    run = get_run(ws, run_id)
    return hashlib.sha256(f"{run.id}:{run.status}:{_version()}".encode()).hexdigest()[:32]
