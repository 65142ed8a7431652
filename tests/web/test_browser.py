"""The web app in Debian's Chromium, end to end on NEU-DET: log in, drop a model, validate, explore.

A real server (uvicorn) and a real worker process (``assay serve`` starts both) on loopback.
"""

from __future__ import annotations

import base64
import os
import re
import socket
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
from tests.real_datasets import neu_det, neu_onnx_model
from tests.reports.test_report_browser import launch_chromium

pytestmark = [pytest.mark.real_data, pytest.mark.browser]
SIZE = (32, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "home"
    root, _, _, _ = neu_det(SIZE)
    assert main(["dataset", "add", "neu", str(root), "--home", str(home)]) == 0
    port = free_port()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "serve", "--port", str(port), "--home", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        yield url, home
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        print(out.decode(errors="replace")[-3000:])


def loaded(page: Any, selector: str) -> None:
    """Wait until every image under ``selector`` has loaded (and really decoded)."""
    images = page.locator(selector)
    for _ in range(100):  # (wait_for_function would need 'unsafe-eval', which the CSP forbids)
        if images.evaluate_all("els => els.every(i => i.complete && i.naturalWidth > 0)"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"images under {selector} did not load")


def drop_files(page: Any, files: list[dict[str, str]]) -> None:
    """Drag and drop files (name, base64 bytes) onto the models page's drop zone."""
    page.evaluate(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name));
            }
            document.querySelector('#drop').dispatchEvent(
                new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        files,
    )


def test_log_in_drop_a_model_validate_and_open_a_confusion_cell(
    server: tuple[str, Path], tmp_path: Path, artifacts: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, home = server
    ws = Workspace.open(home)
    _, secret = ws.access.create_token("browser", "validator")
    ws.close()
    onnx, spec, labels = neu_onnx_model(tmp_path)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith((url, "data:")) else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{url}/runs")
        expect(page).to_have_url(f"{url}/login")  # pages need a login
        page.fill("#token", "assay_wrong")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("unknown or revoked token")
        page.fill("#token", secret)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{url}/runs")
        cookies = {c["name"]: c for c in page.context.cookies()}
        # Served over plain HTTP on a LAN address the login still works: the cookie is HttpOnly,
        # and Secure only over HTTPS (a Secure cookie would never be sent back here).
        assert cookies["assay_session"]["httpOnly"] and not cookies["assay_session"]["secure"]

        # Drag and drop the model and its spec onto the page.
        page.goto(f"{url}/models")
        files = [
            {"name": onnx.name, "b64": base64.b64encode(onnx.read_bytes()).decode()},
            {"name": spec.name, "b64": base64.b64encode(spec.read_bytes()).decode()},
        ]
        drop_files(page, files)
        expect(page.locator("#picked")).to_contain_text("neu-scanner.onnx")
        page.click("#upload")
        expect(page.locator("#upload-ok")).to_contain_text("added neu-scanner@1")
        expect(page.locator("#models")).to_contain_text("neu-scanner@1")
        page.screenshot(path=str(artifacts / "web-models.png"), full_page=True)

        # An OpenVINO IR dropped with its .bin (every IR upload was refused for its weights).
        import openvino as ov

        from tests.models import passthrough_onnx, write_spec

        plain = passthrough_onnx(tmp_path / "plain.onnx", 2)
        ov.save_model(ov.Core().read_model(str(plain)), str(tmp_path / "edge.xml"))
        write_spec(tmp_path / "edge.yaml", labels=["defect", "ok"],
                   input={"kind": "tabular", "columns": ["a", "b"]})  # fmt: skip
        ir = [{"name": n, "b64": base64.b64encode((tmp_path / n).read_bytes()).decode()}
              for n in ("edge.xml", "edge.bin", "edge.yaml")]  # fmt: skip
        page.goto(f"{url}/models")
        drop_files(page, ir)
        expect(page.locator("#picked")).to_contain_text("weights: edge.bin")
        page.click("#upload")
        expect(page.locator("#upload-ok")).to_contain_text("added edge@1")

        # A wrong spec is refused inline, and nothing is stored.
        page.evaluate(
            """() => {
                const dt = new DataTransfer();
                dt.items.add(new File(['labels: [a, b]\\ninput: {kind: tabular, columns: [x]}'], 'bad.yaml'));
                document.querySelector('#drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
            }"""
        )
        page.click("#upload")
        expect(page.locator("#upload-error")).to_contain_text("spec")

        # Start a validation on the real dataset and watch it finish (and survive a reload).
        page.goto(f"{url}/validate")
        page.select_option("#model", "neu-scanner@1")
        page.check("#datasets input[value='neu@1']")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(rf"{url}/runs/[0-9a-f]+"))
        page.reload()
        expect(page.locator("#sections #checks")).to_be_visible(timeout=180_000)
        expect(page.locator("#status")).to_contain_text("finished")
        page.screenshot(path=str(artifacts / "web-run.png"), full_page=True)

        # The run page holds the report's sections; a confusion count opens exactly its items.
        expect(page.locator("#sections #checks")).to_be_visible()
        for section in ("summary", "confusion", "per-class", "curves", "errors", "failures", "run"):
            expect(page.locator(f"#sections #{section}")).to_have_count(1)
        run_id = page.url.rsplit("/", 1)[1]
        link = page.locator("#sections table.cm td.off a").filter(has_not_text="0").first
        count = int(link.inner_text())
        link.click()
        expect(page).to_have_url(re.compile(rf"{url}/runs/{run_id}/items\?label=.+&predicted=.+"))
        expect(page.locator("#count")).to_contain_text(f"of {count}")
        label = page.locator("#filters select[name=label]").input_value()
        predicted = page.locator("#filters select[name=predicted]").input_value()
        shown = page.locator("#grid .tile-item .id").all_inner_texts()
        loaded(page, "#grid img")
        page.screenshot(path=str(artifacts / "web-cell.png"))
        api = httpx.get(
            f"{url}/api/runs/{run_id}/items",
            params={"label": label, "predicted": predicted, "limit": 60},
            headers={"Authorization": f"Bearer {secret}"},
        ).json()
        assert api["total"] == count and shown == [i["item_id"] for i in api["items"]]
        assert all(
            s.startswith("IMAGES/") and s.split("/")[1].startswith(str(label)) for s in shown
        )

        page.goto(f"{url}/datasets/neu")
        expect(page.locator("#balance")).to_contain_text("crazing")
        assert page.locator("#samples img").count() == 6 * 4  # four samples of each class
        loaded(page, "#samples img")
        page.screenshot(path=str(artifacts / "web-dataset.png"), full_page=True)
        browser.close()
    assert errors == [] and outside == []
    assert label in labels and predicted in labels
