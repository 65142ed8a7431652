"""One list of runs: a run is a run wherever it started (CLI, Python, the web queue)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

import assay.api
from assay.cli.main import main
from tests.web.conftest import Web


def _get(web: Web, path: str, **params: Any) -> Any:
    r = web.client.get(path, params=params, headers=web.auth("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


def _runs(web: Web, **params: Any) -> dict[str, Any]:
    return _get(web, "/api/runs", **params)  # type: ignore[no-any-return]


def _three_runs(web: Web) -> dict[str, str]:
    """A run from the CLI, one from Python, one queued through the web; their ids by origin."""
    home = str(web.home)
    assert (
        main(["model", "add", "bright", str(web.onnx), "--spec", str(web.spec), "--home", home])
        == 0
    )
    assert main(["validate", "--model", "bright", "--dataset", "scans", "--no-profile",
                 "--home", home]) == 0  # fmt: skip
    python = assay.validate(model="bright", dataset="scans", home=web.home).result.run_id
    (queued,) = web.client.post(
        "/api/runs", json={"model": "bright", "datasets": ["scans"]}, headers=web.auth("validator")
    ).json()
    listed = {r["origin"]: r["id"] for r in _runs(web)["runs"]}
    assert listed["python"] == python and listed["web"] == queued["id"]
    return listed


def test_runs_from_the_cli_python_and_the_web_are_one_list(web: Web) -> None:
    ids = _three_runs(web)
    page = _runs(web)
    assert page["total"] == 3 and {r["origin"] for r in page["runs"]} == {"cli", "python", "web"}
    queued = _get(web, f"/api/runs/{ids['web']}")
    assert queued["status"] == "queued" and queued["progress"] == {"done": 0, "total": None}
    assert queued["created_by"] == "t-validator" and queued["headline"] is None

    # A CLI run has a page of its own in the app, with the numbers the report has.
    cli = _get(web, f"/api/runs/{ids['cli']}")
    result = _get(web, f"/api/runs/{ids['cli']}/result")
    accuracy = result["metrics"]["accuracy"]
    assert cli["status"] == "finished" and cli["verdict"] == result["verdict"]["status"]
    assert cli["headline"] == {
        "metric": "accuracy",
        "value": accuracy["value"],
        "ci_low": accuracy["ci_low"],
        "ci_high": accuracy["ci_high"],
    }
    assert cli["n_items"] == 40 and cli["n_failed"] == 0 and cli["duration_s"] > 0
    assert cli["model"] == "bright@1" and cli["dataset"] == "scans@1"

    web.work()
    done = _get(web, f"/api/runs/{ids['web']}")
    assert done["status"] == "finished" and done["headline"]["value"] == accuracy["value"]
    assert done["progress"] == {"done": 40, "total": 40}


def test_filter_sort_and_page(web: Web) -> None:
    ids = _three_runs(web)
    web.work()
    # A second model, worse on purpose: inverted probabilities.
    home = str(web.home)
    spec = yaml.safe_load(web.spec.read_text())
    spec["labels"] = spec["labels"][::-1]
    swapped = web.spec.parent / "swapped.yaml"
    swapped.write_text(yaml.safe_dump(spec))
    policy = web.spec.parent / "policy.yaml"
    policy.write_text("checks:\n  - metric: accuracy\n    min: 0.5\n")
    assert main(["model", "add", "dim", str(web.onnx), "--spec", str(swapped), "--home", home]) == 0
    assert main(["validate", "--model", "dim", "--dataset", "scans", "--no-profile",
                 "--policy", str(policy), "--home", home]) == 1  # fmt: skip
    assert _runs(web)["total"] == 4
    assert {r["model"] for r in _runs(web, model="dim")["runs"]} == {"dim@1"}
    assert _runs(web, model="bright@1")["total"] == 3
    assert _runs(web, dataset="scans")["total"] == 4
    assert [r["model"] for r in _runs(web, verdict="fail")["runs"]] == ["dim@1"]
    assert _runs(web, origin="web")["runs"][0]["id"] == ids["web"]
    assert _runs(web, since="2999-01-01")["total"] == 0
    assert _runs(web, until="2000-01-01")["total"] == 0

    worst_first = [
        r["headline"]["value"] for r in _runs(web, sort="headline_value", order="asc")["runs"]
    ]
    assert worst_first == sorted(worst_first) and worst_first[0] < worst_first[-1]
    newest = [r["started_at"] for r in _runs(web)["runs"]]
    assert newest == sorted(newest, reverse=True)

    pages = [_runs(web, offset=o, limit=3) for o in (0, 3)]
    seen = [r["id"] for p in pages for r in p["runs"]]
    assert len(seen) == len(set(seen)) == 4 and all(p["total"] == 4 for p in pages)

    for bad in ({"sort": "password"}, {"limit": 0}, {"limit": 10_000}, {"since": "yesterday"},
                {"offset": -1}):  # fmt: skip
        r = web.client.get("/api/runs", params=bad, headers=web.auth("viewer"))
        assert r.status_code == 422, (bad, r.text)
    assert (
        web.client.get("/api/runs", params={"model": "nope"}, headers=web.auth("viewer")).json()[
            "total"
        ]
        == 0
    )


def test_tags_and_notes_change_nothing_the_run_found(web: Web) -> None:
    ids = _three_runs(web)
    run = _get(web, f"/api/runs/{ids['cli']}")
    folder = web.home / "runs" / run["id"]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    put = web.client.put
    assert (
        put(
            f"/api/runs/{run['id']}/tags", json={"tags": ["rc"]}, headers=web.auth("viewer")
        ).status_code
        == 403
    )
    r = put(
        f"/api/runs/{run['id']}/tags",
        json={"tags": ["rc", "line-3", "rc"]},
        headers=web.auth("validator"),
    )
    assert r.status_code == 200 and r.json()["tags"] == ["line-3", "rc"]
    r = put(
        f"/api/runs/{run['id']}/note",
        json={"note": "camera 2 was dirty"},
        headers=web.auth("validator"),
    )
    assert r.json()["note"] == "camera 2 was dirty"
    for body in ({"tags": ["a b"]}, {"tags": "rc"}, {"tags": ["x"] * 21}, {"tags": ["../x"]}):
        assert (
            put(f"/api/runs/{run['id']}/tags", json=body, headers=web.auth("validator")).status_code
            == 422
        )
    assert (
        put(
            f"/api/runs/{run['id']}/note", json={"note": 3}, headers=web.auth("validator")
        ).status_code
        == 422
    )

    page = _runs(web, tag="rc")
    assert [r["id"] for r in page["runs"]] == [run["id"]] and page["tags"] == ["line-3", "rc"]
    assert _get(web, f"/api/runs/{run['id']}")["note"] == "camera 2 was dirty"
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert after == before  # the run's files are untouched


def test_runs_finished_before_the_list_kept_numbers_get_them_from_their_result(web: Web) -> None:
    ids = _three_runs(web)
    ws = assay.api._ws(web.home)
    with ws.catalog.engine.begin() as c:  # as an older release left it
        c.execute(
            text("UPDATE runs SET verdict = NULL, headline_metric = NULL, headline_value = NULL")
        )
    ws.close()
    run = _get(web, f"/api/runs/{ids['cli']}")
    result = _get(web, f"/api/runs/{ids['cli']}/result")
    assert run["headline"]["value"] == result["metrics"]["accuracy"]["value"]
    assert run["verdict"] == result["verdict"]["status"]


def test_a_queued_run_is_cancelled_or_failed_with_its_job(web: Web) -> None:
    _three_runs(web)
    queued = next(r for r in _runs(web)["runs"] if r["status"] == "queued")
    c = web.client.post(f"/api/runs/{queued['id']}/cancel", headers=web.auth("validator"))
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    cli = next(r for r in _runs(web)["runs"] if r["origin"] == "cli")
    r = web.client.post(f"/api/runs/{cli['id']}/cancel", headers=web.auth("validator"))
    assert r.status_code == 422 and "started from the cli" in r.json()["detail"]

    # A run whose model file changed after it was queued fails, with the reason, never runs.
    (again,) = web.client.post(
        "/api/runs", json={"model": "bright", "datasets": ["scans"]}, headers=web.auth("validator")
    ).json()
    ws = assay.api._ws(web.home)
    model_file = Path(
        ws.catalog.get_model_by_id(ws.catalog.get_run(again["id"]).model_id).file_path
    )
    ws.close()
    model_file.chmod(0o644)
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    web.work()
    failed = _get(web, f"/api/runs/{again['id']}")
    assert failed["status"] == "failed" and "has changed since it was recorded" in failed["error"]
    assert not (web.home / "runs" / again["id"] / "predictions.parquet").exists()


def test_model_aliases_and_the_model_page(web: Web) -> None:
    ids = _three_runs(web)
    put, auth = web.client.put, web.auth
    r = put("/api/models/bright/aliases/production", json={"version": 1}, headers=auth("viewer"))
    assert r.status_code == 403
    r = put("/api/models/bright/aliases/production", json={"version": 1}, headers=auth("validator"))
    assert r.status_code == 200 and r.json() == {
        "name": "bright", "alias": "production", "number": 1, "set_by": "t-validator"
    }  # fmt: skip
    for body, alias in (
        ({"version": "1"}, "staging"),
        ({"version": 9}, "staging"),
        ({"version": 1}, "Bad!"),
    ):
        assert put(
            f"/api/models/bright/aliases/{alias}", json=body, headers=auth("validator")
        ).status_code in (404, 422)
    assert _get(web, "/api/models")[0]["aliases"] == ["production"]
    assert _get(web, "/api/models/bright@production")["number"] == 1
    # The alias resolves for the baseline too, and a model is never its own baseline.
    r = web.client.post(
        "/api/runs",
        json={"model": "bright", "datasets": ["scans"], "baseline": "bright@production"},
        headers=auth("validator"),
    )
    assert r.status_code == 422
    assert (
        "the baseline is the candidate itself, bright@1 (bright@production is bright@1)"
        in (r.json()["detail"])
    )
    overview = _get(web, "/api/models/bright/overview")
    assert [v["aliases"] for v in overview["versions"]] == [["production"]]
    assert overview["n_runs"] == 3 and ids["cli"] in {r["id"] for r in overview["runs"]}
    r = web.client.delete("/api/models/bright/aliases/production", headers=auth("validator"))
    assert r.status_code == 200 and _get(web, "/api/models")[0]["aliases"] == []
    assert web.client.get("/api/models/brigth/overview", headers=auth("viewer")).status_code == 404
    at = web.client.get("/api/models/bright@1/overview", headers=auth("viewer"))
    assert at.status_code == 422 and "without @version" in at.json()["detail"]


def test_a_run_browsed_once_is_still_checked_when_its_files_change(web: Web) -> None:
    """The explorer keeps a run's columns between requests; a predictions file edited since
    is read again, checked against the run's digest, and refused."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = _three_runs(web)
    run = ids["cli"]
    first = _get(web, f"/api/runs/{run}/items", correct="false")
    again = _get(web, f"/api/runs/{run}/items", correct="false")
    assert first == again  # from the kept columns, the same answer
    path = web.home / "runs" / run / "predictions.parquet"
    table = pq.read_table(path)
    flipped = table.set_column(
        table.schema.get_field_index("correct"), "correct", pc.invert(table.column("correct"))
    )
    pq.write_table(flipped, path)
    r = web.client.get(f"/api/runs/{run}/items", headers=web.auth("viewer"))
    assert r.status_code == 422 and "has changed since it was recorded" in r.json()["detail"]
    r = web.client.get(
        "/api/compare", params={"runs": f"{ids['python']},{run}"}, headers=web.auth("viewer")
    )
    assert r.status_code == 422


def test_a_run_file_edited_after_the_run_is_not_served(web: Web) -> None:
    """From a review: a FAIL run's result.json and verdict.md edited to PASS were served with
    200 by /result and /files/...; every file a run writes is checked against its digest."""
    ids = _three_runs(web)
    run = ids["cli"]
    assert _get(web, f"/api/runs/{run}/result")["run_id"] == run
    for name, url in (
        ("result.json", f"/api/runs/{run}/result"),
        ("verdict.md", f"/api/runs/{run}/files/verdict.md"),
        ("report.html", f"/api/runs/{run}/files/report.html"),
        # The run page's "Open the report" sent the edited file unchecked (a review).
        ("report.html", f"/runs/{run}/report"),
    ):
        path = web.home / "runs" / run / name
        if not path.exists():
            continue
        kept = path.read_bytes()
        path.write_bytes(kept.replace(b"fail", b"pass") + b" ")
        r = web.client.get(url, headers=web.auth("viewer"))
        assert r.status_code == 422, (url, r.status_code)
        assert "has changed since it was recorded" in r.json()["detail"]
        path.write_bytes(kept)
        assert web.client.get(url, headers=web.auth("viewer")).status_code == 200
    r = web.client.get(f"/api/runs/{run}/files/junit.xml", headers=web.auth("viewer"))
    assert r.status_code in (200, 404)


def test_a_file_the_run_never_wrote_is_not_served_as_its_own(web: Web) -> None:
    """From a review: another run's PASS verdict.md copied into a run that had no verdict was
    served with 200 (no digest, so no check), and `store verify` said all matched; and the run
    page, cached as a file in the store, was served unchecked after it was replaced."""
    ids = _three_runs(web)
    run = ids["cli"]
    folder = web.home / "runs" / run
    page = web.client.get(f"/api/runs/{run}/view", headers=web.auth("viewer"))
    assert page.status_code == 200
    assert not (web.home / "cache" / "views").exists()  # kept in memory, not in the store
    planted = "error_embeddings.parquet" if (folder / "verdict.md").exists() else "verdict.md"
    (folder / planted).write_bytes(b"# PASS")
    if planted == "verdict.md":
        r = web.client.get(f"/api/runs/{run}/files/verdict.md", headers=web.auth("viewer"))
        assert r.status_code == 404
    assert main(["store", "verify", "--home", str(web.home)]) == 2
    r = web.client.get(f"/api/runs/{run}/items", headers=web.auth("viewer"))
    assert r.status_code == 422 and "did not write it" in r.json()["detail"]
