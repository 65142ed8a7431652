"""Hostile input to the API: 4xx with one short line, no server path, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_bad_input import BOMB
from tests.web.conftest import Web


def register_bright(web: Web) -> None:
    r = web.client.post(
        "/api/models",
        data={"name": "bright", "spec_text": web.spec.read_text()},
        files={"file": ("bright.onnx", web.onnx.read_bytes())},
        headers=web.auth("validator"),
    )
    assert r.status_code == 201, r.text


def test_a_lone_surrogate_in_a_policy_is_a_422_not_a_500(web: Web) -> None:
    register_bright(web)
    # Sent as JSON text with the escape itself: the server decodes a lone surrogate.
    body = '{"model": "bright", "datasets": ["scans"], "policy": "checks: [\'\\ud800\']"}'
    r = web.client.post(
        "/api/runs",
        content=body.encode(),
        headers=web.auth("validator") | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "not valid Unicode" in r.json()["detail"]


def test_alias_bombs_are_refused_small_and_fast(web: Web) -> None:
    register_bright(web)
    r = web.client.post(
        "/api/runs",
        json={
            "model": "bright",
            "datasets": ["scans"],
            "policy": BOMB + "checks: [accuracy >= 0.5]",
        },
        headers=web.auth("validator"),
    )
    assert r.status_code == 422 and "aliases" in r.json()["detail"] and len(r.content) < 1000
    r = web.client.post(
        "/api/models",
        data={"name": "bomb", "spec_text": BOMB + "labels: [defect, ok]"},
        files={"file": ("bright.onnx", web.onnx.read_bytes())},
        headers=web.auth("validator"),
    )
    assert r.status_code == 422 and "aliases" in r.json()["detail"] and len(r.content) < 1000


def test_a_refused_run_request_leaves_no_policy_file_behind(web: Web) -> None:
    register_bright(web)
    for policy in ("checks: [accuracy >= 0.5]", "checks: [nonsense >= 0.5]"):
        r = web.client.post(
            "/api/runs",
            json={"model": "bright", "datasets": ["no-such-dataset"], "policy": policy},
            headers=web.auth("validator"),
        )
        assert r.status_code in (404, 422)
    assert not (web.home / "policies").exists() or not any((web.home / "policies").iterdir())


def test_error_messages_do_not_show_server_paths(web: Web) -> None:
    r = web.client.post(
        "/api/models",
        data={"name": "bad"},
        files={
            "file": ("bright.onnx", b"not an onnx model"),
            "spec": ("spec.yaml", web.spec.read_bytes()),
        },
        headers=web.auth("validator"),
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert str(web.home) not in detail and "/tmp" not in detail


def test_a_chunked_upload_without_length_is_cut_off_at_the_limit(web: Web) -> None:
    """No Content-Length: the body is counted as it streams, refused once past the limit (1 MiB
    + 1 MiB for form fields in this app), and the server reads no more of it. A real server
    (uvicorn) delivers the body in chunks, as it would on a plant's network."""
    import threading

    import httpx
    import uvicorn

    from tests.web.test_redis_queue import free_port

    received = 0
    app = web.client.app

    async def counting(scope: dict, receive: object, send: object) -> None:
        async def counted() -> dict:
            nonlocal received
            message = await receive()  # type: ignore[operator]
            received += len(message.get("body", b""))
            return message  # type: ignore[no-any-return]

        await app(scope, counted, send)  # type: ignore[arg-type]

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(counting, host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)

        def body() -> object:
            yield b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\n'
            for _ in range(64):  # 64 MiB offered
                yield b"\0" * (1 << 20)

        try:
            r = httpx.post(
                f"http://127.0.0.1:{port}/api/models",
                content=body(),  # type: ignore[arg-type]
                headers=web.auth("validator")
                | {"Content-Type": "multipart/form-data; boundary=xyz"},
                timeout=60,
            )
            status = r.status_code
        except httpx.HTTPError:  # the server may close the connection on a refused body
            status = 413
    finally:
        server.should_exit = True
        thread.join(30)
    assert status == 413
    assert received < 8 << 20, received  # stopped reading soon after the limit
    assert not any((web.home / "tmp").iterdir())


def test_the_thumbnail_of_a_decompression_bomb_is_a_404_not_a_500(web: Web, tmp_path: Path) -> None:
    from PIL import Image

    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    root = tmp_path / "bombs" / "ok"
    root.mkdir(parents=True)
    Image.new("1", (30000, 30000)).save(root / "huge.png")  # a few KB, 900 megapixels
    Image.new("L", (8, 8)).save(root / "small.png")
    ws = Workspace.open(web.home)
    register_dataset(ws, "bombs", tmp_path / "bombs")
    ws.close()
    # Rows follow the sorted paths: ok/huge.png is row 0, ok/small.png row 1.
    r = web.client.get("/api/datasets/bombs/items/0/image", headers=web.auth("viewer"))
    assert r.status_code == 404 and r.json()["detail"] == "the image cannot be read"
    r = web.client.get("/api/datasets/bombs/items/1/image", headers=web.auth("viewer"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    # Out of bounds: refused, naming the parameter (a review: silently clamped).
    for url in ("/api/datasets/bombs/items/1/image?size=-5",
                "/api/datasets/bombs/items/1/image?size=100000", "/api/datasets/bombs?per_class=-1",
                "/api/datasets/bombs?per_class=100000000"):  # fmt: skip
        r = web.client.get(url, headers=web.auth("viewer"))
        name = "size" if "size" in url else "per_class"
        assert r.status_code == 422 and r.json()["detail"].startswith(f"query.{name}:"), r.text


def test_api_docs_load_nothing_from_outside(web: Web) -> None:
    """A plant without internet still reads the API docs: every script and style is ours."""
    import re

    page = web.client.get("/api/docs").text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:  # the schema with the session the browser holds; the rest open
        headers = web.auth("viewer") if url == "/openapi.json" else {}
        assert web.client.get(url, headers=headers).status_code == 200, url


def test_a_malformed_request_gets_one_line_that_echoes_nothing(web: Web) -> None:
    """A login posted as text/plain got FastAPI's error list, which repeated the body: the
    token itself came back in the answer. One line now, naming what is wrong, nothing sent."""
    secret = web.tokens["viewer"]
    r = web.client.post(
        "/api/session", content=f'{{"token":"{secret}"}}', headers={"content-type": "text/plain"}
    )
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    assert secret not in r.text and "\n" not in r.json()["detail"]


def test_run_requests_take_reuse_and_refuse_a_dataset_named_twice(web: Web) -> None:
    """The README's 'reuse' field was refused as unknown; the same dataset twice queued two
    identical runs."""
    auth = web.auth("validator")
    r = web.client.post("/api/runs", json={"model": "nope", "datasets": ["scans"], "reuse": "no"},
                        headers=auth)  # fmt: skip
    assert r.status_code == 422 and "reuse must be true or false" in r.json()["detail"]
    r = web.client.post("/api/runs", json={"model": "nope", "datasets": ["scans", "scans"]},
                        headers=auth)  # fmt: skip
    assert r.status_code == 422 and "named twice" in r.json()["detail"]


def test_paths_are_replaced_in_one_pass_on_path_boundaries() -> None:
    """A store under /tmp read 'ASSAY_HOMETMP/vm~3795-...': /tmp was found again inside the
    store's replacement (and the host's name came with it)."""
    from assay.services.redact import redact_paths

    roots = {"/tmp/review/home": "ASSAY_HOME", "/tmp": "TMP"}
    text = "cannot read /tmp/review/home/tmp/vm~1/m.onnx nor /tmp/x.csv; /tmpfoo stays"
    assert redact_paths(text, roots) == (
        "cannot read ASSAY_HOME/tmp/vm~1/m.onnx nor TMP/x.csv; /tmpfoo stays"
    )


def test_a_failed_jobs_reason_shows_no_server_path(web: Web) -> None:
    """A model file changed on disk after the run was queued: the worker's reason named the
    stored file's absolute path, which every viewer could read."""
    from assay.services.workspace import Workspace

    auth = web.auth("validator")
    r = web.client.post(
        "/api/models",
        data={"name": "bright", "spec_text": web.spec.read_text()},
        files={"file": ("bright.onnx", web.onnx.read_bytes())},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    queued = web.client.post("/api/runs", json={"model": "bright", "datasets": ["scans"]},
                             headers=auth)  # fmt: skip
    assert queued.status_code == 202, queued.text
    ws = Workspace.open(web.home)
    stored = Path(ws.catalog.list_models()[0].file_path)
    ws.close()
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"tampered")
    web.work()
    runs = web.client.get("/api/runs", headers=web.auth("viewer")).json()
    text = json.dumps(runs)
    assert "failed" in text and str(web.home) not in text, text


def test_a_file_url_is_redacted_too() -> None:
    from assay.services.redact import redact_paths

    assert redact_paths("see file:///srv/assay/runs/x", {"/srv/assay": "ASSAY_HOME"}) == (
        "see file://ASSAY_HOME/runs/x"
    )


def test_a_chunked_json_body_past_its_limit_is_named_as_such(web: Web) -> None:
    """From a review: a 4.5 MiB chunked JSON body was refused (the 4 MiB limit holds) with
    'upload larger than the 1 MiB limit', the model upload's limit."""

    def body() -> object:
        yield b'{"model": "bright", "datasets": ["'
        for _ in range(5):
            yield b"x" * (1 << 20)
        yield b'"]}'

    r = web.client.post(
        "/api/runs",
        content=body(),  # type: ignore[arg-type]
        headers=web.auth("validator") | {"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["detail"] == "request body larger than 4 MiB (only model uploads may be)"


def test_a_long_file_name_is_not_echoed_whole(web: Web) -> None:
    """A review: a 5,000-character path parameter came back whole in the 404's detail."""
    r = web.client.get("/api/runs/abc/files/" + "x" * 5000, headers=web.auth("viewer"))
    assert r.status_code == 404 and len(r.json()["detail"]) < 300, len(r.text)
