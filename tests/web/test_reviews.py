"""Closing the loop on labels: several reviewers decide, the decisions export, their consensus
becomes a new dataset version, and the next validation runs on it and says so."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from assay.cli.main import main
from assay.services.workspace import Workspace
from assay.web.app import create_app
from assay.worker.queue import open_queue
from tests.models import fit_logistic, tabular_onnx, write_spec

N = 300


@pytest.fixture
def reviewed(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, 2))
    y = np.where(x.sum(axis=1) > 0, "fail", "pass")
    y[:12] = np.where(y[:12] == "fail", "pass", "fail")  # planted label errors
    csv_path = tmp_path / "parts.csv"
    csv_path.write_text(
        "part,a,b,verdict\n"
        + "".join(f"P{i:04d},{x[i, 0]:.5f},{x[i, 1]:.5f},{y[i]}\n" for i in range(N))
    )
    model = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["fail", "pass"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    h = ["--home", str(home)]
    assert main(["dataset", "add", "parts", str(csv_path), "--label-column", "verdict",
                 "--id-column", "part", *h]) == 0  # fmt: skip
    assert main(["model", "add", "m", str(model), "--spec", str(spec), *h]) == 0
    assert main(["validate", "--model", "m", "--dataset", "parts", "--no-profile", *h]) == 0
    ws = Workspace.open(home)
    tokens = {
        name: ws.access.create_token(name, role)[1]
        for name, role in (("ana", "validator"), ("ben", "validator"), ("vic", "viewer"))
    }
    (run,) = ws.catalog.list_runs()
    ws.close()
    return {
        "client": TestClient(create_app(home, queue=open_queue(home))),
        "tokens": tokens,
        "run": run.id,
        "home": home,
        "csv": csv_path,
        "labels": dict(zip([f"P{i:04d}" for i in range(N)], y.tolist(), strict=True)),
        "tmp": tmp_path,
    }


def post(t: dict[str, Any], who: str, **body: Any) -> Any:
    return t["client"].post(
        f"/api/runs/{t['run']}/reviews",
        json=body,
        headers={"Authorization": f"Bearer {t['tokens'][who]}"},
    )


def get(t: dict[str, Any], path: str) -> Any:
    r = t["client"].get(path, headers={"Authorization": f"Bearer {t['tokens']['vic']}"})
    assert r.status_code == 200, r.text
    return r


def flip(label: str) -> str:
    return "pass" if label == "fail" else "fail"


def test_reviewers_decide_and_their_consensus_becomes_a_dataset_version(
    reviewed: dict[str, Any],
) -> None:
    t, labels = reviewed, reviewed["labels"]
    a, b, c, d = "P0000", "P0001", "P0002", "P0003"
    assert post(t, "vic", item_id=a, decision="keep").status_code == 403
    assert post(t, "ana", item_id=a, decision="relabel", label=flip(labels[a])).status_code == 201
    assert post(t, "ben", item_id=a, decision="relabel", label=flip(labels[a])).status_code == 201
    post(t, "ana", item_id=b, decision="keep")
    post(t, "ben", item_id=b, decision="relabel", label=flip(labels[b]))  # a tie: no correction
    post(t, "ana", item_id=c, decision="relabel", label=flip(labels[c]))
    post(t, "ben", item_id=c, decision="unsure", note='=HYPERLINK("http://x")')
    post(t, "ana", item_id=d, decision="relabel", label=flip(labels[d]))
    post(t, "ana", item_id=d, decision="keep")  # changed her mind: replaces the first

    status = get(t, f"/api/runs/{t['run']}/reviews").json()
    assert status["n_reviewed"] == 4 and status["reviewers"] == ["ana", "ben"]
    assert status["n_corrections"] == 2
    assert [x["decision"] for x in status["items"][d]["reviews"]] == ["keep"]

    rows = list(csv.DictReader(io.StringIO(get(t, f"/api/runs/{t['run']}/reviews.csv").text)))
    assert len(rows) == 7
    note = next(r["note"] for r in rows if r["item_id"] == c and r["reviewer"] == "ben")
    assert note.startswith("'=")  # a spreadsheet shows it, never runs it
    fixes = list(csv.DictReader(io.StringIO(get(t, f"/api/runs/{t['run']}/corrections.csv").text)))
    assert [(r["item_id"], r["label"], r["previous_label"]) for r in fixes] == [
        (a, flip(labels[a]), labels[a]),
        (c, flip(labels[c]), labels[c]),
    ]

    auth = {"Authorization": f"Bearer {t['tokens']['ana']}"}
    made = t["client"].post(f"/api/runs/{t['run']}/corrections", headers=auth)
    assert made.status_code == 201 and made.json()["ref"] == "parts@2"
    again = t["client"].post(f"/api/runs/{t['run']}/corrections", headers=auth)
    assert again.status_code == 200 and again.json()["ref"] == "parts@2"
    new = made.json()
    old = get(t, "/api/datasets/parts@1").json()
    assert new["n_items"] == old["n_items"] and new["version"] != old["version"]
    assert any("labels corrected by review: 2 of 2" in n for n in new["notes"])

    # The next validation runs on the corrected labels and says so.
    home = ["--home", str(t["home"])]
    assert main(["validate", "--model", "m", "--dataset", "parts@2", "--no-profile", *home]) in (
        0,
        1,
    )
    ws = Workspace.open(t["home"])
    run = next(
        r for r in ws.catalog.list_runs() if r.dataset_id == ws.catalog.get_dataset_by_id(2).id
    )
    ws.close()
    result = json.loads((Path(run.run_dir) / "result.json").read_text())
    assert (
        result["label_corrections"]["n_changed"] == 2
        and result["label_corrections"]["parent"] == "parts@1"
    )
    preds = {
        p["item_id"]: p["label"]
        for p in pq.read_table(Path(run.run_dir) / "predictions.parquet").to_pylist()
    }
    assert preds[a] == flip(labels[a]) and preds[b] == labels[b] and preds[c] == flip(labels[c])
    assert "Labels corrected by review" in (Path(run.run_dir) / "report.html").read_text()


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"item_id": "P0000", "decision": "maybe"}, 422, "decision must be one of"),
        ({"item_id": "P0000", "decision": "relabel"}, 422, "relabel needs a label"),
        (
            {"item_id": "P0000", "decision": "relabel", "label": "other"},
            422,
            "relabel needs a label",
        ),
        ({"item_id": "P0000", "decision": "keep", "label": "pass"}, 422, "takes no label"),
        ({"item_id": "nope", "decision": "keep"}, 404, "has no item 'nope'"),
        # Not text: bad input, not a missing item (a review: "has no item None", 404).
        ({"item_id": ["P0000"], "decision": "keep"}, 422, "item_id must be text"),
        ({"item_id": None, "decision": "keep"}, 422, "item_id must be text"),
        ({"item_id": "P0000", "decision": "keep", "note": "x" * 2001}, 422, "at most 2000"),
    ],
)
def test_bad_decisions_are_refused(
    reviewed: dict[str, Any], body: dict[str, Any], code: int, message: str
) -> None:
    r = post(reviewed, "ana", **body)
    assert r.status_code == code and message in r.json()["detail"], r.text


def test_relabelling_to_the_current_label_is_a_keep(reviewed: dict[str, Any]) -> None:
    same = reviewed["labels"]["P0000"]
    r = post(reviewed, "ana", item_id="P0000", decision="relabel", label=same)
    assert r.status_code == 422 and "that is keep" in r.json()["detail"]
    auth = {"Authorization": f"Bearer {reviewed['tokens']['ana']}"}
    none = reviewed["client"].post(f"/api/runs/{reviewed['run']}/corrections", headers=auth)
    assert none.status_code == 422 and "no corrections yet" in none.json()["detail"]


def _corrections(path: Path, rows: list[str], header: str = "item_id,label,previous_label") -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_a_corrections_file_registers_a_new_version_from_the_cli(
    reviewed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    t, labels = reviewed, reviewed["labels"]
    add = ["dataset", "add", "parts", str(t["csv"]), "--label-column", "verdict",
           "--id-column", "part", "--home", str(t["home"]), "--corrections"]  # fmt: skip
    good = _corrections(t["tmp"] / "fix.csv", [f"P0005,{flip(labels['P0005'])},{labels['P0005']}"])
    capsys.readouterr()
    assert main([*add, str(good)]) == 0
    out = capsys.readouterr().out
    assert "added parts@2" in out and "labels corrected by review: 1 of 1" in out
    assert main([*add, str(good)]) == 0 and "unchanged" in capsys.readouterr().out

    cases = {
        "unknown.csv": (
            [f"P9999,{labels['P0005']},{labels['P0005']}"],
            "name no item of the dataset",
        ),
        "stale.csv": (
            [f"P0006,{labels['P0006']},{flip(labels['P0006'])}"],
            "reviewers saw other labels",
        ),
        "twice.csv": (["P0007,fail,", "P0007,pass,"], "corrected more than once"),
        "empty_label.csv": (["P0008,,"], "has no label"),
    }
    for name, (rows, message) in cases.items():
        capsys.readouterr()
        assert main([*add, str(_corrections(t["tmp"] / name, rows))]) == 2, name
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (name, err)
    no_label = _corrections(t["tmp"] / "cols.csv", ["P0001,x"], header="item_id,new")
    assert main([*add, str(no_label)]) == 2
    assert "needs the columns item_id and label" in capsys.readouterr().err
    ws = Workspace.open(t["home"])
    assert [d.ref for d in ws.catalog.list_datasets()] == ["parts@1", "parts@2"]  # nothing else
    ws.close()


def test_review_exports_are_inert_in_a_spreadsheet(reviewed: dict[str, Any]) -> None:
    """A note with a carriage return or a tab before a formula stays one inert cell."""
    t = reviewed
    post(t, "ana", item_id="P0000", decision="keep", note="\r=2+3")
    post(t, "ben", item_id="P0000", decision="keep", note="\t=1+1")
    text = get(t, f"/api/runs/{t['run']}/reviews.csv").text
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3  # the header and two decisions: no row smuggled in by \r
    notes = [r[5] for r in rows[1:]]
    assert notes == ["'\r=2+3", "'\t=1+1"]


@pytest.mark.parametrize(
    ("body", "path", "code", "message"),
    [
        ({"note": "\ud800"}, "note", 422, "not valid Unicode"),
        ({"item_id": "P0000", "decision": "keep", "note": "\ud800"}, "reviews", 422,
         "not valid Unicode"),
        # A NUL was stored on SQLite; PostgreSQL's text cannot hold one (a 500 there; a review).
        ({"note": "a\u0000b"}, "note", 422, "a NUL character"),
        ({"item_id": "P0000", "decision": "keep", "note": "\u0000"}, "reviews", 422,
         "a NUL character"),
    ],
)  # fmt: skip
def test_text_that_is_not_unicode_is_refused(
    reviewed: dict[str, Any], body: dict[str, Any], path: str, code: int, message: str
) -> None:
    auth = {
        "Authorization": f"Bearer {reviewed['tokens']['ana']}",
        "Content-Type": "application/json",
    }
    client, run = reviewed["client"], reviewed["run"]
    url = f"/api/runs/{run}/{path}"
    raw = json.dumps(body).encode()  # JSON escapes the lone surrogate: valid JSON, bad text
    send = client.put if path == "note" else client.post
    r = send(url, content=raw, headers=auth)
    assert r.status_code == code and message in r.json()["detail"], r.text
    token = json.dumps({"token": "\ud800"}).encode()
    session = client.post(
        "/api/session", content=token, headers={"Content-Type": "application/json"}
    )
    assert session.status_code == 401


def test_reviews_of_a_run_whose_files_are_gone_are_refused(reviewed: dict[str, Any]) -> None:
    folder = reviewed["home"] / "runs" / reviewed["run"]
    (folder / "predictions.parquet").unlink()
    r = reviewed["client"].get(
        f"/api/runs/{reviewed['run']}/reviews",
        headers={"Authorization": f"Bearer {reviewed['tokens']['vic']}"},
    )
    assert r.status_code == 422 and "is missing" in r.json()["detail"]


def test_corrections_name_classes_of_the_dataset_and_never_make_a_twin_version(
    reviewed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    t, labels = reviewed, reviewed["labels"]
    add = ["dataset", "add", "parts", str(t["csv"]), "--label-column", "verdict",
           "--id-column", "part", "--home", str(t["home"]), "--corrections"]  # fmt: skip
    bogus = _corrections(t["tmp"] / "bogus.csv", ["P0005,bogus,"])
    assert main([*add, str(bogus)]) == 2
    assert "label 'bogus' is not a class of the dataset" in capsys.readouterr().err

    # Reviewed in the app, registered there, then the downloaded file given to the CLI, and a
    # copy of it under another name with a byte-order mark: one version, parts@2.
    a = "P0009"
    for who in ("ana", "ben"):
        post(t, who, item_id=a, decision="relabel", label=flip(labels[a]))
    auth = {"Authorization": f"Bearer {t['tokens']['ana']}"}
    made = t["client"].post(f"/api/runs/{t['run']}/corrections", headers=auth).json()
    assert made["ref"] == "parts@2"
    text = get(t, f"/api/runs/{t['run']}/corrections.csv").text
    (t["tmp"] / "downloaded.csv").write_text(text)
    (t["tmp"] / "copy.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    for name in ("downloaded.csv", "copy.csv"):
        capsys.readouterr()
        assert main([*add, str(t["tmp"] / name)]) == 0
        assert "unchanged, already registered as parts@2" in capsys.readouterr().out
    # The source's own label column is corrected with the reference label: one label per item.
    (run,) = [r for r in get(t, "/api/runs").json()["runs"] if r["dataset"] == "parts@1"]
    assert main(["validate", "--model", "m", "--dataset", "parts@2", "--no-profile",
                 "--home", str(t["home"])]) in (0, 1)  # fmt: skip
    new = next(r for r in get(t, "/api/runs").json()["runs"] if r["dataset"] == "parts@2")
    row = int(a[1:])
    item = get(t, f"/api/runs/{new['id']}/items/{row}").json()
    assert item["label"] == item["columns"]["verdict"] == flip(labels[a])
    assert run["id"] != new["id"]
