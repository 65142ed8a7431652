"""The report on real data (SECOM, NEU-DET) in headless Chromium: slices, doubtful labels,
threshold analysis; screenshots saved as test artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import main
from tests.models import tabular_onnx, write_spec
from tests.real_datasets import neu_det, neu_onnx_model, secom
from tests.reports.test_report_browser import launch_chromium

pytestmark = [pytest.mark.real_data, pytest.mark.browser]


def open_report(report: Path, shot: Path) -> dict[str, str]:
    from playwright.sync_api import sync_playwright

    texts: dict[str, str] = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        page.wait_for_selector("#fig-confusion .main-svg")
        assert errors == []
        for section in (
            "error-slices",
            "doubtful-labels",
            "operating-point",
            "slices",
            "expert-agreement",
            "error-groups",
        ):
            loc = page.locator(f"#{section}")
            texts[section] = loc.inner_text() if loc.count() else ""
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    return texts


def test_secom_report_shows_slices_doubtful_labels_and_threshold_analysis(
    tmp_path: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root, x, y = secom()
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"),
    )
    model.fit(x[::2].astype(np.float32), y[::2])
    onnx = tabular_onnx(model, x.shape[1], tmp_path / "secom.onnx")
    spec = write_spec(
        tmp_path / "secom.yaml",
        labels=["fail", "pass"],
        positive="fail",
        input={
            "kind": "tabular",
            "columns": [f"f{j:03d}" for j in range(x.shape[1])],
            "missing": "allow",
        },
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "checks:\n  - roc_auc >= 0.5\ncosts: {false_alarm: 1, missed_defect: 10}\noperating_constraint: recall >= 0.8\n"
    )
    home = str(tmp_path / "home")
    main(["dataset", "add", "secom", str(root), "--home", home])
    main(["model", "add", "secom", str(onnx), "--spec", str(spec), "--home", home])
    out = tmp_path / "run"
    main(
        [
            "validate",
            "--model",
            "secom",
            "--dataset",
            "secom",
            "--policy",
            str(policy),
            "--slice",
            "timestamp",
            "--out",
            str(out),
            "--home",
            home,
        ]
    )
    capsys.readouterr()
    texts = open_report(out / "report.html", artifacts / "secom-report.png")
    assert (
        "Operating point: fail" in texts["operating-point"]
        and "cost-optimal" in texts["operating-point"]
    )
    assert "recall >= 0.8" in texts["operating-point"]
    assert "candidates for expert review" in texts["doubtful-labels"]
    assert "timestamp in [" in texts["slices"]
    assert "Where errors cluster" in texts["error-slices"]


def test_neu_det_report_shows_slices_and_doubtful_labels(
    tmp_path: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _, _ = neu_det()
    onnx, spec, labels = neu_onnx_model(tmp_path)
    home = str(tmp_path / "home")
    main(["dataset", "add", "neu", str(root), "--home", home])
    main(["model", "add", "neu", str(onnx), "--spec", str(spec), "--home", home])
    out = tmp_path / "run"
    policy = tmp_path / "neu-policy.yaml"
    policy.write_text(
        "checks:\n  - accuracy >= 0.3\ncosts: {false_alarm: 1, missed_defect: 5}\n"
        "operating_constraint: recall[scratches] >= 0.9\n"
    )
    main(
        [
            "validate",
            "--model",
            "neu",
            "--dataset",
            "neu",
            "--policy",
            str(policy),
            "--slice",
            "n_boxes",
            "--out",
            str(out),
            "--home",
            home,
        ]
    )
    capsys.readouterr()
    texts = open_report(out / "report.html", artifacts / "neu-det-report.png")
    assert "candidates for expert review" in texts["doubtful-labels"]
    assert "n_boxes = 1" in texts["slices"]
    # Misclassified images grouped by look (no embedding output: image descriptors), all of them.
    result = json.loads((out / "result.json").read_text())
    groups = result["error_groups"]
    n_errors = result["n_judged"] - sum(result["confusion_matrix"][i][i] for i in range(6))
    assert groups["n_errors"] == n_errors == sum(g["n_items"] for g in groups["groups"])
    assert "Misclassified items that look alike" in texts["error-groups"]
    assert "image descriptors" in texts["error-groups"]
    # Six classes and no good one: thresholds one-vs-rest, the constraint on the class it names.
    assert "Thresholds per class" in texts["operating-point"]
    per_class = json.loads((out / "result.json").read_text())["operating_point"]["one_vs_rest"]
    assert set(per_class) == set(labels)
    assert per_class["scratches"]["meeting_constraint"]["recall"] >= 0.9
    assert all("meeting_constraint" not in c for k, c in per_class.items() if k != "scratches")
    assert all(c["cost_optimal"]["threshold"] is not None for c in per_class.values())
    assert "Where errors cluster" in texts["error-slices"]


def test_neu_det_with_three_experts_from_a_long_table(
    tmp_path: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real images; two more experts (simulated, 8% and 15% of labels changed) join the folder's."""
    import pandas as pd

    root, images, _, y = neu_det()
    onnx, spec, labels = neu_onnx_model(tmp_path)
    rng = np.random.default_rng(7)
    rows = []
    for expert, flip in (("folder", 0.0), ("kim", 0.08), ("lee", 0.15)):
        given = np.where(rng.random(len(y)) < flip, rng.choice(labels, len(y)), y)
        ids = [p.relative_to(root).as_posix() for p in images]
        rows.append(pd.DataFrame({"item_id": ids, "annotator": expert, "label": given}))
    table = pd.concat(rows)
    annotations = tmp_path / "experts.csv"
    table.to_csv(annotations, index=False)
    home = str(tmp_path / "home")
    add = ["dataset", "add", "neu3", str(root), "--annotations", str(annotations)]
    assert main([*add, "--home", home]) == 0
    main(["model", "add", "neu", str(onnx), "--spec", str(spec), "--home", home])
    out = tmp_path / "run"
    main(["validate", "--model", "neu", "--dataset", "neu3", "--out", str(out), "--home", home])
    capsys.readouterr()
    texts = open_report(out / "report.html", artifacts / "neu-det-experts-report.png")
    ea = json.loads((out / "result.json").read_text())["expert_agreement"]
    wide = table.pivot(index="item_id", columns="annotator", values="label")
    from sklearn.metrics import cohen_kappa_score

    pair = next(p for p in ea["expert_pairs"] if {p["a"], p["b"]} == {"kim", "lee"})
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(wide["kim"], wide["lee"]))
    assert pair["n_items"] == len(images)
    assert ea["experts"] == ["folder", "kim", "lee"] and "adjudicated" in ea["reference"]
    assert "Model vs each expert" in texts["expert-agreement"]
    comp = ea["comparison"]
    low, high = comp["difference_ci"]
    expected = "more than" if low > 0 else "less than" if high < 0 else "as well as"
    assert comp["statement"].startswith(f"the model agrees with the experts {expected}")
