"""COCO polygons and RLE drawn as pycocotools draws them, and segmentation judged on them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.datasets.coco_masks import counts_from_string, segmentation_mask

mask_api = pytest.importorskip("pycocotools.mask")


def decode(rles: object) -> np.ndarray:
    """pycocotools' decode (it warns about numpy 2's copy keyword, which is not ours to fix)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_api.decode(rles))


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    n_polygons=st.integers(1, 3),
    digits=st.integers(0, 2),
)
def test_polygons_equal_pycocotools(
    h: int, w: int, seed: int, n_polygons: int, digits: int
) -> None:
    rng = np.random.default_rng(seed)
    polygons = []
    for _ in range(n_polygons):
        n = int(rng.integers(3, 9))
        xy = np.c_[rng.uniform(-3, w + 3, n), rng.uniform(-3, h + 3, n)].round(digits)
        polygons.append([float(v) for v in xy.ravel()])
    reference = decode(mask_api.merge(mask_api.frPyObjects(polygons, h, w)))
    np.testing.assert_array_equal(segmentation_mask(polygons, h, w), reference.astype(bool))


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), seed=st.integers(0, 2**31), p=st.floats(0, 1))
def test_rle_strings_and_count_lists_equal_pycocotools(h: int, w: int, seed: int, p: float) -> None:
    m = np.random.default_rng(seed).random((h, w)) < p
    rle = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
    text = rle["counts"].decode()
    np.testing.assert_array_equal(segmentation_mask({"counts": text, "size": [h, w]}, h, w), m)
    counts = counts_from_string(text)
    np.testing.assert_array_equal(segmentation_mask({"counts": counts, "size": [h, w]}, h, w), m)


def test_broken_rle_is_refused() -> None:
    with pytest.raises(ValueError, match="not a count character"):
        counts_from_string("ab~")
    with pytest.raises(ValueError, match="RLE counts sum to 5"):
        segmentation_mask({"counts": [2, 3], "size": [3, 3]}, 3, 3)
    with pytest.raises(ValueError, match="RLE of size"):
        segmentation_mask({"counts": [9], "size": [3, 3]}, 4, 3)


def test_segmentation_on_a_coco_file_equals_scikit_learn_on_pycocotools_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.metrics import jaccard_score

    from assay.cli.main import main
    from assay.demo.vision_models import segmenter_onnx
    from tests.tasks.test_segmentation_validation import model_masks, segmenter_spec
    from tests.vision_data import plates, reference_image, write_coco

    items = plates(24, seed=30)
    path = write_coco(tmp_path / "data", items)
    data = json.loads(path.read_text())
    for a in data["annotations"]:  # the squares as polygons, one of them as an RLE
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    first = data["annotations"][0]
    square = decode(mask_api.frPyObjects(first["segmentation"], 64, 64))[:, :, 0]
    first["segmentation"] = {
        "counts": mask_api.encode(np.asfortranarray(square))["counts"].decode(),
        "size": [64, 64],
    }
    data["categories"] = [{"id": 1, "name": "spot"}]
    path.write_text(json.dumps(data))
    home = tmp_path / "home"
    assert main(["dataset", "add", "plates", str(path), "--home", str(home)]) == 0
    model = segmenter_onnx(tmp_path / "seg.onnx", reference_image())
    spec = segmenter_spec(tmp_path / "seg.yaml")
    assert main(["model", "add", "seg", str(model), "--spec", str(spec), "--home", str(home)]) == 0
    out = tmp_path / "out"
    args = ["validate", "--model", "seg", "--dataset", "plates", "--out", str(out), "--no-profile"]
    assert main([*args, "--home", str(home)]) in (0, 1)
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    assert result["n_failed"] == 0
    # The reference: pycocotools' masks of the same annotations, scikit-learn's IoU.
    by_image: dict[int, np.ndarray] = {
        im["id"]: np.zeros((64, 64), np.uint8) for im in data["images"]
    }
    for a in data["annotations"]:
        rle = a["segmentation"]
        rles = mask_api.frPyObjects(rle, 64, 64) if isinstance(rle, list) else [rle]
        drawn = decode(mask_api.merge(rles)).astype(bool)
        by_image[a["image_id"]][drawn] = 1
    expert = np.stack([by_image[im["id"]] for im in data["images"]])
    predicted = model_masks(tmp_path / "seg.onnx", items, (64, 64))
    iou = jaccard_score(expert.ravel(), predicted.ravel(), average=None, labels=[0, 1])
    assert result["metrics"]["per_class"]["spot"]["iou"]["value"] == pytest.approx(
        iou[1], abs=1e-12
    )
    assert result["metrics"]["per_class"]["background"]["iou"]["value"] == pytest.approx(
        iou[0], abs=1e-12
    )
