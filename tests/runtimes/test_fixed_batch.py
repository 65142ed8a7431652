"""Models exported with a fixed batch size (often 1) are fed in pieces of that size: the same
results as the same model with a free batch dimension."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from assay.cli.main import main
from assay.demo.vision_models import grid_detector_onnx
from tests.models import write_spec
from tests.vision_data import plates, reference_image, write_coco


def fixed(model: Path, batch: int, out: Path) -> Path:
    m = onnx.load(str(model))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    out.write_bytes(m.SerializeToString())
    return out


@pytest.mark.parametrize("batch", [1, 3])
def test_a_fixed_batch_detector_equals_the_free_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], batch: int
) -> None:
    """Found by a hostile review: a batch-1 export was refused at model add (the check runs
    two items at once), so such a model could never be validated."""
    free = grid_detector_onnx(tmp_path / "free.onnx", reference_image(), cell=16)
    one = fixed(free, batch, tmp_path / "fixed.onnx")
    spec = write_spec(
        tmp_path / "d.yaml",
        task="detection",
        labels=["spot"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"boxes": "boxes", "scores": "scores", "classes": "classes"},
    )
    home = str(tmp_path / "home")
    assert (
        main(
            [
                "dataset",
                "add",
                "plates",
                str(write_coco(tmp_path / "d", plates(11, seed=70))),
                "--home",
                home,
            ]
        )
        == 0
    )
    results = []
    for name, path in (("free", free), ("fixed", one)):
        assert main(["model", "add", name, str(path), "--spec", str(spec), "--home", home]) == 0
        out = tmp_path / name
        args = [
            "validate",
            "--model",
            name,
            "--dataset",
            "plates",
            "--out",
            str(out),
            "--no-profile",
            "--batch-size",
            "4",
        ]
        assert main([*args, "--home", home]) in (0, 1)
        results.append(json.loads((out / "result.json").read_text()))
    capsys.readouterr()
    assert results[0]["n_failed"] == results[1]["n_failed"] == 0
    assert results[0]["metrics"] == results[1]["metrics"]
