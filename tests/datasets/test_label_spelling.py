"""Classes spelt otherwise in the data and the spec (a Parquet bool column, YAML's ``false``; a
float column, a CSV's ``1.0``) are named with the spelling to use; ``label_<name>`` columns are
experts only when they name the label column's classes (in any spelling); a table whose ``path``
column names no image is a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.spec import canonical_label
from tests.models import passthrough_onnx

N = 60


def _store(tmp_path: Path, labels: pa.Array, spec_labels: str, fmt: str) -> tuple[str, Path]:
    """Dataset t (scores s0, s1 right for every item) and model p reading them."""
    truth = np.asarray([str(v).lower() in ("true", "1", "1.0") for v in labels.to_pylist()])
    table = pa.table({"s0": np.where(truth, 0.1, 0.9), "s1": np.where(truth, 0.9, 0.1),
                      "label": labels})  # fmt: skip
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        rows = zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)
        path.write_text("s0,s1,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    spec = tmp_path / "p.yaml"
    spec.write_text(
        f"labels: {spec_labels}\noutput: {{name: probabilities}}\n"
        "input: {kind: tabular, columns: [s0, s1]}\n"
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "t", str(path), "--home", home]) == 0
    assert main(["model", "add", "p", str(passthrough_onnx(tmp_path / "p.onnx", 2)), "--spec",
                 str(spec), "--home", home]) == 0  # fmt: skip
    return home, path


def registered(tmp_path: Path, path: Path) -> tuple[Any, pa.Table]:
    """Dataset t registered from ``path`` in a store under ``tmp_path``, and its manifest."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    ws = Workspace.open(tmp_path / "home")
    try:
        d = register_dataset(ws, "t", path).dataset
        return d, pq.read_table(d.manifest_path)
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("labels", "spec_labels", "fmt", "hint"),
    [
        (pa.array([k % 2 == 1 for k in range(N)]), "[false, true]", "parquet", "'false', 'true'"),
        (pa.array([k % 2 == 1 for k in range(N)]), "[False, True]", "csv", None),
        (pa.array([float(k % 2) * 2 - 1 for k in range(N)]), "[-1, 1]", "csv", "'-1.0', '1.0'"),
        (pa.array([float(k % 2) * 2 - 1 for k in range(N)]), "[-1.0, 1.0]", "parquet", "'-1', '1'"),
        # Case and spaces (a review: refused with no hint).
        (pa.array(["OK ", " NG"] * (N // 2)), "[ok, ng]", "parquet", "'OK ', ' NG'"),
    ],
)
def test_classes_spelt_otherwise_are_named_with_the_spelling_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], labels: pa.Array, spec_labels: str,
    fmt: str, hint: str | None,
) -> None:  # fmt: skip
    """A review: a Parquet bool label and YAML's unquoted false never matched ('false' against
    'False'), nor a CSV's -1.0 and a spec's -1, with no word of why. Labels are matched as
    written (stored datasets and runs keep theirs); the refusal now gives the spec's labels as
    the dataset writes them, and with those the run judges every item."""
    home, _ = _store(tmp_path, labels, spec_labels, fmt)
    args = ["validate", "--dataset", "t", "--no-profile", "--no-explore", "--home", home]
    capsys.readouterr()
    code = main([*args, "--model", "p"])
    out, err = capsys.readouterr()
    if hint is None:
        assert code in (0, 1) and f"{N} items, {N} judged" in out, err
        return
    assert code == 2 and f"give the spec labels: [{hint}], quoted" in err
    spec = tmp_path / "q.yaml"
    spec.write_text(
        f"labels: [{hint}]\noutput: {{name: probabilities}}\n"
        "input: {kind: tabular, columns: [s0, s1]}\n"
    )
    assert main(["model", "add", "q", str(tmp_path / "p.onnx"), "--spec", str(spec), "--home",
                 home]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([*args, "--model", "q"]) in (0, 1)
    assert f"{N} items, {N} judged" in capsys.readouterr().out


def test_the_spellings_agree() -> None:
    assert [canonical_label(v) for v in [True, False, 1.0, -1, "1.0", "True", "x"]] == [
        "true", "false", "1", "-1", "1", "true", "x"
    ]  # fmt: skip


def test_label_columns_that_name_no_class_are_not_experts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SECOM's label (fail/pass) beside label_int (0/1): read as an expert who never agreed,
    with a meaningless kappa. Refused, naming the column."""
    table = pa.table({"x": np.arange(N, dtype=float), "label": ["fail", "pass"] * (N // 2),
                      "label_int": [0, 1] * (N // 2)})  # fmt: skip
    pq.write_table(table, tmp_path / "secom.parquet")
    code = main(["dataset", "add", "s", str(tmp_path / "secom.parquet"), "--home",
                 str(tmp_path / "home")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "label_int" in err and "rename it" in err
    assert len(err.strip().splitlines()) == 1


def test_a_table_with_a_path_column_of_no_image_files_stays_a_table(tmp_path: Path) -> None:
    """A review's sensor table had a ``path`` column (the route a part took): read as an image
    manifest, 500 items 'file not found'. It is a table unless that column names images."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    pq.write_table(pa.table({"path": ["a-b", "b-c"] * 10, "torque": np.arange(20.0),
                             "label": ["ok", "bad"] * 10}), tmp_path / "t.parquet")  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    d = register_dataset(ws, "t", tmp_path / "t.parquet").dataset
    assert (d.kind, d.format) == ("tabular", "table")
    ws.close()


def test_an_expert_column_read_as_numbers_names_the_same_classes(tmp_path: Path) -> None:
    """label (0/1 as integers) beside label_ann written 0.0/1.0 (a float column): one class
    each, in another spelling; the expert is kept."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    pq.write_table(pa.table({"x": np.arange(20.0), "label": [0, 1] * 10,
                             "label_ann": [0.0, 1.0] * 10, "label_bob": [0, 1] * 10}),
                   tmp_path / "t.parquet")  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    d = register_dataset(ws, "t", tmp_path / "t.parquet").dataset
    assert d.options["annotators"] == ["ann", "bob"]
    ws.close()


def test_an_expert_writing_the_classes_otherwise_is_refused_not_read_as_disagreeing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels 0.0/1.0 as text beside an expert's integers 0/1: accepted, then compared as
    written, every item disputed and the experts' kappa 0 (a review). Refused, saying why."""
    pq.write_table(pa.table({"x": np.arange(20.0), "label": ["0.0", "1.0"] * 10,
                             "label_ann": [0, 1] * 10}), tmp_path / "t.parquet")  # fmt: skip
    code = main(["dataset", "add", "t", str(tmp_path / "t.parquet"), "--home",
                 str(tmp_path / "home")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "label_ann writes the label column's classes otherwise" in err


def test_a_csvs_label_text_is_kept_as_written(tmp_path: Path) -> None:
    """Labels read as text keep it: `1.0` was read as `1` for a while, and recorded predictions
    and corrections written `1.0` (the same tool's spelling) no longer matched the dataset (a
    review). A float column still reads 1.0 as `1`; a spec in another spelling is told which."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    (tmp_path / "t.csv").write_text("x,label\n0.5,1.0\n0.6,0.0\n0.7,1.0\n")
    ws = Workspace.open(tmp_path / "home")
    try:
        d = register_dataset(ws, "t", tmp_path / "t.csv").dataset
    finally:
        ws.close()
    assert d.label_counts == {"0.0": 1, "1.0": 2}


def test_a_class_named_na_in_a_csv_is_a_class_not_a_missing_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: classes NA (no anomaly), crack and scratch in a CSV. The reader took NA for a
    missing value: 522 of 900 items became 'no expert label', left out of the accuracy, and a
    0.45 model passed at 0.89 (the same data from Parquet failed). Only an empty field is a
    missing label; NA and N/A are names, and where the model has no such class the refusal says
    how to leave a label out. A number column still reads NA as missing."""

    (tmp_path / "t.csv").write_text(
        "x,y,note,label\n0.5,1,NA,NA\nNA,1,ok,crack\n0.7,1,,N/A\n0.8,1,x,\n0.9,1,y,NaN\n"
    )
    d, manifest = registered(tmp_path, tmp_path / "t.csv")
    assert d.label_counts == {"NA": 1, "crack": 1, "N/A": 1, "NaN": 1}
    assert manifest.column("x").null_count == 1  # a number's NA is missing
    assert manifest.column("note").to_pylist() == [None, "ok", None, "x", "y"]  # text features too
    spec = tmp_path / "p.yaml"
    spec.write_text("labels: [crack, scratch]\ninput: {kind: tabular, columns: [x, y]}\n")
    home = str(tmp_path / "home")
    assert main(["model", "add", "p", str(passthrough_onnx(tmp_path / "p.onnx", 2)), "--spec",
                 str(spec), "--home", home]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["validate", "--model", "p", "--dataset", "t", "--home", home])
    err = capsys.readouterr().err
    assert code == 2 and "'N/A', 'NA', 'NaN' in a label column is a class name" in err, err


@pytest.mark.parametrize("with_label", [False, True])
def test_experts_writing_one_class_two_ways_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], with_label: bool
) -> None:
    """A review: label_bob wrote Good/Defect where alice and carol wrote good/defect, with no
    label column: accepted, bob agreed with no one, 29 items disputed and left out, the experts'
    kappa 0.29 (and with two experts, every item disputed). Refused, naming both spellings."""
    n = 30
    columns = {"x": np.arange(float(n)), "label_alice": ["good", "defect"] * (n // 2),
               "label_bob": ["Good", "defect"] * (n // 2),
               "label_carol": ["good", "defect"] * (n // 2)}  # fmt: skip
    if with_label:
        columns["label"] = ["good", "defect"] * (n // 2)
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    code = main(["dataset", "add", "t", str(tmp_path / "t.parquet"), "--home",
                 str(tmp_path / "home")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "'good' in label_alice and 'Good' in label_bob" in err, err


def test_na_written_by_the_experts_of_a_csv_is_a_class_too(tmp_path: Path) -> None:
    """A review of the fix above: the experts' label_<name> columns still read NA as missing,
    so with no label column the consensus of 100 NA items was missing, they were left out, and
    a model answering 'defect' for everything passed at accuracy 1.0."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    rows = "".join(f"i{k},{v},{v},{v}\n" for k, v in enumerate(["NA", "defect"] * 10))
    (tmp_path / "t.csv").write_text("id,label_alice,label_bob,label_carol\n" + rows)
    ws = Workspace.open(tmp_path / "home")
    try:
        d = register_dataset(ws, "t", tmp_path / "t.csv", id_column="id").dataset
    finally:
        ws.close()
    assert d.label_counts == {"NA": 10, "defect": 10}


@pytest.mark.parametrize("values", [["0.0", "1.0"], ["1.0", "1.5", "2.0"]])
def test_a_csvs_experts_written_as_the_label_column_writes_them_are_kept(
    tmp_path: Path, values: list[str]
) -> None:
    """A review of a rewrite of experts' 1.0 into 1, taken back: the label column written 1.0
    too (pandas, a missing value in each), or grades 1.0, 1.5, 2.0, were refused. Both columns
    keep their text as written, so they agree."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    rows = "".join(f"{k},{v},{'' if k == 3 else v}\n" for k, v in enumerate(values * 6))
    (tmp_path / "t.csv").write_text("x,label,label_ann\n" + rows)
    ws = Workspace.open(tmp_path / "home")
    try:
        d = register_dataset(ws, "t", tmp_path / "t.csv").dataset
    finally:
        ws.close()
    assert sorted(d.label_counts) == values


@pytest.mark.parametrize(
    ("label", "experts", "kept"),
    [
        # pandas writes an expert column with one empty field as floats beside integer labels.
        (["0", "1"], {"ann": ["0.0", "1.0"]}, {"ann": ["0", "1"]}),
        (["0.0", "1.0"], {"ann": ["0", "1"]}, {"ann": ["0.0", "1.0"]}),
        (["false", "true"], {"ann": ["False", "True"]}, {"ann": ["false", "true"]}),
        # Grades: the whole ones are the label column's, 1.5 stays a grade of its own.
        (["1", "2"], {"ann": ["1.0", "1.5"]}, {"ann": ["1", "1.5"]}),
        # No label column: the first expert's spelling is kept.
        (None, {"alice": ["0", "1"], "bob": ["0.0", "1.0"]}, {"bob": ["0", "1"]}),
    ],
)
def test_an_experts_number_spelling_is_read_as_the_label_columns(
    tmp_path: Path, label: list[str] | None, experts: dict[str, list[str]],
    kept: dict[str, list[str]],
) -> None:  # fmt: skip
    """Since experts' CSV columns keep their text, an expert column written 1.0 (pandas, a
    missing value in it) beside a label column's 1 was refused; before that, it was compared as
    written and every item disputed. One value in two spellings is one class: the expert's is
    respelt as the class was first written (the label column's first), and a note says so."""

    n = 12
    names = ([] if label is None else ["label"]) + [f"label_{e}" for e in experts]
    columns = ([] if label is None else [label]) + list(experts.values())
    rows = "".join(
        f"{k},"
        + ",".join("" if (k == 5 and c is not columns[0]) else c[k % 2] for c in columns)
        + "\n"
        for k in range(n)
    )
    (tmp_path / "t.csv").write_text("x," + ",".join(names) + "\n" + rows)
    d, manifest = registered(tmp_path, tmp_path / "t.csv")
    for expert, values in kept.items():
        stored = manifest.column(f"label_{expert}").to_pylist()
        assert stored == [None if k == 5 else values[k % 2] for k in range(n)], stored
    assert any("read as" in note for note in d.notes), d.notes
    assert any(" 0 item(s) without a majority label" in note for note in d.notes), d.notes


def test_an_experts_spelling_is_read_as_the_label_columns_whatever_the_row_order(
    tmp_path: Path,
) -> None:
    """A review of the respelling: an expert's 1.0 in a batch before the label column's first 1
    (a rare class, a wide table's small batches) was refused, by row order alone; an expert
    column of numbers beside another's text, and a categorical column, were not respelt."""
    from assay.services.datasets import register_dataset
    from assay.services.workspace import Workspace

    n = 40
    late = ["0"] * 20 + ["1", "0"] * 10  # the label column's first 1 is in the second row group
    table = pa.table({"x": np.arange(float(n)), "label": late,
                      "label_ann": ["1.0" if k in (3, 20) else "0.0" for k in range(n)]})  # fmt: skip
    pq.write_table(table, tmp_path / "late.parquet", row_group_size=20)
    mixed = pa.table({"x": np.arange(float(n)), "label_a": pa.array([k % 2 for k in range(n)]),
                      "label_b": [f"{k % 2}.0" for k in range(n)],
                      "label_c": pa.array([f"{k % 2}.0" for k in range(n)]).dictionary_encode()})  # fmt: skip
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    ws = Workspace.open(tmp_path / "home")
    try:
        d = register_dataset(ws, "late", tmp_path / "late.parquet").dataset
        stored = pq.read_table(d.manifest_path).column("label_ann").to_pylist()
        assert stored == ["1" if k in (3, 20) else "0" for k in range(n)]
        m = register_dataset(ws, "mixed", tmp_path / "mixed.parquet").dataset
        manifest = pq.read_table(m.manifest_path)
        assert manifest.column("label_b").to_pylist() == [str(k % 2) for k in range(n)]
        assert manifest.column("label_c").to_pylist() == [str(k % 2) for k in range(n)]
        assert any(" 0 item(s) without a majority label" in note for note in m.notes), m.notes
    finally:
        ws.close()
