"""Hostile input to the API: 4xx with one short line, no server path, nothing left behind."""

from __future__ import annotations

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
