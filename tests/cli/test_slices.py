"""Slices the user names: values, predicates, crosses; metrics per slice equal a direct count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.cli.main import main
from tests.models import fit_logistic, tabular_onnx, write_spec


def test_named_predicate_and_crossed_slices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(4)
    n = 2000
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {
            "a": x[:, 0].round(5),
            "b": x[:, 1].round(5),
            "camera": rng.integers(1, 4, n),
            "line": rng.choice(["L1", "L2"], n),
            "line_speed": rng.uniform(1200, 2200, n).round(),
            "label": np.where(x[:, 0] + rng.normal(0, 0.8, n) > 0, "defect", "ok"),
        }
    )
    frame.loc[:4, "camera"] = 9  # a tiny slice, below min_slice_size
    csv = tmp_path / "parts.csv"
    frame.to_csv(csv, index=False)
    onnx = tabular_onnx(
        fit_logistic(x.astype(np.float32), frame["label"].to_numpy()), 2, tmp_path / "m.onnx"
    )
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = str(tmp_path / "home")
    main(["dataset", "add", "parts", str(csv), "--home", home])
    main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", home])
    out = tmp_path / "run"
    args = ["validate", "--model", "m", "--dataset", "parts", "--out", str(out), "--home", home]
    main([*args, "--slice", "camera", "--slice", "line_speed>=1800", "--slice", "camera*line"])
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    slices = {s["slice"]: s for s in result["slices"]}
    preds = pd.read_parquet(out / "predictions.parquet")
    right = (preds["correct"] == True).to_numpy()  # noqa: E712 - a nullable column
    fast = (frame["line_speed"] >= 1800).to_numpy()
    assert slices["line_speed >= 1800"]["n_items"] == int(fast.sum())
    assert slices["line_speed < 1800"]["n_items"] == int((~fast).sum())
    assert slices["line_speed >= 1800"]["metrics"]["accuracy"]["value"] == pytest.approx(
        right[fast].mean()
    )
    both = ((frame["camera"] == 2) & (frame["line"] == "L1")).to_numpy()
    assert slices["camera = 2 and line = L1"]["n_items"] == int(both.sum())
    assert slices["camera = 2 and line = L1"]["metrics"]["accuracy"]["value"] == pytest.approx(
        right[both].mean()
    )
    assert slices["camera = 9"]["too_few"] is True and slices["camera = 1"]["too_few"] is False
    code = main([*args, "--slice", "nope>=3"])
    assert code == 2 and "slice column 'nope' is not in the dataset" in capsys.readouterr().err
