"""The item explorer: every filter selects exactly the items the run's own files say, and one
item shows everything the run knows of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from assay.cli.main import main
from assay.services.workspace import Workspace
from assay.web.app import create_app
from assay.worker.queue import open_queue
from tests.models import fit_logistic, tabular_onnx, write_spec

N = 600


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tabular run with a baseline, slices and explorations, served by the app."""
    tmp = tmp_path_factory.mktemp("explorer")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 3))
    camera = rng.integers(1, 4, N)
    # Camera 3 mislabels a third of its parts: the errors cluster there.
    y = np.where(x[:, 0] + x[:, 1] > 0, "fail", "pass")
    flip = (camera == 3) & (rng.random(N) < 0.35)
    y = np.where(flip, np.where(y == "fail", "pass", "fail"), y)
    csv = tmp / "parts.csv"
    csv.write_text(
        "part,a,b,c,camera,line,verdict\n"
        + "".join(
            f"P{i:04d},{x[i, 0]:.5f},{x[i, 1]:.5f},{x[i, 2]:.5f},{camera[i]},L{i % 2 + 1},{y[i]}\n"
            for i in range(N)
        )
    )
    good = tabular_onnx(fit_logistic(x[:, :2].astype(np.float32), y), 2, tmp / "good.onnx")
    weak = tabular_onnx(fit_logistic(x[:, 2:3].astype(np.float32), y), 1, tmp / "weak.onnx")
    home = tmp / "home"
    h = ["--home", str(home)]
    spec = {"labels": ["fail", "pass"], "negative": "pass"}
    write_spec(tmp / "good.yaml", **spec, input={"kind": "tabular", "columns": ["a", "b"]})
    write_spec(tmp / "weak.yaml", **spec, input={"kind": "tabular", "columns": ["c"]})
    assert main(["dataset", "add", "parts", str(csv), "--label-column", "verdict",
                 "--id-column", "part", *h]) == 0  # fmt: skip
    assert main(["model", "add", "weak", str(weak), "--spec", str(tmp / "weak.yaml"), *h]) == 0
    assert main(["model", "add", "good", str(good), "--spec", str(tmp / "good.yaml"), *h]) == 0
    code = main(["validate", "--model", "good", "--dataset", "parts", "--baseline", "weak",
                 "--slice", "camera", "--slice", "line*camera", "--no-profile", *h])  # fmt: skip
    assert code in (0, 1)
    ws = Workspace.open(home)
    token = ws.access.create_token("t", "viewer")[1]
    run = next(r for r in ws.catalog.list_runs() if r.baseline_model_id is not None)
    ws.close()
    client = TestClient(create_app(home, queue=open_queue(home)))
    folder = Path(run.run_dir)
    return {
        "client": client,
        "auth": {"Authorization": f"Bearer {token}"},
        "run": run.id,
        "folder": folder,
        "result": json.loads((folder / "result.json").read_text()),
        "predictions": pq.read_table(folder / "predictions.parquet"),
        "csv": csv,
    }


def page(t: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = t["client"].get(
        f"/api/runs/{t['run']}/items", params={"limit": 500, **params}, headers=t["auth"]
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ids(t: dict[str, Any], **params: Any) -> list[str]:
    """Every item the filter selects (through every page)."""
    out: list[str] = []
    while True:
        p = page(t, offset=len(out), **params)
        out += [i["item_id"] for i in p["items"]]
        if len(out) >= p["total"]:
            assert len(out) == p["total"]
            return out


def where(table: Any, mask: Any) -> list[str]:
    return table.filter(mask).column("item_id").to_pylist()  # type: ignore[no-any-return]


def test_outcome_and_cell_filters_match_the_predictions(tabular: dict[str, Any]) -> None:
    preds = tabular["predictions"]
    wrong = pc.equal(preds.column("correct"), False)
    assert ids(tabular, correct="false") == where(preds, wrong)
    cell = pc.and_(
        pc.equal(preds.column("label"), "fail"), pc.equal(preds.column("predicted"), "pass")
    )
    assert ids(tabular, label="fail", predicted="pass") == where(preds, cell)
    cm = tabular["result"]["confusion_matrix"]
    assert page(tabular, label="fail", predicted="pass")["total"] == cm[0][1]


def test_broken_and_fixed_match_the_comparison_ledger(tabular: dict[str, Any]) -> None:
    ledger = pq.read_table(tabular["folder"] / "comparison.parquet")
    comp = tabular["result"]["comparison"]
    for change, n in (("broken", comp["n_broken"]), ("fixed", comp["n_fixed"])):
        expected = where(ledger, pc.equal(ledger.column("outcome"), change))
        assert sorted(ids(tabular, change=change)) == sorted(expected) and len(expected) == n
    # Each card carries the baseline's answer, read from the baseline run.
    p = page(tabular, change="fixed")
    assert p["has_baseline"] and all(i["baseline"] != i["label"] for i in p["items"])


def test_every_reported_slice_holds_exactly_the_items_it_counted(tabular: dict[str, Any]) -> None:
    result = tabular["result"]
    assert result["slices"]
    for sl in result["slices"]:
        got = page(tabular, slice=json.dumps(sl["predicates"]), limit=1)["total"]
        assert got == sl["n_items"], sl["slice"]
    for s in result["error_slices"]:
        got = page(tabular, slice=json.dumps(s["predicates"]))["total"]
        assert got == s["n_items"], s["predicates"]


def test_error_groups_and_doubtful_labels_match_their_files(tabular: dict[str, Any]) -> None:
    folder = tabular["folder"]
    if (folder / "doubtful_labels.parquet").exists():
        doubtful = pq.read_table(folder / "doubtful_labels.parquet")
        got = ids(tabular, doubtful="true", sort="doubt")
        assert sorted(got) == sorted(doubtful.column("item_id").to_pylist())
        # Most doubtful first: the file's own order (lowest label quality first).
        assert got[:10] == doubtful.sort_by("label_quality").column("item_id").to_pylist()[:10]
    groups = folder / "error_groups.parquet"
    if groups.exists():
        table = pq.read_table(groups)
        for g in set(table.column("group").to_pylist()):
            expected = where(table, pc.equal(table.column("group"), g))
            assert sorted(ids(tabular, group=g)) == sorted(expected)


def test_metadata_and_score_filters(tabular: dict[str, Any]) -> None:
    preds = tabular["predictions"]
    lines = tabular["csv"].read_text().splitlines()[1:]
    camera3 = [row.split(",")[0] for row in lines if row.split(",")[4] == "3"]
    assert ids(tabular, where="camera=3") == camera3
    both = [
        row.split(",")[0] for row in lines if row.split(",")[4] == "3" and row.split(",")[5] == "L1"
    ]
    assert ids(tabular, where="camera>=3; line=L1") == both
    confident = where(preds, pc.greater_equal(preds.column("score_fail"), 0.9))
    assert ids(tabular, score="fail>=0.9") == confident
    assert ids(tabular, item="P000") == [f"P000{i}" for i in range(10)]
    ranked = page(tabular, sort="confidence", correct="false")["items"]
    conf = [i["confidence"] for i in ranked]
    assert conf == sorted(conf, reverse=True)


def test_one_item_in_full(tabular: dict[str, Any]) -> None:
    preds = tabular["predictions"].to_pylist()
    row = next(i for i, p in enumerate(preds) if p["correct"] is False)
    r = tabular["client"].get(f"/api/runs/{tabular['run']}/items/{row}", headers=tabular["auth"])
    d = r.json()
    assert d["item_id"] == preds[row]["item_id"] and d["predicted"] == preds[row]["predicted"]
    assert d["scores"] == {"fail": preds[row]["score_fail"], "pass": preds[row]["score_pass"]}
    line = tabular["csv"].read_text().splitlines()[1 + row].split(",")
    assert d["columns"]["camera"] == int(line[4]) and d["columns"]["a"] == pytest.approx(
        float(line[1])
    )
    base = pq.read_table(
        Path(tabular["folder"]).parent
        / tabular["result"]["comparison"]["baseline"]["run_id"]
        / "predictions.parquet"
    ).to_pylist()[row]
    assert d["baseline"]["predicted"] == base["predicted"]
    assert d["baseline"]["scores"]["fail"] == base["score_fail"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"label": "fial"}, "did you mean 'fail'?"),
        ({"where": "camra=3"}, "did you mean 'camera'?"),
        ({"where": "camera"}, "cannot read 'camera'"),
        ({"where": "camera>=three"}, "is not a number"),
        ({"score": "fail>=high"}, "is not a number"),
        ({"score": "nope>=0.5"}, "no scores of class 'nope'"),
        ({"slice": "{not json"}, "slice: expected JSON"),
        ({"slice": '[{"column": "camera", "value": "9"}]'}, "has no value '9'"),
        ({"change": "stolen"}, "change: one of"),
        ({"group": "x"}, "group must be a whole number"),
        ({"sort": "random"}, "sort:"),
        ({"correct": "maybe"}, "correct must be true or false"),
        ({"limit": 0}, "limit must be between"),
        ({"offset": -5}, "offset must be between 0 and"),
    ],
)
def test_bad_filters_are_refused_in_one_line(
    tabular: dict[str, Any], params: dict[str, Any], message: str
) -> None:
    r = tabular["client"].get(
        f"/api/runs/{tabular['run']}/items", params=params, headers=tabular["auth"]
    )
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    assert "\n" not in r.json()["detail"]


def test_rows_outside_the_run_are_404(tabular: dict[str, Any]) -> None:
    for row in (N, 10**9, -1):
        r = tabular["client"].get(
            f"/api/runs/{tabular['run']}/items/{row}", headers=tabular["auth"]
        )
        assert r.status_code == 404


def test_a_run_page_shows_the_reports_sections_with_links_to_items(tabular: dict[str, Any]) -> None:
    r = tabular["client"].get(f"/api/runs/{tabular['run']}/view", headers=tabular["auth"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for section in (
        "checks",
        "summary",
        "confusion",
        "comparison",
        "slices",
        "per-class",
        "curves",
        "failures",
        "run",
    ):
        assert f'id="{section}"' in html, section
    assert f'href="/runs/{tabular["run"]}/items?label=fail&amp;predicted=pass"' in html
    assert "change=broken" in html and "slice=" in html
    again = tabular["client"].get(
        f"/api/runs/{tabular['run']}/view",
        headers={**tabular["auth"], "If-None-Match": r.headers["etag"]},
    )
    assert again.status_code == 304
    # The standalone report has the same sections, without the app's links.
    report = (tabular["folder"] / "report.html").read_text()
    assert 'id="slices"' in report and "/items?" not in report


def test_the_run_has_what_these_tests_read(tabular: dict[str, Any]) -> None:
    """The filters above are checked against real findings, not against empty files."""
    result = tabular["result"]
    assert (tabular["folder"] / "doubtful_labels.parquet").exists()
    assert result["error_slices"], "camera 3's errors should form a slice"
    assert len(result["slices"]) >= 3 + 6
    assert result["comparison"]["n_broken"] > 0 and result["comparison"]["n_fixed"] > 0


def test_compare_two_runs_agrees_with_the_validations_own_comparison(
    tabular: dict[str, Any],
) -> None:
    comp = tabular["result"]["comparison"]
    base, cand = comp["baseline"]["run_id"], tabular["run"]
    client, auth = tabular["client"], tabular["auth"]
    c = client.get("/api/compare", params={"runs": f"{base},{cand}"}, headers=auth).json()
    assert [r["id"] for r in c["runs"]] == [base, cand] and c["reference"] == base
    (pair,) = c["pairs"]
    assert pair["paired"] and (pair["n_broken"], pair["n_fixed"]) == (
        comp["n_broken"],
        comp["n_fixed"],
    )
    assert pair["n_both_wrong"] == comp["n_both_wrong"]
    assert pair["mcnemar_p"] == pytest.approx(comp["mcnemar"]["p_value"])
    delta = pair["accuracy_delta"]
    assert delta["value"] == pytest.approx(comp["deltas"]["accuracy"]["delta"])
    assert delta["ci_low"] < delta["value"] < delta["ci_high"]
    accuracy = next(m for m in c["metrics"] if m["key"] == "accuracy")
    assert accuracy["values"][1]["value"] == tabular["result"]["metrics"]["accuracy"]["value"]
    # Per class, each value carries its interval, so the page colours a change on evidence.
    own = tabular["result"]["metrics"]["per_class"]
    for row in c["per_class"]:
        recall = row["values"][1]["recall"]
        expected = own[row["label"]]["recall"]
        assert (recall["value"], recall["ci_low"], recall["ci_high"]) == (
            expected["value"],
            expected["ci_low"],
            expected["ci_high"],
        )
        assert recall["ci_low"] <= recall["value"] <= recall["ci_high"]

    # The reference reported no slices: they are counted from its own items.
    base_preds = pq.read_table(tabular["folder"].parent / base / "predictions.parquet")
    cameras = [int(r.split(",")[4]) for r in tabular["csv"].read_text().splitlines()[1:]]
    right = base_preds.column("correct").to_pylist()
    for s in c["slices"]:
        if s["slice"].startswith("camera = "):
            cam = int(s["slice"].split(" = ")[1])
            inside = [ok for ok, k in zip(right, cameras, strict=True) if k == cam]
            ref = s["values"][0]
            assert ref["n_items"] == len(inside)
            assert ref["accuracy"]["value"] == pytest.approx(sum(inside) / len(inside))

    # Each count opens exactly its items in the explorer.
    broken = ids(tabular, against=base, change="broken")
    ledger = pq.read_table(tabular["folder"] / "comparison.parquet")
    assert sorted(broken) == sorted(where(ledger, pc.equal(ledger.column("outcome"), "broken")))
    preds = tabular["predictions"]
    differ = where(preds, pc.not_equal(preds.column("predicted"), base_preds.column("predicted")))
    assert ids(tabular, against=base, differs="true") == differ and len(differ) == pair["n_differ"]


def test_compare_refuses_what_it_cannot_compare(tabular: dict[str, Any]) -> None:
    client, auth = tabular["client"], tabular["auth"]
    run = tabular["run"]
    for runs, message in (
        (run, "compare 2 to 8 different runs"),
        (f"{run},{run}", "compare 2 to 8 different runs"),
        (f"{run},nope", "run nope not found"),
    ):
        r = client.get("/api/compare", params={"runs": runs}, headers=auth)
        assert r.status_code in (404, 422) and message in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/runs", {"offset": 2**63}, "offset must be between"),
        ("/api/runs", {"verdict": "PASS"}, "verdict must be one of pass"),
        ("/api/runs", {"status": "done"}, "status must be one of"),
        ("/api/runs", {"origin": "typo"}, "origin must be one of"),
        ("items", {"group": "9" * 23}, "group must be a whole number"),
        ("items", {"slice": '[{"column": "camera", "value": "!= "}]'}, "camera != needs a value"),
        ("items", {"slice": "{}"}, "slice: expected JSON"),
        ("items", {"score": ">=0.5"}, "score: name the class"),
        ("items", {"where": ";".join(["camera=1"] * 11)}, "at most 10 conditions"),
    ],
)
def test_hostile_queries_are_refused_in_one_line(
    tabular: dict[str, Any], path: str, params: dict[str, Any], message: str
) -> None:
    url = f"/api/runs/{tabular['run']}/items" if path == "items" else path
    r = tabular["client"].get(url, params=params, headers=tabular["auth"])
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_the_sections_fragment_cannot_run_anything_on_its_own(tabular: dict[str, Any]) -> None:
    r = tabular["client"].get(f"/api/runs/{tabular['run']}/view", headers=tabular["auth"])
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_slice_counts_the_same_in_the_report_the_explorer_and_compare(
    tabular: dict[str, Any],
) -> None:
    """A slice's row counts its judged items; its link opens exactly those, and compare counts
    the reference's items the same way."""
    result = tabular["result"]
    html = tabular["client"].get(f"/api/runs/{tabular['run']}/view", headers=tabular["auth"]).text
    assert "judged=true" in html
    base = result["comparison"]["baseline"]["run_id"]
    c = (
        tabular["client"]
        .get("/api/compare", params={"runs": f"{base},{tabular['run']}"}, headers=tabular["auth"])
        .json()
    )
    by_name = {s["slice"]: s for s in result["slices"]}
    for s in c["slices"]:
        reported = by_name[s["slice"]]
        shown = page(tabular, slice=json.dumps(reported["predicates"]), judged="true", limit=1)
        assert shown["total"] == reported["n_items"] == s["values"][1]["n_items"]
    # The pair the validation itself compared carries the validation's own numbers.
    (pair,) = c["pairs"]
    delta = result["comparison"]["deltas"]["accuracy"]
    assert pair["recorded"] and pair["accuracy_delta"] == {
        "value": delta["delta"], "ci_low": delta["ci_low"], "ci_high": delta["ci_high"]
    }  # fmt: skip
