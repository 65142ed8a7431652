"""The demo's report.html in headless Chromium: it renders offline, with charts and thumbnails.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright; the page is opened from a file:// URL
with every network request blocked, which proves the report needs no CDN.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from assay.demo.run import run_demo
from assay.services.workspace import Workspace

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but Chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it")
    return CHROMIUM


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, with nothing that could call home."""
    return playwright.chromium.launch(
        executable_path=chromium_or_skip(),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )


def test_demo_report_renders_offline_in_chromium(tmp_path: Path, artifacts: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium_or_skip()
    ws = Workspace.open(tmp_path / "home")
    outcome = run_demo(ws, tmp_path / "demo", n_items=600, echo=lambda _: None)
    report = outcome.files["report.html"]
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("http*://**", lambda route: (requests.append(route.request.url), route.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        page.wait_for_selector("#fig-confusion .main-svg")
        assert errors == []
        assert requests == [], "the report tried to reach the network"
        # Charts were drawn by the inlined plotly.js.
        for fig in ("confusion", "reliability", "roc", "pr"):
            assert page.locator(f"#fig-{fig} .main-svg").count() >= 1, fig
        # Thumbnails are embedded images that actually decoded.
        widths = page.eval_on_selector_all(".card img", "els => els.map(e => e.naturalWidth)")
        assert widths and all(w > 0 for w in widths)
        assert "2 could not be judged" in page.inner_text("#summary")
        # The demo compares the candidate with production under its release policy.
        banner = page.inner_text("#verdict-banner")
        verdict = outcome.result.verdict
        assert verdict is not None and banner.startswith(verdict.status.upper())
        assert page.locator("#checks tbody tr").count() == len(verdict.checks)
        assert page.locator("#fig-confusion-diff .main-svg").count() >= 1
        assert str(outcome.result.comparison["n_broken"]) in page.inner_text("#comparison")  # type: ignore[index]
        # One row in the reasons table, one per failed item in the list.
        assert page.locator("#failures td", has_text="image cannot be decoded").count() == 3
        # A table of contents of every section, and sections that fold.
        toc = page.locator("nav.toc a").all_inner_texts()
        assert toc[:3] == ["Checks", "Summary", "Confusion matrix"] and "Run" in toc
        page.click("#slices > h2")
        assert "collapsed" in (page.get_attribute("#slices", "class") or "")
        assert not page.locator("#slices table").is_visible()
        page.keyboard.press("Enter")  # the folded title keeps the focus: Enter opens it again
        assert page.locator("#slices table").is_visible()
        page.screenshot(path=str(artifacts / "demo-report.png"), full_page=True)
        page.screenshot(path=str(artifacts / "demo-report-top.png"))
        browser.close()
    ws.close()


def test_report_galleries_show_a_page_at_a_time(tmp_path: Path) -> None:
    """However many examples a gallery holds, it opens with 24 and pages on."""
    from playwright.sync_api import sync_playwright

    from assay.reports.html import report_asset

    chromium_or_skip()
    cards = "".join(f'<div class="card"><div class="id">item {i}</div></div>' for i in range(60))
    page_html = tmp_path / "gallery.html"
    page_html.write_text(
        f'<!doctype html><style>{report_asset("report.css")}</style><main class="report">'
        f'<nav class="toc"></nav><section id="g"><h2>Gallery</h2><div class="gallery">{cards}'
        f"</div></section></main><script>{report_asset('report.js')}</script>"
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(page_html.as_uri())
        visible = "els => els.filter(e => getComputedStyle(e).display !== 'none').length"
        assert page.eval_on_selector_all(".card", visible) == 24
        assert page.inner_text("button.more") == "show 24 more (36 hidden)"
        page.click("button.more")
        page.click("button.more")
        assert page.eval_on_selector_all(".card", visible) == 60
        assert page.locator("button.more").is_hidden()
        assert page.locator("nav.toc a").all_inner_texts() == ["Gallery"]
        browser.close()


@pytest.mark.parametrize("task", ["detection", "segmentation", "anomaly"])
def test_task_demo_reports_draw_experts_and_model_in_chromium(
    task: str, tmp_path: Path, artifacts: Path
) -> None:
    """``assay demo --task``: ONNX models written without torch, judged on the cable scans'
    boxes and masks; the report shows the task's numbers and draws both sides over the images."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from assay.demo.tasks import run_task_demo

    chromium_or_skip()
    ws = Workspace.open(tmp_path / "home")
    outcome = run_task_demo(ws, tmp_path / "demo", task, n_items=300, echo=lambda _: None)
    result = outcome.result
    assert result.task is not None and result.task["name"] == task
    headline = {"detection": "map", "segmentation": "mean_iou", "anomaly": "image_auroc"}[task]
    assert result.metrics[headline].value is not None
    assert result.comparison is not None  # the candidate against production, image by image
    examples = result.error_examples
    assert examples and all("overlay" in ex for ex in examples)
    # Somewhere the experts drew and somewhere the model did: both colours are in the pictures.
    from assay.reports.thumbnails import EXPERT, MODEL, overlay_png

    colours = set()
    for ex in examples + (result.comparison.get("fixed_examples") or []):
        png = overlay_png(ex["ref"], ex["overlay"])
        assert png is not None
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
        colours |= {tuple(p) for p in pixels[(pixels == EXPERT).all(axis=1)][:1]}
        tinted = (pixels[:, 0] > pixels[:, 1] + 60) & (pixels[:, 2] > pixels[:, 1] + 30)
        colours |= {MODEL} if tinted.any() else set()
    assert EXPERT in colours and MODEL in colours
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.route("http*://**", lambda route: (requests.append(route.request.url), route.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(outcome.files["report.html"].as_uri())
        page.wait_for_selector("#fig-confusion .main-svg")
        assert errors == [] and requests == []
        if task == "detection":
            assert page.locator("#fig-detection-pr .main-svg").count() >= 1
        text = page.inner_text("#task")
        assert task.capitalize() in text and "Each image is judged by one rule" in text
        sources = page.eval_on_selector_all(".gallery.drawn img", "els => els.map(e => e.src)")
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
        first = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
        assert max(first.size) == 160
        page.locator("#task").screenshot(path=str(artifacts / f"demo-{task}-task.png"))
        page.locator("#errors").screenshot(path=str(artifacts / f"demo-{task}-errors.png"))
        browser.close()
