"""One spelling of a class whatever file it came from: a Parquet bool column, a CSV's True, a
YAML ``false``; a float column's 1.0 and a CSV's 1.0 and a spec's 1. And ``label_<name>``
columns are experts only when they name the label column's classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.arrow import label_text
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


@pytest.mark.parametrize(
    ("labels", "spec_labels", "fmt"),
    [
        (pa.array([k % 2 == 1 for k in range(N)]), "[false, true]", "parquet"),
        (pa.array([k % 2 == 1 for k in range(N)]), "[False, True]", "csv"),
        (pa.array([float(k % 2) * 2 - 1 for k in range(N)]), "[-1, 1]", "csv"),
        (pa.array([float(k % 2) * 2 - 1 for k in range(N)]), "[-1.0, 1.0]", "parquet"),
    ],
)
def test_a_model_matches_its_classes_however_the_file_spells_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], labels: pa.Array, spec_labels: str,
    fmt: str,
) -> None:  # fmt: skip
    """A review: a Parquet bool label matched no spec ('false' against 'False'), and a float
    label read -1/1 from Parquet but -1.0/1.0 from CSV, refused by a [-1, 1] model."""
    home, _ = _store(tmp_path, labels, spec_labels, fmt)
    code = main(["validate", "--model", "p", "--dataset", "t", "--no-profile", "--no-explore",
                 "--home", home])  # fmt: skip
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert f"{N} items, {N} judged" in out


def test_the_spellings_agree() -> None:
    given = ["True", "FALSE", "1.0", "-1.0", "+2.00", "1.5", "007", "defect", None]
    assert label_text(pa.array(given)).to_pylist() == [
        "true", "false", "1", "-1", "2", "1.5", "007", "defect", None
    ]  # fmt: skip
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
