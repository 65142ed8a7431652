"""The Python API in a real Jupyter kernel (nbclient): progress while it runs, the verdict with
each check and the report's sections inline, and nothing stray on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models import fit_logistic, tabular_onnx, write_spec

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _notebook(cells: list[str]) -> Any:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def _outputs(nb: Any, i: int) -> list[Any]:
    return list(nb.cells[i].outputs)


def test_validate_in_a_notebook(tmp_path: Path, artifacts: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    y = np.where(x.sum(axis=1) > 0, "fail", "pass")
    y[:6] = np.where(y[:6] == "fail", "pass", "fail")
    csv = tmp_path / "parts.csv"
    csv.write_text(
        "part,a,b,line,verdict\n"
        + "".join(f"P{i},{x[i, 0]:.4f},{x[i, 1]:.4f},L{i % 3},{y[i]}\n" for i in range(400))
    )
    model = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["fail", "pass"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    src = str(Path(__file__).resolve().parents[1] / "src")
    nb = _notebook(
        [
            f"import sys; sys.path.insert(0, {src!r})\nimport assay",
            f"assay.add_dataset('parts', {str(csv)!r}, label_column='verdict', id_column='part', "
            f"home={str(home)!r})\nassay.add_model('m', {str(model)!r}, spec={str(spec)!r}, "
            f"home={str(home)!r});",
            f"v = assay.validate(model='m', dataset='parts', slices=('line',), home={str(home)!r})",
            "v",
            "print(repr(v)); print('validate' in dir(assay))",
        ]
    )
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    nbformat.write(nb, artifacts / "notebook.ipynb")

    # No stray warnings or tracebacks anywhere.
    for i in range(len(nb.cells)):
        for o in _outputs(nb, i):
            assert not (o.output_type == "stream" and o.name == "stderr"), (i, o.text)
            assert o.output_type != "error", (i, o)

    # Progress while it ran: one display, updated in place, ending with the item count.
    progress = [o for o in _outputs(nb, 2) if o.output_type == "display_data"]
    assert len(progress) == 1 and "done: 400 items" in progress[0].data["text/html"]

    # The result: the verdict with every check, and the report's sections, folded.
    (shown,) = [o for o in _outputs(nb, 3) if o.output_type == "execute_result"]
    html = shown.data["text/html"]
    result = json.loads(next((home / "runs").glob("*/result.json")).read_text())
    assert result["verdict"]["status"].upper() in html
    for check in result["verdict"]["checks"]:
        assert check["name"].replace(">", "&gt;").replace("<", "&lt;") in html, check["name"]
    for section in (
        "checks",
        "summary",
        "slices",
        "per-class",
        "doubtful-labels",
        "failures",
        "run",
    ):
        assert f'id="nb-{section}"' in html, section
    assert html.count('<details class="section"') >= 8 and "<script" not in html
    assert "line = L1" in html  # a slice row, with its numbers
    text = "".join(o.text for o in _outputs(nb, 4) if o.output_type == "stream")
    assert text.startswith("<Validation m@1 on parts@1: ") and "True" in text
    assert len(text.splitlines()[0]) < 400
    shown_at = artifacts / "notebook-output.html"
    shown_at.write_text(
        f"<!doctype html><meta charset=utf-8><body>{progress[0].data['text/html']}{html}</body>"
    )
    _look(shown_at, artifacts / "notebook-output.png")


def _look(page_html: Path, png: Path) -> None:
    """The cell's output as a browser draws it: sections fold and open without a script."""
    from tests.reports.test_report_browser import CHROMIUM, launch_chromium

    if not Path(CHROMIUM).exists():
        return  # the browser tests say why Chromium is needed; the output was checked above
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(page_html.as_uri())
        assert page.locator("#nb-checks table").is_visible()
        assert not page.locator("#nb-per-class table").is_visible()
        page.click("#nb-per-class > summary")
        assert page.locator("#nb-per-class table").is_visible()
        page.screenshot(path=str(png), full_page=True)
        browser.close()
