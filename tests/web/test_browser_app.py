"""The web app as a quality engineer uses it, in Debian's Chromium against a real server and
worker (``assay serve``): one list of runs, the run page, the item explorer, comparing runs,
label review by two reviewers, model aliases. Screenshots go to test-artifacts/.

The store holds the classification demo (a candidate and its baseline on 1,800 synthetic cable
scans with line, camera and shift metadata), the detection demo (boxes drawn over the images),
and one more run started from the command line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.cli.main import main
from assay.services.workspace import Workspace
from tests.reports.test_report_browser import launch_chromium
from tests.web.test_browser import free_port, loaded

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("app")
    home = tmp / "home"
    h = ["--home", str(home)]
    assert main(["demo", "--out", str(tmp / "demo"), "--no-lifecycle", *h]) == 0
    assert (
        main(["demo", "--task", "detection", "--n-items", "200", "--out", str(tmp / "det"), *h])
        == 0
    )
    assert main(["validate", "--model", "scanner@1", "--dataset", "cable-scans", "--no-profile",
                 "--no-explore", *h]) in (0, 1)  # fmt: skip
    ws = Workspace.open(home)
    tokens = {name: ws.access.create_token(name, "validator")[1] for name in ("ana", "ben")}
    ws.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "serve", "--port", str(port), *h],
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"at {url}/" in first, first  # `assay serve` says where to go
        for _ in range(200):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield {"url": url, "home": home, "tokens": tokens, "tmp": tmp}
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(app: dict[str, Any], browser: Any) -> Iterator[Any]:
    """A page logged in as ana, failing the test on any script error or outside request."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: (
            errors.append(f"outside request {r.url}")
            if not r.url.startswith((app["url"], "data:"))
            else None
        ),
    )
    login(page, app, "ana")
    yield page
    context.close()
    assert errors == []


def login(page: Any, app: dict[str, Any], who: str) -> None:
    page.goto(f"{app['url']}/login")
    page.fill("#token", app["tokens"][who])
    page.click("button[type=submit]")
    page.wait_for_url(f"{app['url']}/runs**")


def api(app: dict[str, Any], path: str, **params: Any) -> Any:
    r = httpx.get(
        f"{app['url']}{path}",
        params=params,
        headers={"Authorization": f"Bearer {app['tokens']['ana']}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def candidate(app: dict[str, Any]) -> dict[str, Any]:
    runs = api(app, "/api/runs", dataset="cable-scans", verdict="pass")["runs"]
    return next(r for r in runs if r["baseline"])  # type: ignore[no-any-return]


def test_one_list_of_runs(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    from playwright.sync_api import expect

    url = app["url"]
    page.goto(f"{url}/runs")
    expect(page.locator("#runs tr")).to_have_count(5)  # 2 + 2 demo runs, 1 from the CLI
    expect(page.locator("#count")).to_have_text("1–5 of 5 runs")
    assert (
        "cli" in page.locator("#runs").inner_text()
        and "python" in page.locator("#runs").inner_text()
    )
    assert "undefined" not in page.content()
    page.screenshot(path=str(artifacts / "web-runs.png"), full_page=True)

    page.select_option("#filters select[name=verdict]", "pass")
    passed = api(app, "/api/runs", verdict="pass")["total"]
    assert 0 < passed < 5
    expect(page.locator("#runs tr")).to_have_count(passed)
    page.select_option("#filters select[name=verdict]", "")
    page.select_option("#filters select[name=dataset]", "cable-scans")
    expect(page.locator("#runs tr")).to_have_count(3)
    page.click("th[data-sort=headline_value]")  # best first
    expect(page.locator("th.sorted")).to_have_text("headline")
    values = [float(v) for v in page.locator("#runs td.n b").all_inner_texts()]
    assert values == sorted(values, reverse=True) and len(values) == 3
    assert "sort=headline_value" in page.url  # the view is a link that can be shared


def test_the_run_page_holds_the_report(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    from playwright.sync_api import expect

    run = candidate(app)
    page.goto(f"{app['url']}/runs/{run['id']}")
    expect(page.locator("#sections #checks")).to_be_visible(timeout=60_000)
    result = api(app, f"/api/runs/{run['id']}/result")
    for section in ("checks", "summary", "confusion", "comparison", "broken", "slices", "per-class",
                    "curves", "operating-point", "errors", "error-groups", "doubtful-labels",
                    "failures", "profile", "run"):  # fmt: skip
        expect(page.locator(f"#sections #{section}")).to_have_count(1)
    # Each check with its slice, value, interval and reason.
    rows = page.locator("#checks tbody tr")
    expect(rows).to_have_count(len(result["verdict"]["checks"]))
    assert rows.first.locator("td").count() == 7
    assert "camera = 1" in page.locator("#checks").inner_text()
    # Numbers for people: a McNemar p of 1e-100 is "< 1e-4", never 0.0000.
    assert result["comparison"]["mcnemar"]["p_value"] < 1e-4
    expect(page.locator("#comparison")).to_contain_text("p < 1e-4")
    assert "undefined" not in page.locator("#sections").inner_text()
    expect(page.locator("#fig-roc .main-svg").first).to_be_attached()  # plotly drew
    page.screenshot(path=str(artifacts / "web-run.png"))
    page.screenshot(path=str(artifacts / "web-run-full.png"), full_page=True)
    # The table of contents jumps; a section folds.
    page.click("nav.toc a[href='#slices']")
    page.click("#slices > h2")
    expect(page.locator("#slices")).to_have_class(re.compile("collapsed"))
    # Tags and a note, then the list finds the run by its tag.
    page.fill("#tags", "release-candidate, line-3")
    page.fill("#note", "camera 2 lens cleaned before this run")
    page.click("#save")
    expect(page.locator("#saved")).to_have_text("saved")
    assert [r["id"] for r in api(app, "/api/runs", tag="release-candidate")["runs"]] == [run["id"]]
    # The report itself, in the app, sandboxed.
    with page.expect_popup() as popup:
        page.click("#open-report")
    report = popup.value
    report.wait_for_load_state()
    assert report.evaluate("() => window.origin") == "null"  # sandboxed: no cookie, no API
    expect(report.locator("#verdict-banner")).to_be_visible()
    report.close()


def test_the_item_explorer(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    from playwright.sync_api import expect

    run = candidate(app)
    result = api(app, f"/api/runs/{run['id']}/result")
    page.goto(f"{app['url']}/runs/{run['id']}")
    expect(page.locator("#comparison")).to_be_visible(timeout=60_000)
    page.click("#comparison .tile a.explore >> nth=0")  # the broken items
    expect(page).to_have_url(re.compile(r"/items\?change=broken"))
    expect(page.locator("#title")).to_have_text(f"{result['comparison']['n_broken']} items")
    loaded(page, "#grid img")
    # A cell of the confusion matrix: exactly its items, in the app and in the API.
    page.goto(f"{app['url']}/runs/{run['id']}")
    cells = page.locator("#confusion table.cm td.off a")
    expect(cells.first).to_be_visible()
    counts = [int(c) for c in cells.all_inner_texts()]
    n = max(counts)  # the biggest confusion: several items to move through
    assert n >= 2
    cells.nth(counts.index(n)).click()
    expect(page.locator("#count")).to_contain_text(f"of {n}")
    # Keyboard: the first tile, Enter opens it, → the next, Esc closes.
    page.locator("#grid .tile-item").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#item")).to_have_attribute("open", "")
    first = page.locator("#item-title").inner_text()
    expect(page.locator("#item-facts")).to_contain_text("Baseline")
    expect(page.locator("#item-facts .score")).not_to_have_count(0)
    expect(page.locator("#item-facts")).to_contain_text("camera")  # the item's metadata
    loaded(page, "#item-picture img")
    page.screenshot(path=str(artifacts / "web-item.png"))
    page.keyboard.press("ArrowRight")
    expect(page.locator("#item-title")).not_to_have_text(first)
    page.keyboard.press("Escape")
    expect(page.locator("#item")).not_to_have_attribute("open", "")
    # A filter on metadata and outcome, instead of the cell.
    page.select_option("#filters select[name=label]", "")
    page.select_option("#filters select[name=predicted]", "")
    page.fill("#filters input[name=where]", "camera=2")
    page.select_option("#filters select[name=outcome]", "wrong")
    expect(page.locator("#chips")).to_have_text("")
    total = api(app, f"/api/runs/{run['id']}/items", where="camera=2", correct="false", limit=1)[
        "total"
    ]
    expect(page.locator("#title")).to_have_text(f"{total} items")
    loaded(page, "#grid img")
    page.screenshot(path=str(artifacts / "web-items.png"))


def test_boxes_are_drawn_for_a_detection_run(
    page: Any, app: dict[str, Any], artifacts: Path
) -> None:
    from playwright.sync_api import expect

    (run,) = [r for r in api(app, "/api/runs", dataset="cable-detection")["runs"] if r["baseline"]]
    page.goto(f"{app['url']}/runs/{run['id']}/items?correct=false")
    page.locator("#grid .tile-item").first.click()
    expect(page.locator("#item")).to_have_attribute("open", "")
    loaded(page, "#item-picture img")
    src = page.locator("#item-picture img").get_attribute("src")
    r = httpx.get(f"{app['url']}{src}", headers={"Authorization": f"Bearer {app['tokens']['ana']}"})
    assert r.headers["content-type"] == "image/png"  # drawn: the experts' and the model's boxes
    expect(page.locator("#item-facts")).to_contain_text('[{"')  # the boxes, as data
    expect(page.locator("#item-facts")).not_to_contain_text("[object Object]")
    page.screenshot(path=str(artifacts / "web-item-detection.png"))


def test_compare_runs(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    from playwright.sync_api import expect

    run = candidate(app)
    comp = api(app, f"/api/runs/{run['id']}/result")["comparison"]
    base = comp["baseline"]["run_id"]
    page.goto(f"{app['url']}/runs?dataset=cable-scans")
    expect(page.locator("#runs tr")).to_have_count(3)
    page.check(f"#runs input[value='{base}']")
    page.check(f"#runs input[value='{run['id']}']")
    page.click("#compare")
    expect(page).to_have_url(re.compile(r"/compare\?runs="))
    broken = page.locator("#cmp-paired td.neg a")
    reference_first = page.url.split("runs=")[1].startswith(base)
    expected = comp["n_broken"] if reference_first else comp["n_fixed"]
    expect(broken).to_have_text(f"{expected:,}")
    expect(page.locator("#cmp-slices")).to_contain_text("camera = 1")
    # Changes are coloured on evidence (intervals apart) by the metric catalog's direction: a
    # fall in log loss is better.
    ids = page.url.split("runs=")[1].split("&")[0].split(",")
    ref, other = (api(app, f"/api/runs/{i}/result")["metrics"]["log_loss"] for i in ids)
    assert other["ci_low"] > ref["ci_high"] or other["ci_high"] < ref["ci_low"]  # apart here
    loss_row = page.locator("#cmp-metrics tr", has_text="Log loss")
    expect(loss_row).to_contain_text("lower is better")
    way = "better" if other["value"] < ref["value"] else "worse"
    expect(loss_row.locator(".delta")).to_have_class(re.compile(rf"\b{way}\b"))
    # Per class too: each recall with its interval, coloured only when the intervals are apart.
    per_class = [api(app, f"/api/runs/{i}/result")["metrics"]["per_class"] for i in ids]
    for label, ref_class in per_class[0].items():
        a, b = ref_class["recall"], per_class[1][label]["recall"]
        apart = b["ci_low"] > a["ci_high"] or b["ci_high"] < a["ci_low"]
        way = ("better" if b["value"] > a["value"] else "worse") if apart else "none"
        delta = page.locator("#cmp-classes tr", has_text=label).locator(".delta")
        expect(delta).to_have_count(1)
        if apart:
            expect(delta).to_have_class(re.compile(rf"\b{way}\b"))
        else:
            expect(delta).not_to_have_class(re.compile(r"\b(better|worse)\b"))
    expect(page.locator("#cmp-classes .ci")).to_have_count(2 * len(per_class[0]))
    page.screenshot(path=str(artifacts / "web-compare.png"), full_page=True)
    broken.click()
    expect(page.locator("#title")).to_have_text(f"{expected:,} items")


def test_label_review_by_two_reviewers(
    page: Any, browser: Any, app: dict[str, Any], artifacts: Path
) -> None:
    from playwright.sync_api import expect

    run = candidate(app)
    page.goto(f"{app['url']}/runs/{run['id']}/review")
    expect(page.locator("#card")).to_be_visible()
    expect(page.locator("#item-title")).not_to_have_text("")
    first = page.locator("#item-title").inner_text()
    suggested = api(app, f"/api/runs/{run['id']}/items", doubtful="true", sort="doubt", limit=1)
    loaded(page, "#item-picture img")
    page.screenshot(path=str(artifacts / "web-review.png"))
    page.locator("#relabel button").first.click()  # ana relabels the most doubtful item
    expect(page.locator("#item-title")).not_to_have_text(first)
    second = page.locator("#item-title").inner_text()
    page.keyboard.press("k")  # and keeps the next one's label
    expect(page.locator("#progress")).to_contain_text("2 items reviewed by 1 reviewer")
    expect(page.locator("#item-title")).not_to_have_text(second)
    # ben agrees on the first item: the consensus is a correction.
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(other, app, "ben")
    other.goto(f"{app['url']}/runs/{run['id']}/review")
    expect(other.locator("#item-title")).to_have_text(first)
    expect(other.locator("#others")).to_contain_text("ana")
    other.locator("#relabel button").first.click()
    expect(other.locator("#progress")).to_contain_text("1 correction agreed")
    other.click("#register")
    expect(other.locator("#register-msg")).to_contain_text("registered cable-scans@2")
    other.context.close()
    fixes = httpx.get(
        f"{app['url']}/api/runs/{run['id']}/corrections.csv",
        headers={"Authorization": f"Bearer {app['tokens']['ana']}"},
    ).text.splitlines()
    assert len(fixes) == 2 and fixes[1].startswith(suggested["items"][0]["item_id"] + ",")
    dataset = api(app, "/api/datasets/cable-scans@2")
    assert any("labels corrected by review: 1 of 1" in n for n in dataset["notes"])


def test_model_aliases_and_history(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    from playwright.sync_api import expect

    warnings: list[
        str
    ] = []  # every console line: Plotly warned 'Invalid color specifier' (a review)
    page.on("console", lambda m: warnings.append(m.text))
    page.goto(f"{app['url']}/models/scanner")
    expect(page.locator("#versions tr")).to_have_count(2)
    page.fill("#alias", "production")
    page.select_option("#alias-version", "1")
    page.click("#alias-form button[type=submit]")
    expect(page.locator("#alias-msg")).to_have_text("scanner@production → scanner@1")
    expect(page.locator("#versions")).to_contain_text("production")
    expect(page.locator("#history .main-svg").first).to_be_attached()
    assert not [w for w in warnings if "color" in w], warnings
    page.screenshot(path=str(artifacts / "web-model.png"), full_page=True)
    # The alias names the baseline in the validation form.
    page.goto(f"{app['url']}/validate")
    expect(page.locator("#baseline option[value='scanner@production']")).to_have_count(1)
    assert json.dumps(api(app, "/api/models/scanner@production")["number"]) == "1"


def test_item_history(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    """The dataset's item history: both versions of the scanner with their churn, the items the
    candidate breaks, each opening in the explorer; the matrix downloads."""
    from playwright.sync_api import expect

    page.goto(f"{app['url']}/datasets/cable-scans@1")
    page.click("text=item history →")
    page.wait_for_url("**/datasets/cable-scans/history")
    expect(page.locator("#history-versions tr")).to_have_count(2)
    summary = api(app, "/api/datasets/cable-scans/history", limit=5)
    assert [v["model"] for v in summary["versions"]] == ["scanner@1", "scanner@2"]
    churn = summary["churn"][0]
    expect(page.locator("#history-versions tr").nth(1)).to_contain_text(f"{churn['n_broken']:,}")
    expect(page.locator("#history-broken h2")).to_contain_text(f"{summary['broken']['n']:,}")
    page.screenshot(path=str(artifacts / "web-history.png"), full_page=True)
    if summary["broken"]["n"]:
        first = summary["broken"]["items"][0]["item_id"]
        page.locator("#history-broken a").first.click()
        page.wait_for_url("**/items?item=*")
        expect(page.locator("body")).to_contain_text(first)
    matrix = httpx.get(
        f"{app['url']}/api/datasets/cable-scans/history.parquet",
        headers={"Authorization": f"Bearer {app['tokens']['ana']}"},
        timeout=60,
    )
    assert matrix.status_code == 200 and matrix.content[:4] == b"PAR1"
    wrong = httpx.get(
        f"{app['url']}/api/datasets/cable-scans@1/history",
        headers={"Authorization": f"Bearer {app['tokens']['ana']}"},
    )
    assert wrong.status_code == 422 and "give its name" in wrong.json()["detail"]


def test_the_api_docs_render_offline(page: Any, app: dict[str, Any], artifacts: Path) -> None:
    """From a review: /api/docs showed 'Unable to render this definition' (Swagger UI 4 reads
    no OpenAPI 3.1, which FastAPI writes). The operations are listed, from this server only."""
    from playwright.sync_api import expect

    page.goto(f"{app['url']}/api/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    assert page.locator(".opblock").count() > 20
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    page.screenshot(path=str(artifacts / "web-api-docs.png"))


def test_a_viewer_is_not_offered_what_only_a_validator_may_do(
    browser: Any, app: dict[str, Any], artifacts: Path
) -> None:
    """From a review: viewers saw Save tags, Set alias, the upload and the review buttons,
    each answered 403. They see the runs, the report and the reviews, not those."""
    from playwright.sync_api import expect

    ws = Workspace.open(app["home"])
    app["tokens"]["vic"] = ws.access.create_token("vic", "viewer")[1]
    ws.close()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, app, "vic")
        run = candidate(app)
        page.goto(f"{app['url']}/runs/{run['id']}")
        expect(page.locator("#facts")).not_to_be_empty()
        expect(page.locator("#save")).to_be_hidden()
        expect(page.locator("nav a[href='/validate']")).to_be_hidden()
        page.goto(f"{app['url']}/models/scanner")
        expect(page.locator("#versions tr").first).to_be_visible()
        expect(page.locator("#alias-form")).to_be_hidden()
        page.goto(f"{app['url']}/models")
        expect(page.locator("#drop")).to_be_hidden()
        page.goto(f"{app['url']}/validate")
        expect(page.locator("#validate-form")).to_be_hidden()
        expect(page.locator(".reads-only")).to_be_visible()
        page.screenshot(path=str(artifacts / "web-viewer-validate.png"))
    finally:
        context.close()
    # A validator still has them.
    context = browser.new_context()
    page = context.new_page()
    try:
        login(page, app, "ana")
        page.goto(f"{app['url']}/models")
        expect(page.locator("#drop")).to_be_visible()
        expect(page.locator("nav a[href='/validate']")).to_be_visible()
    finally:
        context.close()
