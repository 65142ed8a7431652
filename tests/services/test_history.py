"""Item history on a store whose outcomes are chosen item by item: three versions of a model (each
reads its own score columns, so the test decides who is right where) on two dataset versions.
The matrix, the lists and the churn must be exactly the chosen ones; the CLI writes them."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core import item_history as ih
from assay.core.config import ValidationConfig
from assay.services.datasets import register_dataset
from assay.services.history import item_history
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import passthrough_onnx

N1, N2 = 400, 460  # items of version 1; version 2 adds 60
CONFIG = ValidationConfig(batch_size=128, profile=False, explore=False)


def _scores(right: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score columns (bad, good) that make the answer right where ``right`` says."""
    bad = labels == "bad"
    says_bad = np.where(right, bad, ~bad)
    p = np.where(says_bad, 0.8, 0.2)
    return p, 1 - p


def _scores_model(ws: Workspace, tmp: Path, **spec: Any) -> None:
    """Model m (its next version): a table's s_bad and s_good columns are its scores."""
    scores = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
              "input": {"kind": "tabular", "columns": ["s_bad", "s_good"]}}  # fmt: skip
    register_model(ws, "m", passthrough_onnx(tmp / "p.onnx", 2), scores | spec)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("history")
    rng = np.random.default_rng(5)
    labels = rng.choice(["bad", "good"], N2)
    # Chosen outcomes of versions 1..3 (rows: items).
    right = rng.uniform(size=(N2, 3)) < 0.8
    right[:20] = [True, True, False]  # broken by the candidate
    right[20:35] = [False, False, False]  # never right
    right[35:50] = [True, False, True]  # flips twice
    right[50] = [True, True, True]  # version 3 cannot judge it (below): broken too
    columns: dict[str, Any] = {"id": [f"i{k}" for k in range(N2)], "label": labels.astype(object)}
    for v in range(3):
        columns[f"bad{v}"], columns[f"good{v}"] = _scores(right[:, v], labels)
    columns["good2"][50] = np.nan  # version 3 cannot judge item 50 (the model's input is NaN)
    table = pa.table(columns)
    pq.write_table(table.slice(0, N1), tmp / "v1.parquet")
    pq.write_table(table, tmp / "v2.parquet")
    ws = Workspace.open(tmp / "home")
    register_dataset(ws, "cable", tmp / "v1.parquet", id_column="id")
    register_dataset(ws, "cable", tmp / "v2.parquet", id_column="id")
    onnx = passthrough_onnx(tmp / "p.onnx", 2)
    for v in range(3):
        spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                "input": {"kind": "tabular", "columns": [f"bad{v}", f"good{v}"]}}  # fmt: skip
        register_model(ws, "scanner", onnx, spec)
    validate(ws, "scanner@1", "cable@1", config=CONFIG)  # version 1 never saw the new items
    validate(ws, "scanner@2", "cable@1", config=CONFIG)
    validate(ws, "scanner@2", "cable@2", config=CONFIG)  # stands for version 2: newest dataset
    validate(ws, "scanner@3", "cable@2", config=CONFIG)
    return {"ws": ws, "right": right, "home": tmp / "home", "tmp": tmp}


def test_the_matrix_is_the_outcomes_chosen(store: dict[str, Any]) -> None:
    h = item_history(store["ws"], "cable")
    assert [v.model for v in h.versions] == ["scanner@1", "scanner@2", "scanner@3"]
    assert [v.dataset for v in h.versions] == ["cable@1", "cable@2", "cable@2"]
    order = [int(i[1:]) for i in h.item_ids.to_pylist()]
    expected = np.where(store["right"][order], ih.RIGHT, ih.WRONG).astype(np.int8)
    expected[np.array(order) >= N1, 0] = ih.ABSENT
    expected[order.index(50), 2] = ih.NOT_JUDGED
    np.testing.assert_array_equal(h.outcomes, expected)


def test_the_lists_and_the_churn(store: dict[str, Any]) -> None:
    h = item_history(store["ws"], "cable")
    s = h.summary(limit=1000)
    broken = {r["item_id"] for r in s["broken"]["items"]}
    assert {f"i{k}" for k in range(20)} <= broken
    outcome = {r["item_id"]: r["outcomes"][2] for r in s["broken"]["items"]}
    assert outcome.pop("i50") == "not judged" and set(outcome.values()) == {"wrong"}
    assert {f"i{k}" for k in range(20, 35)} <= {r["item_id"] for r in s["never_right"]["items"]}
    assert {f"i{k}" for k in range(35, 50)} <= {r["item_id"] for r in s["flip_flop"]["items"]}
    right = store["right"]
    both = np.ones(N2, bool)
    both[50] = False
    c = s["churn"][1]
    assert (c["before"], c["after"]) == ("scanner@2", "scanner@3")
    assert c["n_common"] == both.sum()
    assert c["n_broken"] == int((both & right[:, 1] & ~right[:, 2]).sum())
    assert c["n_fixed"] == int((both & ~right[:, 1] & right[:, 2]).sum())
    assert s["churn"][0]["n_common"] == N1  # version 1 ran on the first 400 only


def test_a_named_candidate_and_a_model_filter(store: dict[str, Any]) -> None:
    h = item_history(store["ws"], "cable", model="scanner", candidate="scanner@2")
    assert h.versions[h.candidate].model == "scanner@2"
    broken = h.masks()["broken"]
    right = store["right"]
    order = [int(i[1:]) for i in h.item_ids.to_pylist()]
    expected = np.array([right[k, 0] and not right[k, 1] and k < N1 for k in order])
    np.testing.assert_array_equal(broken, expected)


def test_the_cli_prints_and_writes_the_history(store: dict[str, Any], capsys: Any) -> None:
    home, out = str(store["home"]), store["tmp"] / "hist"
    assert main(["history", "cable", "--home", home, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"broken: \d+ item", printed) and "never right:" in printed
    assert re.search(r"scanner@3 +\w+ +cable@2 +459 ", printed)
    doc = json.loads((out / "history.json").read_text())
    assert doc["candidate"] == "scanner@3" and doc["n_items"] == N2
    matrix = pq.read_table(out / "history.parquet")
    assert matrix.num_rows == N2
    assert {"outcome:scanner@1", "predicted:scanner@3"} <= set(matrix.column_names)
    absent = matrix.filter(pa.compute.equal(matrix.column("item_id"), "i455"))
    assert absent.column("outcome:scanner@1").to_pylist() == [None]
    assert main(["history", "cable", "--home", home, "--json", "--limit", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["broken"]["items"] == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["history", "cable@2"], "give its name"),
        (["history", "cable", "--model", "scaner"], "scanner"),
        (["history", "cable", "--candidate", "scanner@9"], "scanner@9"),
        (["history", "nothing"], "dataset nothing not found"),
        (["history", "cable", "--limit", "-1"], "--limit"),
        (["history", "cable", "--out", "FILE"], "is not a folder"),
        # (a review wrote history files into a run's folder)
        (["history", "cable", "--out", "RUN"], "is inside the store"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    store: dict[str, Any], capsys: Any, argv: list[str], says: str
) -> None:
    if "FILE" in argv:  # --out naming a file (it was exit 3)
        taken = Path(store["home"]).parent / "a-file"
        taken.write_text("not a folder")
        argv = [str(taken) if a == "FILE" else a for a in argv]
    if "RUN" in argv:
        run = next((Path(store["home"]) / "runs").iterdir())
        argv = [str(run) if a == "RUN" else a for a in argv]
    assert main([*argv, "--home", str(store["home"])]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_the_history_feeds_the_doubtful_labels(store: dict[str, Any]) -> None:
    """Items no earlier version ever got right, and this run gets wrong too, are listed beside
    the doubtful labels (the report says it as well)."""
    out = validate(store["ws"], "scanner@3", "cable@2",
                   config=ValidationConfig(batch_size=128, profile=False))  # fmt: skip
    found = out.result.doubtful_labels["never_right"]
    assert found["versions"] == ["scanner@1", "scanner@2"]
    right = store["right"]
    expected = (~right[:, 2]) & ~right[:, 1] & ~(right[:, 0] & (np.arange(N2) < N1))
    expected[50] = False  # not judged by the run
    assert found["n_items"] == int(expected.sum())
    assert set(found["items"]) <= {f"i{k}" for k in np.flatnonzero(expected)}
    assert "were got right by none of the 2 other model version" in (
        out.run_dir / "report.html").read_text()  # fmt: skip


def test_a_corrected_label_is_not_a_regression(tmp_path: Path) -> None:
    """Two versions that answer every item alike, one run before 30 labels were corrected and
    one after: every answer is judged against the newest labels, so nothing churns (before,
    the corrections showed as 27 broken items and a significant McNemar test)."""
    rng = np.random.default_rng(9)
    labels = rng.choice(["bad", "good"], 300).astype(object)
    p = rng.uniform(size=300)
    pq.write_table(
        pa.table({"s_bad": p, "s_good": 1 - p, "label": labels}), tmp_path / "v1.parquet"
    )
    fixed = labels.copy()
    fixed[:30] = np.where(labels[:30] == "bad", "good", "bad")
    pq.write_table(pa.table({"s_bad": p, "s_good": 1 - p, "label": fixed}), tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet")
    register_dataset(ws, "t", tmp_path / "v2.parquet")
    _scores_model(ws, tmp_path)
    _scores_model(
        ws, tmp_path, input={"kind": "tabular", "columns": ["s_bad", "s_good"], "missing": "allow"}
    )  # another version, same answers
    validate(ws, "m@1", "t@1", config=CONFIG)
    validate(ws, "m@2", "t@2", config=CONFIG)
    s = item_history(ws, "t").summary()
    assert (s["churn"][0]["n_broken"], s["churn"][0]["n_fixed"]) == (0, 0)
    assert s["versions"][0]["n_right"] == s["versions"][1]["n_right"]


def test_answers_are_judged_against_the_newest_registered_labels(tmp_path: Path) -> None:
    """Labels corrected in a version no model has run on yet: the history judged against the
    newest version *with a run*, so it showed the old labels; and a validation on the corrected
    version listed 2 never-right items where the same validation repeated (once its own run
    existed) listed 1229. Both now take the labels of the version in question."""
    rng = np.random.default_rng(3)
    labels = rng.choice(["bad", "good"], 400).astype(object)
    p = rng.uniform(size=400)
    table = {"s_bad": p, "s_good": 1 - p, "label": labels}
    pq.write_table(pa.table(table), tmp_path / "v1.parquet")
    flipped = np.where(labels == "bad", "good", "bad").astype(object)
    pq.write_table(pa.table(table | {"label": flipped}), tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet")
    _scores_model(ws, tmp_path)
    _scores_model(
        ws, tmp_path, input={"kind": "tabular", "columns": ["s_bad", "s_good"], "missing": "allow"}
    )  # the same answers
    validate(ws, "m@1", "t@1", config=CONFIG)
    validate(ws, "m@2", "t@1", config=CONFIG)
    before = item_history(ws, "t").summary()
    register_dataset(ws, "t", tmp_path / "v2.parquet")  # every label flipped, no run on it yet
    after = item_history(ws, "t").summary()
    assert [v["n_right"] for v in after["versions"]] == [
        v["n_judged"] - v["n_right"] for v in before["versions"]
    ]
    explore = ValidationConfig(profile=False)
    first = validate(ws, "m@2", "t@2", config=explore).result.doubtful_labels["never_right"]
    again = validate(ws, "m@2", "t@2", config=dataclasses.replace(explore, reuse=False))
    assert first["n_items"] == again.result.doubtful_labels["never_right"]["n_items"]
    wrong_now = int((np.where(p >= 0.5, "bad", "good") != flipped).sum())
    assert first["n_items"] == wrong_now  # m@1 never got them right either


def test_with_one_model_version_nothing_is_never_right(tmp_path: Path, capsys: Any) -> None:
    """One version's errors are not 'never right by two versions or more': the list printed
    every error of the one model under that heading. It is empty until a second version runs."""
    rng = np.random.default_rng(4)
    labels = rng.choice(["bad", "good"], 200).astype(object)
    p = rng.uniform(size=200)
    pq.write_table(pa.table({"s_bad": p, "s_good": 1 - p, "label": labels}), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "t.parquet")
    _scores_model(ws, tmp_path)
    validate(ws, "m@1", "t@1", config=CONFIG)
    ws.close()
    assert main(["history", "t", "--home", str(tmp_path / "home")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "never right: 0 item(s)" in out and "needs two model versions" in out


def test_a_new_version_with_other_rows_under_the_same_row_numbers_changes_no_label(
    tmp_path: Path,
) -> None:
    """Items numbered by row: a new version with its rows in another order holds other items
    under the same ids. Taking its labels by id rewrote the history of the runs before it
    (92% right became 50%). A label is taken only for an item whose content is the same."""
    rng = np.random.default_rng(6)
    labels = rng.choice(["bad", "good"], 300).astype(object)
    right = rng.uniform(size=300) < 0.9
    p = np.where(right == (labels == "bad"), rng.uniform(0.6, 1, 300), rng.uniform(0, 0.4, 300))
    table = pa.table({"s_bad": p, "s_good": 1 - p, "label": labels})  # every row its own
    pq.write_table(table, tmp_path / "v1.parquet")
    pq.write_table(table.take(rng.permutation(300)), tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet")
    _scores_model(ws, tmp_path)
    validate(ws, "m@1", "t@1", config=CONFIG)
    before = item_history(ws, "t").summary()
    register_dataset(ws, "t", tmp_path / "v2.parquet")
    after = item_history(ws, "t").summary()
    assert after["versions"] == before["versions"]
    ws.close()


def test_a_version_that_judged_nothing_is_left_out_not_the_candidate(
    tmp_path: Path, capsys: Any
) -> None:
    """The newest version's run judged 0 items (its input columns all NaN): it became the
    candidate, 'broken: 0', and every never-right item pointed at its empty run. It is left out
    now, saying so; the candidate is the newest version that judged something."""
    rng = np.random.default_rng(6)
    labels = rng.choice(["bad", "good"], 200).astype(object)
    p, q = rng.uniform(size=200), rng.uniform(size=200)
    nan = np.full(200, np.nan)
    pq.write_table(pa.table({"s_bad": p, "s_good": 1 - p, "t_bad": q, "t_good": 1 - q,
                             "n_bad": nan, "n_good": nan, "label": labels}),
                   tmp_path / "t.parquet")  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "t.parquet")
    for a, b in (("s_bad", "s_good"), ("t_bad", "t_good"), ("n_bad", "n_good")):
        spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                "input": {"kind": "tabular", "columns": [a, b]}}  # fmt: skip
        register_model(ws, "m", passthrough_onnx(tmp_path / "p.onnx", 2), spec)
    for v in (1, 2, 3):
        validate(ws, f"m@{v}", "t@1", config=CONFIG)
    found = item_history(ws, "t")
    summary = found.summary(10)
    assert summary["candidate"] == "m@2"
    assert [v["model"] for v in summary["versions"]] == ["m@1", "m@2"]
    assert summary["left_out"] == [
        {"model": "m@3", "reason": "its runs on this dataset judged no item"}
    ]
    ws.close()
    assert main(["history", "t", "--home", str(tmp_path / "home")]) == 0
    assert "m@3 left out: its runs on this dataset judged no item" in capsys.readouterr().out


def test_rows_replaced_under_the_same_ids_are_not_broken_by_the_candidate(tmp_path: Path) -> None:
    """Version 2 replaces 30 rows' readings under their ids; version 1 of the model ran on the
    old rows, version 2 (the candidate) on the new ones. A review found such rows counted as
    broken by the candidate: they are other items, and the earlier answer stays out."""
    rng = np.random.default_rng(9)
    labels = rng.choice(["bad", "good"], 200).astype(object)
    right = rng.uniform(size=(200, 2)) < 0.9
    right[:30] = [True, False]
    columns: dict[str, Any] = {"id": [f"i{k}" for k in range(200)], "label": labels,
                               "torque": rng.normal(size=200)}  # fmt: skip
    for v in range(2):
        columns[f"bad{v}"], columns[f"good{v}"] = _scores(right[:, v], labels)
    pq.write_table(pa.table(columns), tmp_path / "v1.parquet")
    columns["torque"][:30] += 5.0  # other scans under the same ids
    pq.write_table(pa.table(columns), tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet", id_column="id")
    register_dataset(ws, "t", tmp_path / "v2.parquet", id_column="id")
    onnx = passthrough_onnx(tmp_path / "p.onnx", 2)
    for v in range(2):
        spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                "input": {"kind": "tabular", "columns": [f"bad{v}", f"good{v}"]}}  # fmt: skip
        register_model(ws, "m", onnx, spec)
    validate(ws, "m@1", "t@1", config=CONFIG)
    validate(ws, "m@2", "t@2", config=CONFIG)
    h = item_history(ws, "t")
    expected = right[:, 0] & ~right[:, 1]
    expected[:30] = False
    assert h.masks()["broken"].tolist() == expected.tolist()
    first = h.summary()["versions"][0]
    assert first["n_other_content"] == 30 and first["n_judged"] == 170
    ws.close()


def test_an_item_the_candidate_cannot_judge_is_broken(store: dict[str, Any]) -> None:
    """Item 50: version 3's input is NaN there. Where every earlier version got it right, the
    candidate that gives the line no answer broke it (it counted as nothing before)."""
    h = item_history(store["ws"], "cable")
    at = h.item_ids.to_pylist().index("i50")
    assert h.outcomes[at, 2] == ih.NOT_JUDGED
    assert h.masks()["broken"][at]


def test_corrections_in_a_version_with_its_columns_reordered_or_one_added_still_count(
    tmp_path: Path,
) -> None:
    """Review: a version that corrected labels and came with its columns in another order (or
    with a column added) matched no earlier row by its stored digests (they follow the table's
    columns), so the earlier run was judged against its own, uncorrected labels and the
    history's accuracy moved with the export's column order. The items are compared by their
    values in the columns both versions have."""
    rng = np.random.default_rng(11)
    labels = rng.choice(["bad", "good"], 300).astype(object)
    p = rng.uniform(size=300)
    line = rng.choice(["L1", "L2"], 300).astype(object)
    v1 = pa.table({"s_bad": p, "s_good": 1 - p, "line": line, "label": labels})
    pq.write_table(v1, tmp_path / "v1.parquet")
    fixed = labels.copy()
    fixed[:30] = np.where(labels[:30] == "bad", "good", "bad")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet")
    _scores_model(ws, tmp_path)
    validate(ws, "m@1", "t@1", config=CONFIG)
    expected = int((np.where(p >= 0.5, "bad", "good") == fixed).sum())
    v2 = v1.set_column(3, "label", pa.array(fixed))
    variants = {
        "same": v2,
        "reordered": v2.select(["label", "line", "s_good", "s_bad"]),
        "added": v2.append_column("shift", pa.array(["night"] * 300)),
    }
    for name, table in variants.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        register_dataset(ws, "t", tmp_path / f"{name}.parquet")
        version = item_history(ws, "t").summary()["versions"][0]  # the newest version's labels
        assert (name, version["n_right"], version["n_other_content"]) == (name, expected, 0)


def test_one_old_version_with_other_columns_does_not_blind_the_others(tmp_path: Path) -> None:
    """Review of fixes: contents compared across every version at once took the columns all of
    them share, so one old version with other columns made replaced rows 'the same item' in
    every other version (15 of them broken by the candidate) and ignored a version's
    corrections. Each version is compared with the reference on the columns those two share;
    none shared is other content."""
    rng = np.random.default_rng(12)
    n = 300
    labels = rng.choice(["bad", "good"], n).astype(object)
    p = rng.uniform(size=n)
    pq.write_table(pa.table({"c1": p, "c2": 1 - p, "label": labels}), tmp_path / "v1.parquet")
    pq.write_table(pa.table({"a": p, "b": 1 - p, "label": labels}), tmp_path / "v2.parquet")
    replaced = np.zeros(n, bool)
    replaced[:40] = True
    q = np.where(replaced, 1 - p, p)  # 40 rows' readings replaced: other items, other answers
    pq.write_table(pa.table({"a": q, "b": 1 - q, "label": labels}), tmp_path / "v3.parquet")
    fixed = labels.copy()
    fixed[100:160] = np.where(labels[100:160] == "bad", "good", "bad")
    pq.write_table(pa.table({"a": q, "b": 1 - q, "label": fixed}), tmp_path / "v4.parquet")
    ws = Workspace.open(tmp_path / "home")
    for k in (1, 2, 3):
        register_dataset(ws, "d", tmp_path / f"v{k}.parquet")
    onnx = passthrough_onnx(tmp_path / "p.onnx", 2)
    register_model(ws, "mc", onnx, {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                                    "input": {"kind": "tabular", "columns": ["c1", "c2"]}})  # fmt: skip
    for missing in ("error", "allow"):  # two versions, the same answers to the same readings
        register_model(ws, "mab", onnx, {"labels": ["bad", "good"],
                                         "output": {"name": "probabilities"},
                                         "input": {"kind": "tabular", "columns": ["a", "b"],
                                                   "missing": missing}})  # fmt: skip
    validate(ws, "mc@1", "d@1", config=CONFIG)
    validate(ws, "mab@1", "d@2", config=CONFIG)
    validate(ws, "mab@2", "d@3", config=CONFIG)
    register_dataset(ws, "d", tmp_path / "v4.parquet")
    s = item_history(ws, "d").summary()
    by = {v["model"]: v for v in s["versions"]}
    assert by["mc@1"]["n_other_content"] == n and by["mc@1"]["n_judged"] == 0
    assert by["mab@1"]["n_other_content"] == 40
    answer = np.where(q >= 0.5, "bad", "good")
    assert by["mab@2"]["n_right"] == int((answer == fixed).sum())  # the corrections count
    assert by["mab@1"]["n_right"] == int(((answer == fixed) & ~replaced).sum())
    assert s["broken"]["n"] == 0  # the same answers on the same items: nothing broken


def test_a_shared_column_no_model_read_does_not_make_two_versions_one(tmp_path: Path) -> None:
    """Review of fixes: two versions sharing only a constant `line` column were compared on it,
    so every row was 'the same item' and a version that read other readings (x, y) counted 19
    replaced rows as broken by the candidate. The columns shared must hold what the model
    read."""
    rng = np.random.default_rng(5)
    n = 200
    ids = [f"i{k}" for k in range(n)]
    labels = rng.choice(["bad", "good"], n).astype(object)
    p = rng.uniform(size=n)
    replaced = np.arange(n) < 30
    q = np.where(replaced, 1 - p, p)
    line = ["L1"] * n
    tables = {
        "v1": {"item_id": ids, "a": p, "b": 1 - p, "line": line, "label": labels},
        "v2": {"item_id": ids, "a": q, "b": 1 - q, "c": rng.uniform(size=n), "label": labels},
        "v3": {"item_id": ids, "x": q, "y": 1 - q, "line": line, "label": labels},
    }
    ws = Workspace.open(tmp_path / "home")
    for name, table in tables.items():
        pq.write_table(pa.table(table), tmp_path / f"{name}.parquet")
        register_dataset(ws, "d", tmp_path / f"{name}.parquet", id_column="item_id")
    onnx = passthrough_onnx(tmp_path / "p.onnx", 2)

    def spec(columns: list[str], missing: str = "error") -> dict[str, Any]:
        return {"labels": ["bad", "good"], "output": {"name": "probabilities"},
                "input": {"kind": "tabular", "columns": columns, "missing": missing}}  # fmt: skip

    register_model(ws, "mab", onnx, spec(["a", "b"]))
    register_model(ws, "mxy", onnx, spec(["x", "y"]))
    register_model(ws, "mab", onnx, spec(["a", "b"], "allow"))
    validate(ws, "mab@1", "d@2", config=CONFIG)
    validate(ws, "mxy@1", "d@3", config=CONFIG)
    validate(ws, "mab@2", "d@1", config=CONFIG)  # the candidate, on the first version
    s = item_history(ws, "d").summary()
    by = {v["model"]: v for v in s["versions"]}
    assert by["mxy@1"]["n_other_content"] == n and by["mab@1"]["n_other_content"] == 30
    assert s["broken"]["n"] == 0
