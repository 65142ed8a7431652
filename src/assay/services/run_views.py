"""The run page's sections: the report's own template, rendered once per run and kept.

A finished run never changes, so its sections are rendered on first view (from its files,
checked against their digests) and kept in this process's memory, keyed by the run and by the
templates' content. Not on disk: a cache file in the store was served unchecked, and a review
replaced one with a forged PASS.
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


@functools.cache
def _version() -> str:
    return template_digest()[:16]


def run_sections(ws: Workspace, run_id: str) -> str:
    """The HTML of a finished run's sections, with links into its item explorer."""
    run = get_run(ws, run_id)
    if run.status != "finished":
        raise InputError(f"run {run.id[:12]} is {run.status}: no results yet")
    key = (str(ws.home), run.id, _version())
    html = _RENDERED.get(key)
    if html is None:
        verify_run_files(run)  # never show results edited since the run
        result = read_result_json(Path(run.run_dir) / "result.json")
        html = render_sections(result, f"/runs/{run.id}/items", f"/runs/{run.id}/review")
        _RENDERED[key] = html
        while len(_RENDERED) > KEPT_VIEWS:
            _RENDERED.pop(next(iter(_RENDERED)))
    return html


# Rendered pages kept in memory, oldest dropped first (a page is tens of kilobytes).
KEPT_VIEWS = 256
_RENDERED: dict[tuple[str, str, str], str] = {}


def sections_etag(ws: Workspace, run_id: str) -> str:
    """Changes only with the run (never, once finished) and the templates."""
    run = get_run(ws, run_id)
    return hashlib.sha256(f"{run.id}:{run.status}:{_version()}".encode()).hexdigest()[:32]
