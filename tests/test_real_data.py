"""End to end on the real datasets in ../shared/data, with models trained here, held to scikit-learn.

SECOM (tabular, 590 sensors, pass/fail, many missing values) and NEU-DET (1,800 steel-surface
images, six classes). Each test trains a small model on half of the data, registers dataset and
model through the CLI, validates, and compares every metric in result.json with scikit-learn on
the predictions Assay wrote (to 1e-9), and those predictions with the model run outside Assay.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from tests.models import image_spec, tabular_onnx, write_spec
from tests.real_datasets import neu_det, secom
from tests.reference import assert_matches_sklearn, sklearn_metrics

pytestmark = pytest.mark.real_data


def check_against_sklearn(out: Path, labels: list[str], positive: int | None) -> dict:
    result = json.loads((out / "result.json").read_text())
    preds = pq.read_table(out / "predictions.parquet").to_pandas()
    judged = preds[preds["error"].isna()]
    index = {label: i for i, label in enumerate(labels)}
    y = judged["label"].map(index).to_numpy()
    scores = judged[[f"score_{label}" for label in labels]].to_numpy()
    reference = sklearn_metrics(
        y, scores, judged["predicted"].map(index).to_numpy(), len(labels), positive
    )
    assert_matches_sklearn(result, reference, labels, tol=1e-9)
    return result


def test_secom_metrics_equal_scikit_learn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root, x, y = secom()
    train = np.arange(len(y)) % 2 == 0
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"),
    )
    model.fit(x[train].astype(np.float32), y[train])
    columns = [f"f{j:03d}" for j in range(x.shape[1])]
    onnx = tabular_onnx(model, x.shape[1], tmp_path / "secom.onnx")
    labels = [str(c) for c in model.classes_]  # ['fail', 'pass']
    spec = write_spec(
        tmp_path / "secom.yaml",
        labels=labels,
        positive="fail",
        input={"kind": "tabular", "columns": columns, "missing": "allow"},
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "secom", str(root), "--home", home]) == 0
    assert main(["model", "add", "secom-lr", str(onnx), "--spec", str(spec), "--home", home]) == 0
    out = tmp_path / "run"
    args = ["validate", "--model", "secom-lr", "--dataset", "secom", "--out", str(out)]
    code = main([*args, "--home", home])
    capsys.readouterr()
    result = check_against_sklearn(out, labels, positive=0)
    assert result["n_items"] == 1567 and result["n_failed"] == 0
    # Class-balanced, the model trades accuracy for catching failures: less accurate than always
    # answering "pass" (93.4%), yet its agreement with the experts is confidently above chance,
    # which is what the default verdict (no baseline) asks of a useful defect detector.
    coverage, kappa = result["verdict"]["checks"]
    assert (coverage["metric"], coverage["status"], coverage["value"]) == (
        "unjudged_share",
        "pass",
        0,
    )
    assert (kappa["metric"], kappa["status"]) == ("cohen_kappa", "pass")
    assert result["metrics"]["accuracy"]["value"] < 1463 / 1567 < 1
    assert kappa["ci_low"] > 0
    assert (code, result["verdict"]["status"]) == (0, "pass")
    assert result["label_counts"] == {"fail": 104, "pass": 1463}
    preds = pq.read_table(out / "predictions.parquet")
    np.testing.assert_allclose(
        preds.column("score_fail").to_numpy(),
        model.predict_proba(x.astype(np.float32))[:, 0],
        atol=1e-4,
    )


@pytest.mark.parametrize("n_columns", [20, 590])
def test_secom_rows_with_missing_sensors_are_not_judged_and_the_verdict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n_columns: int
) -> None:
    """The spec keeps ``missing: error``: rows with a missing sensor are not judged. 2.7% of rows
    unjudged (20 columns) is over the default limit; with every column no row is judged at all.
    Either way the verdict fails, never passes on what was left."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    root, x, y = secom()
    cols = [j for j in range(x.shape[1]) if np.isnan(x[:, j]).mean() < 0.01][:n_columns]
    if n_columns > 20:
        cols = list(range(x.shape[1]))
    complete = ~np.isnan(x[:, cols]).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its fit is beside the point here
        model = LogisticRegression(max_iter=200).fit(
            np.nan_to_num(x[:, cols]).astype(np.float32), y
        )
    onnx = tabular_onnx(model, len(cols), tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["fail", "pass"],
        input={"kind": "tabular", "columns": [f"f{j:03d}" for j in cols]},
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "secom", str(root), "--home", home]) == 0
    assert main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", home]) == 0
    run = ["validate", "--model", "m", "--dataset", "secom", "--out", str(tmp_path / "run")]
    assert main([*run, "--home", home, "--no-profile"]) == 1
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["n_failed"] == int((~complete).sum()) > 0
    assert result["n_items"] == sum(map(sum, result["confusion_matrix"])) + result["n_failed"]
    verdict = result["verdict"]
    coverage = verdict["checks"][0]
    assert (verdict["status"], verdict["blocking"]) == ("fail", True)
    assert (coverage["metric"], coverage["status"], coverage["blocks"]) == (
        "unjudged_share",
        "fail",
        True,
    )
    assert "missing value in feature column" in coverage["reason"]
    if not complete.any():
        assert coverage["reason"].startswith("no item was judged")
    assert "PASS" not in out and "verdict: FAIL" in out


def test_neu_det_metrics_equal_scikit_learn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from assay.demo.models import to_onnx_image_model

    size = (32, 32)
    root, images, x, labels_of = neu_det(size)
    train = np.arange(len(images)) % 3 == 0
    model = make_pipeline(PCA(30, random_state=0), LogisticRegression(max_iter=3000, C=0.5)).fit(
        x[train], labels_of[train]
    )
    labels = [str(c) for c in model.classes_]
    onnx = to_onnx_image_model(model, size, 1, tmp_path / "neu.onnx")
    spec = write_spec(tmp_path / "neu.yaml", **image_spec(labels, size))
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "neu", str(root), "--home", home]) == 0
    assert main(["model", "add", "neu-pca", str(onnx), "--spec", str(spec), "--home", home]) == 0
    out = tmp_path / "run"
    assert (
        main(
            [
                "validate",
                "--model",
                "neu-pca",
                "--dataset",
                "neu",
                "--out",
                str(out),
                "--home",
                home,
            ]
        )
        == 0
    )
    capsys.readouterr()
    result = check_against_sklearn(out, labels, positive=None)
    assert result["n_items"] == 1800 and result["n_failed"] == 0
    assert result["label_counts"] == dict.fromkeys(labels, 300)
    preds = pq.read_table(out / "predictions.parquet").to_pandas().set_index("item_id")
    expected = model.predict_proba(x)
    got = preds.loc[[f"IMAGES/{p.name}" for p in images], [f"score_{c}" for c in labels]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    manifest = json.loads((out / "result.json").read_text())
    assert manifest["dataset_kind"] == "image"
    # The gallery holds misclassified items only, each with its expert label and prediction.
    wrong = preds[preds["label"] != preds["predicted"]]
    examples = manifest["error_examples"]
    assert 0 < len(examples) <= len(wrong)
    for example in examples:
        row = wrong.loc[example["item_id"]]
        assert (example["label"], example["predicted"]) == (row["label"], row["predicted"])
