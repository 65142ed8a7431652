"""End to end: errors planted on a known slice of a table are reported first in result.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import main
from tests.models import fit_logistic, tabular_onnx, write_spec


def test_planted_slice_is_the_first_error_slice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(11)
    n = 6000
    x = rng.normal(size=(n, 2))
    camera = rng.integers(1, 5, n)
    line = rng.choice(["L1", "L2", "L3"], n)
    speed = rng.uniform(1200, 2200, n).round()
    y = np.where(x[:, 0] - 0.5 * x[:, 1] > 0, "defect", "ok")
    # The experts' labels are right everywhere; on camera 3 of line L2 the scans are unusable,
    # which we mimic by feeding the model a corrupted feature there (the model errs ~50%).
    planted = (camera == 3) & (line == "L2")
    seen = x.copy()
    seen[planted, 0] = rng.normal(size=int(planted.sum()))
    csv = tmp_path / "parts.csv"
    csv.write_text(
        "a,b,camera,line,line_speed,label\n"
        + "".join(
            f"{p:.5f},{q:.5f},{c},{ln},{s:.0f},{v}\n"
            for (p, q), c, ln, s, v in zip(seen, camera, line, speed, y, strict=True)
        )
    )
    onnx = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "parts", str(csv), "--home", home]) == 0
    assert main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", home]) == 0
    main(
        [
            "validate",
            "--model",
            "m",
            "--dataset",
            "parts",
            "--out",
            str(tmp_path / "run"),
            "--home",
            home,
        ]
    )
    capsys.readouterr()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    slices = result["error_slices"]
    assert slices, "no error slice found"
    first = slices[0]
    assert {(p["column"], p["value"]) for p in first["predicates"]} == {
        ("camera", "3"),
        ("line", "L2"),
    }
    assert first["n_items"] == int(planted.sum())
    assert first["q_value"] < 1e-6 and first["error_rate"] > 3 * first["rest_error_rate"]
    for key in ("description", "n_items", "error_rate", "q_value"):
        assert key in first
    assert (
        "camera = 3 and line = L2" in first["description"]
        or "line = L2 and camera = 3" in first["description"]
    )
    # The input features were screened as candidate slicing columns too.
    assert result["error_slice_search"]["input_columns_screened"] == 2
