"""Every endpoint of the REST API, in process: roles, bad input, uploads, runs and their items."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.web.conftest import Web


def upload(
    web: Web, role: str = "validator", name: str = "bright", **files: tuple[str, bytes]
) -> tuple[int, dict]:
    parts = {
        "file": ("bright.onnx", web.onnx.read_bytes()),
        "spec": ("spec.yaml", web.spec.read_bytes()),
    } | files
    r = web.client.post("/api/models", data={"name": name}, files=parts, headers=web.auth(role))
    return r.status_code, r.json()


def test_health_is_open_and_everything_else_needs_a_token(web: Web) -> None:
    assert web.client.get("/api/health").json() == {"status": "ok"}
    for path in ("/api/me", "/api/datasets", "/api/models", "/api/runs", "/api/tokens"):
        r = web.client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert web.client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert web.client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
    assert web.client.get("/api/me", headers=web.auth("viewer")).json()["role"] == "viewer"
    assert web.client.get("/openapi.json").status_code == 401  # the schema too
    spec = web.client.get("/openapi.json", headers=web.auth("viewer")).json()
    assert {"/api/runs", "/api/models", "/api/runs/{run_id}/items"} <= set(spec["paths"])


def test_no_credentials_no_body_read(web: Web) -> None:
    """An anonymous request was parsed before its token was checked: malformed JSON got 422,
    a multipart body without boundary 400, and a 50 MB JSON array tripled the server's memory
    before the 401. Credentials are checked first now; a JSON body over 4 MiB is refused even
    with them (only model uploads may be large)."""
    bad = web.client.put(
        "/api/runs/x/note", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 401
    multipart = web.client.post(
        "/api/models", content=b"--x", headers={"content-type": "multipart/form-data"}
    )
    assert multipart.status_code == 401
    big = b"[" + b"1," * (3 << 20) + b"1]"
    r = web.client.post(
        "/api/runs",
        content=big,
        headers={"content-type": "application/json", **web.auth("validator")},
    )
    assert r.status_code == 413 and "only model uploads" in r.json()["detail"]


def test_the_session_cookie_only_counts_from_this_servers_pages(web: Web) -> None:
    """A page on another port of the same host posted a model upload and a corrections
    request with the logged-in browser's cookie (SameSite counts every port as one site), and
    both were accepted. A state change on the cookie needs this server's origin now."""
    login = web.client.post("/api/session", json={"token": web.tokens["validator"]})
    web.client.cookies.set("assay_session", login.cookies["assay_session"])
    try:
        for headers in (
            {},  # no Origin, no Referer, no Sec-Fetch-Site: not a page of this server
            {"Origin": "http://testserver:8081"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "same-site"},
            {"Referer": "http://evil.plant.local/x"},
            # The browser's own word wins over an Origin that happens to match Host.
            {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
        ):
            r = web.client.put("/api/runs/none/note", json={"note": "x"}, headers=headers)
            assert r.status_code == 403 and "own pages" in r.json()["detail"], headers
            # The reason says what the request lacked (a review: 'another site's Origin' for
            # a request that sent none).
            site = headers.get("Sec-Fetch-Site")
            named = "names no Origin" if not headers else site or "another site's"
            assert named in r.json()["detail"], (headers, r.json())
        for headers in (
            {"Origin": "http://testserver"},
            {"Sec-Fetch-Site": "same-origin"},
            {"Referer": "http://testserver/runs"},
            # Behind a reverse proxy that sends the upstream's Host: the page's Origin differs,
            # and the browser says same-origin (every upload was refused before).
            {"Origin": "http://assay.plant.lan", "Sec-Fetch-Site": "same-origin"},
        ):
            r = web.client.put("/api/runs/none/note", json={"note": "x"}, headers=headers)
            assert r.status_code == 404, (headers, r.text)  # past the guard: no such run
        # Reading needs no origin; a bearer token is not the browser's to send.
        assert web.client.get("/api/me").status_code == 200
        r = web.client.put("/api/runs/none/note", json={"note": "x"}, headers=web.auth("validator"))
        assert r.status_code == 404
    finally:
        web.client.cookies.clear()


def test_roles(web: Web) -> None:
    # Viewers read; validators also upload and start runs; admins also manage tokens.
    assert web.client.get("/api/datasets", headers=web.auth("viewer")).status_code == 200
    assert upload(web, "viewer")[0] == 403
    r = web.client.post(
        "/api/runs", json={"model": "x", "datasets": ["scans"]}, headers=web.auth("viewer")
    )
    assert r.status_code == 403 and "validator role" in r.json()["detail"]
    assert web.client.get("/api/tokens", headers=web.auth("validator")).status_code == 403
    r = web.client.post(
        "/api/tokens", json={"name": "ci", "role": "viewer"}, headers=web.auth("admin")
    )
    assert r.status_code == 201
    secret = r.json()["token"]
    assert (
        web.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    names = [t["name"] for t in web.client.get("/api/tokens", headers=web.auth("admin")).json()]
    assert "ci" in names and all(
        "token" not in t for t in web.client.get("/api/tokens", headers=web.auth("admin")).json()
    )
    assert web.client.delete("/api/tokens/ci", headers=web.auth("admin")).status_code == 200
    assert (
        web.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    bad = web.client.post(
        "/api/tokens", json={"name": "x", "role": "god"}, headers=web.auth("admin")
    )
    assert bad.status_code == 422 and "unknown role 'god'" in bad.json()["detail"]


def test_session_cookie_login_and_logout(web: Web) -> None:
    assert web.client.post("/api/session", json={"token": "wrong"}).status_code == 401
    r = web.client.post("/api/session", json={"token": web.tokens["viewer"]})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    # Plain HTTP (a plant's LAN): a Secure cookie would never come back, so it is not Secure.
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    login_page = web.client.get("/login").text
    assert "plain HTTP" in login_page and "--certfile" in login_page
    tls = web.client.post(
        "https://testserver/api/session",
        json={"token": web.tokens["viewer"]},
        headers={"Origin": "https://testserver"},  # the first login's cookie rides along
    ).headers["set-cookie"]
    assert "secure" in tls.lower()  # over HTTPS it is
    assert "plain HTTP" not in web.client.get("https://testserver/login").text
    web.client.cookies.set("assay_session", r.cookies["assay_session"])
    assert web.client.get("/api/me").json()["name"] == "t-viewer"
    web.client.delete("/api/session")
    web.client.cookies.clear()
    assert web.client.get("/api/me").status_code == 401


def test_model_upload_checks_the_spec_and_refuses_bad_files(web: Web) -> None:
    code, body = upload(web)
    assert code == 201 and body["ref"] == "bright@1" and body["labels"] == ["defect", "ok"]
    assert upload(web)[0] == 200  # identical content: nothing new
    code, body = upload(
        web,
        spec=(
            "spec.yaml",
            b"labels: [a, b, c]\ninput: {kind: image, size: [16, 16], color: grayscale}\n",
        ),
    )
    assert code == 422 and "3 labels" in body["detail"]
    code, body = upload(web, file=("model.pkl", b"\x80\x04"))
    assert code == 422 and "unsupported model file type .pkl: upload .onnx or" in body["detail"]
    assert ".skops" in body["detail"] and ".xml" in body["detail"]
    code, body = upload(web, file=("bad.onnx", b"not onnx at all"))
    assert code == 422 and "not a valid ONNX model" in body["detail"]
    code, body = upload(web, name="../../etc", file=("x.onnx", web.onnx.read_bytes()))
    assert code == 422 and "invalid model name" in body["detail"]
    code, body = upload(web, file=("big.onnx", b"0" * (3 << 20)))
    assert code == 413 and "1 MiB limit" in body["detail"]
    models = web.client.get("/api/models", headers=web.auth("viewer")).json()
    assert [m["ref"] for m in models] == ["bright@1"]  # nothing else was stored
    stored = list((web.home / "models").rglob("*.onnx"))
    assert len(stored) == 1 and "etc" not in str(stored[0])
    assert (
        web.client.get("/api/models/bright", headers=web.auth("viewer")).json()["runtime"] == "onnx"
    )
    assert web.client.get("/api/models/nope", headers=web.auth("viewer")).status_code == 404


def test_an_openvino_ir_is_uploaded_with_its_weights(web: Web, tmp_path: Path) -> None:
    """A review: the page took .xml files but had no way to send the .bin beside them, so every
    IR upload was refused for its missing weights."""
    ov = pytest.importorskip("openvino")
    ov.save_model(ov.Core().read_model(str(web.onnx)), str(tmp_path / "m.xml"))
    xml, weights = (tmp_path / "m.xml").read_bytes(), (tmp_path / "m.bin").read_bytes()
    code, body = upload(web, name="edge", file=("m.xml", xml))
    assert code == 422 and "comes with its weights (.bin)" in body["detail"]
    code, body = upload(web, name="edge", weights=("m.bin", weights))  # .onnx with weights
    assert code == 422 and "go with an OpenVINO IR" in body["detail"]
    code, body = upload(web, name="edge", file=("m.xml", xml), weights=("m.bin", weights))
    assert code == 201 and body["runtime"] == "openvino", body


def test_datasets_with_samples_and_thumbnails(web: Web) -> None:
    ds = web.client.get("/api/datasets", headers=web.auth("viewer")).json()
    assert [d["ref"] for d in ds] == ["scans@1"]
    one = web.client.get("/api/datasets/scans", headers=web.auth("viewer")).json()
    assert one["label_counts"] == {"defect": 20, "ok": 20}
    row = one["samples"]["ok"][0]
    img = web.client.get(f"/api/datasets/scans/items/{row}/image", headers=web.auth("viewer"))
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert (
        web.client.get(
            "/api/datasets/scans/items/999/image", headers=web.auth("viewer")
        ).status_code
        == 404
    )


def test_run_lifecycle_items_and_files(web: Web) -> None:
    upload(web)
    bad = web.client.post(
        "/api/runs", json={"model": "bright", "datasets": ["nope"]}, headers=web.auth("validator")
    )
    assert bad.status_code == 404 and "nope" in bad.json()["detail"]
    bad = web.client.post(
        "/api/runs",
        json={"model": "bright", "datasets": ["scans"], "policy": "checks: [nonsense >= 1]"},
        headers=web.auth("validator"),
    )
    assert bad.status_code == 422 and "line 1" in bad.json()["detail"]
    bad = web.client.post(
        "/api/runs",
        json={"model": "bright", "dataset": "scans", "colour": 1},
        headers=web.auth("validator"),
    )
    assert bad.status_code == 422 and "unknown field 'colour'" in bad.json()["detail"]
    # OpenVINO's device name for an ONNX model: refused now, not queued to fail in the worker.
    bad = web.client.post(
        "/api/runs",
        json={"model": "bright", "datasets": ["scans"], "device": "GPU"},
        headers=web.auth("validator"),
    )
    assert bad.status_code == 422
    assert bad.json()["detail"] == "--device GPU: not for the onnx runtime (it runs on cpu or cuda)"
    assert web.client.get("/api/runs", headers=web.auth("viewer")).json()["runs"] == []  # none

    r = web.client.post(
        "/api/runs", json={"model": "bright", "datasets": ["scans"]}, headers=web.auth("validator")
    )
    assert r.status_code == 202
    (job,) = r.json()
    assert job["status"] == "queued" and job["created_by"] == "t-validator"
    early = web.client.get(f"/api/runs/{job['id']}/result", headers=web.auth("viewer"))
    assert early.status_code == 409
    assert web.work() == 1
    done = web.client.get(f"/api/runs/{job['id']}", headers=web.auth("viewer")).json()
    assert done["status"] == "finished" and done["progress"] == {"done": 40, "total": 40}
    result = web.client.get(f"/api/runs/{job['id']}/result", headers=web.auth("viewer")).json()
    assert result["n_items"] == 40 and result["run_id"] == job["id"]  # the run's own id

    # A confusion-matrix cell: exactly the items with that label and that prediction.
    cell = web.client.get(
        f"/api/runs/{job['id']}/items",
        params={"label": "defect", "predicted": "ok"},
        headers=web.auth("viewer"),
    ).json()
    preds = pq.read_table(web.home / "runs" / result["run_id"] / "predictions.parquet").to_pylist()
    expected = [p["item_id"] for p in preds if p["label"] == "defect" and p["predicted"] == "ok"]
    labels, names = result["labels"], result["labels"]
    assert (
        cell["total"]
        == result["confusion_matrix"][labels.index("defect")][names.index("ok")]
        == len(expected)
    )
    assert [i["item_id"] for i in cell["items"]] == expected
    row = cell["items"][0]["row"]
    assert (
        web.client.get(
            f"/api/runs/{job['id']}/items/{row}/image", headers=web.auth("viewer")
        ).status_code
        == 200
    )

    for name in ("report.html", "result.json", "predictions.parquet"):
        f = web.client.get(f"/api/runs/{job['id']}/files/{name}", headers=web.auth("viewer"))
        assert f.status_code == 200 and len(f.content) > 100
    assert (
        json.loads(
            web.client.get(
                f"/api/runs/{job['id']}/files/result.json", headers=web.auth("viewer")
            ).content
        )["run_id"]
        == result["run_id"]
    )
    assert (
        web.client.get(
            f"/api/runs/{job['id']}/files/..%2Fcatalog.db", headers=web.auth("viewer")
        ).status_code
        == 404
    )
    assert (
        web.client.get(
            f"/api/runs/{job['id']}/files/catalog.db", headers=web.auth("viewer")
        ).status_code
        == 404
    )


def test_cancel_a_queued_run_and_several_datasets_queue_several_runs(web: Web) -> None:
    upload(web)
    r = web.client.post(
        "/api/runs",
        json={"model": "bright", "datasets": ["scans", "scans@1"]},
        headers=web.auth("validator"),
    )
    first, second = r.json()
    assert (
        web.client.post(f"/api/runs/{first['id']}/cancel", headers=web.auth("viewer")).status_code
        == 403
    )
    c = web.client.post(f"/api/runs/{first['id']}/cancel", headers=web.auth("validator")).json()
    assert c["status"] == "cancelled"
    web.work()
    states = {
        j["id"]: j["status"]
        for j in web.client.get("/api/runs", headers=web.auth("viewer")).json()["runs"]
    }
    assert states == {first["id"]: "cancelled", second["id"]: "finished"}
    assert web.client.get("/api/runs/nope", headers=web.auth("viewer")).status_code == 404


@pytest.mark.parametrize("path", ["/api/runs/x/cancel"])
def test_unknown_run_cancel_is_404(web: Web, path: str) -> None:
    assert web.client.post(path, headers=web.auth("validator")).status_code == 404


def test_favicon_is_served_without_a_login(web: Web) -> None:
    r = web.client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.content.startswith(b"<svg")


def test_a_bad_policy_is_named_as_the_policy_never_as_a_file(web: Web) -> None:
    upload(web)
    for policy, message in (
        ("checks: [{metric: acuracy, min: 0.9}]", "did you mean 'accuracy'?"),
        ("checks: [", "policy: not valid YAML"),
        ("checks:\n  - metric: accuracy\n    min: 2", "out of range"),
    ):
        r = web.client.post(
            "/api/runs",
            json={"model": "bright", "datasets": ["scans"], "policy": policy},
            headers=web.auth("validator"),
        )
        detail = r.json()["detail"]
        assert r.status_code == 422 and message in detail, detail
        assert detail.startswith("policy") and "/" not in detail.split("(known:")[0], detail
        assert str(web.home) not in detail and "tmp" not in detail.lower()


def test_a_session_survives_another_applications_odd_cookies(web: Web) -> None:
    """Cookies are shared across a host's ports: another application's cookie with a JSON
    value or a space made the Guard's strict parser drop them all, the session with them (401
    for a logged-in browser). It reads cookies as the routes do."""
    login = web.client.post("/api/session", json={"token": web.tokens["viewer"]})
    secret = login.cookies["assay_session"]
    web.client.cookies.clear()
    for other in ('prefs={"a":1}', "theme=dark mode", "x@y=1"):
        r = web.client.get("/api/me", headers={"Cookie": f"{other}; assay_session={secret}"})
        assert r.status_code == 200, (other, r.text)


def test_the_models_page_names_every_file_kind_it_takes(web: Web) -> None:
    """From a review: the drop zone said '.onnx, .skops' while the server takes TorchScript
    and OpenVINO files too; it lists what the runtimes read."""
    login = web.client.post("/api/session", json={"token": web.tokens["viewer"]})
    web.client.cookies.set("assay_session", login.cookies["assay_session"])
    try:
        page = web.client.get("/models").text
    finally:
        web.client.cookies.clear()
    assert "Drop a model file (.onnx, .pt, .pts, .skops, .torchscript, .xml)" in page
