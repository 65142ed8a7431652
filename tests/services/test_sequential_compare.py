"""assay compare --sequential on two runs whose outcomes are chosen item by item, with labels
arriving in a chosen order (some not yet): the bounds and the decision equal the confidence
sequence computed directly on the differences in that order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.core.sequential import confidence_sequence, first_decision
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import passthrough_onnx

N = 3000


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("seq")
    rng = np.random.default_rng(8)
    labels = rng.choice(["bad", "good"], N)
    base_right = rng.uniform(size=N) < 0.85
    cand_right = np.where(rng.uniform(size=N) < 0.9, base_right, ~base_right) | (
        rng.uniform(size=N) < 0.05
    )
    columns: dict[str, Any] = {"id": [f"i{k}" for k in range(N)], "label": labels}
    for name, right in (("b", base_right), ("c", cand_right)):
        says_bad = np.where(right, labels == "bad", labels != "bad")
        columns[f"{name}_bad"] = np.where(says_bad, 0.8, 0.2)
        columns[f"{name}_good"] = 1 - columns[f"{name}_bad"]
    # A candidate right on every item it answers, answering a third with NaN.
    columns["n_bad"] = np.where(labels == "bad", 0.8, 0.2)
    columns["n_bad"][rng.uniform(size=N) < 1 / 3] = np.nan
    columns["n_good"] = 1 - columns["n_bad"]
    # Two models worse and better than each other, both unable to judge 70% of the items.
    broken = rng.uniform(size=N) < 0.7
    for name, right in (("x", rng.uniform(size=N) < 0.91), ("y", rng.uniform(size=N) < 0.97)):
        says_bad = np.where(right, labels == "bad", labels != "bad")
        columns[f"{name}_bad"] = np.where(broken, np.nan, np.where(says_bad, 0.8, 0.2))
        columns[f"{name}_good"] = 1 - columns[f"{name}_bad"]
    arrival = rng.permutation(N).astype(float)
    arrival[rng.choice(N, 200, replace=False)] = np.nan  # not labelled yet
    columns["labelled_at"] = pa.array(arrival, from_pandas=True)
    pq.write_table(pa.table(columns), tmp / "d.parquet")
    ws = Workspace.open(tmp / "home")
    register_dataset(ws, "line", tmp / "d.parquet", id_column="id")
    onnx = passthrough_onnx(tmp / "p.onnx", 2)
    ids = {}
    for name in ("b", "c", "n", "x", "y"):
        spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                "input": {"kind": "tabular", "columns": [f"{name}_bad", f"{name}_good"]}}  # fmt: skip
        register_model(ws, f"m{name}", onnx, spec)
        ids[name] = validate(ws, f"m{name}", "line",
                             config=ValidationConfig(profile=False, explore=False)).result.run_id  # fmt: skip
    order = np.argsort(arrival[~np.isnan(arrival)], kind="stable")
    d = (cand_right.astype(float) - base_right.astype(float))[~np.isnan(arrival)][order]
    return {"home": str(tmp / "home"), "ids": ids, "d": d, "tmp": tmp}


def test_the_decision_is_the_sequence_in_label_order(runs: dict[str, Any], capsys: Any) -> None:
    out = runs["tmp"] / "seq"
    code = main(["compare", runs["ids"]["c"], runs["ids"]["b"], "--sequential", "--order",
                 "labelled_at", "--margin", "0.02", "--out", str(out), "--home", runs["home"]])  # fmt: skip
    doc = json.loads((out / "sequential.json").read_text())
    seq = confidence_sequence(runs["d"], 0.05)
    decision, at = first_decision(seq, 0.02)
    assert doc["n_items"] == N - 200 and doc["n_waiting"] == 200
    assert (doc["decision"], doc["decided_after"]) == (decision, at)
    assert doc["final"]["lower"] == pytest.approx(seq.lower[-1])
    assert code == (0 if decision == "accept" else 1)
    assert "anytime-valid 95% bounds" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--order", "nope"], "not a column"), (["--margin", "2"], "--margin"),
     (["--policy", "p.yaml"], "not by a --policy")],
)  # fmt: skip
def test_bad_input(runs: dict[str, Any], capsys: Any, extra: list[str], says: str) -> None:
    if "--policy" in extra:
        (Path(runs["tmp"]) / "p.yaml").write_text("checks: []\n")
        extra = ["--policy", str(Path(runs["tmp"]) / "p.yaml")]
    code = main(["compare", runs["ids"]["c"], runs["ids"]["b"], "--sequential", *extra,
                 "--home", runs["home"]])  # fmt: skip
    assert code == 2 and says in capsys.readouterr().err


def test_not_yet_is_exit_1_not_a_crash(runs: dict[str, Any], capsys: Any) -> None:
    """Too few labels to decide either way: "not yet", exit 1 (it crashed with exit 3)."""
    code = main(["compare", runs["ids"]["c"], runs["ids"]["b"], "--sequential", "--margin",
                 "0.064", "--alpha", "0.001", "--home", runs["home"]])  # fmt: skip
    out = capsys.readouterr()
    doc_decision = "not yet" in out.out
    assert code == 1 and doc_decision, out.out + out.err


def test_out_naming_a_file_is_refused(runs: dict[str, Any], capsys: Any) -> None:
    taken = Path(runs["tmp"]) / "a-file"
    taken.write_text("not a folder")
    code = main(["compare", runs["ids"]["c"], runs["ids"]["b"], "--sequential", "--out",
                 str(taken), "--home", runs["home"]])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not a folder" in err and "\n" not in err  # it was exit 3


@pytest.mark.parametrize("sequential", [[], ["--sequential"]])
def test_a_model_version_is_not_compared_with_itself(
    runs: dict[str, Any], capsys: Any, sequential: list[str]
) -> None:
    """Two runs of one model version: nothing can change by construction, and a PASS or an
    accept would read as evidence (validate --baseline refuses the same)."""
    ws = Workspace.open(Path(runs["home"]))
    again = validate(ws, "mb", "line", config=ValidationConfig(profile=False, explore=False,
                                                                 reuse=False)).result.run_id  # fmt: skip
    ws.close()
    code = main(["compare", again, runs["ids"]["b"], *sequential, "--home", runs["home"]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "both runs are of mb@1" in err and "\n" not in err


def test_the_same_model_under_another_name_is_no_baseline(
    runs: dict[str, Any], capsys: Any
) -> None:
    """The same file and spec registered as mb and mb-copy: one version digest, yet
    validate --baseline and compare said PASS."""
    ws = Workspace.open(Path(runs["home"]))
    mb = ws.catalog.get_model_by_id(ws.catalog.get_run(runs["ids"]["b"]).model_id)
    register_model(ws, "mb-copy", Path(mb.file_path), mb.spec)
    copy = validate(ws, "mb-copy", "line", config=ValidationConfig(profile=False, explore=False))
    with pytest.raises(InputError, match="the same model as the candidate"):
        validate(ws, "mb-copy", "line", baseline="mb@1",
                 config=ValidationConfig(profile=False, explore=False))  # fmt: skip
    ws.close()
    code = main(["compare", copy.result.run_id, runs["ids"]["b"], "--home", runs["home"]])
    assert code == 2 and "the same file and spec" in capsys.readouterr().err


def test_items_the_candidate_could_not_judge_count_as_wrong(
    runs: dict[str, Any], capsys: Any
) -> None:
    """A candidate answering a third of the items with NaN (its validation fails on coverage)
    was accepted: the comparison looked only at the items both runs judged."""
    out = runs["tmp"] / "seq-nan"
    code = main(["compare", runs["ids"]["n"], runs["ids"]["b"], "--sequential", "--order",
                 "labelled_at", "--out", str(out), "--home", runs["home"]])  # fmt: skip
    doc = json.loads((out / "sequential.json").read_text())
    assert doc["n_items"] == N - 200
    assert 800 < doc["n_unjudged"]["candidate"] < 1000 and doc["n_unjudged"]["baseline"] == 0
    assert (doc["decision"], code) == ("reject", 1)
    assert doc["final"]["mean"] == pytest.approx(0.667 - 0.85, abs=0.04)
    assert "counted as wrong" in capsys.readouterr().out


def test_items_neither_model_could_judge_are_left_out_not_ties(
    runs: dict[str, Any], capsys: Any
) -> None:
    """70% of the items unreadable for both models, counted as wrong for both: each a tie,
    they pulled a candidate 0.06 worse towards 0 and a review saw it accepted."""
    out = runs["tmp"] / "seq-both"
    code = main(["compare", runs["ids"]["x"], runs["ids"]["y"], "--sequential", "--margin",
                 "0.03", "--out", str(out), "--home", runs["home"]])  # fmt: skip
    doc = json.loads((out / "sequential.json").read_text())
    assert doc["n_unjudged_by_both"] > 0.6 * N and doc["n_unjudged"]["candidate"] == 0
    assert doc["final"]["mean"] == pytest.approx(0.91 - 0.97, abs=0.04)
    assert (doc["decision"], code) != ("accept", 0)
    assert "neither model could judge" in capsys.readouterr().out
