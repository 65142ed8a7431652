"""Detection through ``assay validate``: COCO numbers equal pycocotools on what the run wrote,
the item-level decision, and the hostile cases (NaN boxes, no boxes, uncovered classes)."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.tasks.detection.mean_ap import COCO_SUMMARY
from assay.demo.vision_models import grid_detector_onnx, segmenter_onnx
from tests.conftest import shared_dataset
from tests.models import write_spec
from tests.vision_data import plates, reference_image, write_coco

pytest.importorskip("pycocotools")


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def detector_spec(
    path: Path, labels: list[str], size: tuple[int, int] = (64, 64), **extra: Any
) -> Path:
    return write_spec(
        path,
        task="detection",
        labels=labels,
        input={"kind": "image", "size": list(size), "color": "grayscale"},
        output={"boxes": "boxes", "scores": "scores", "classes": "classes", "box_format": "xyxy"},
        **extra,
    )


def pycocotools_stats(
    images: list[dict[str, Any]], categories: list[str], gt: list[dict[str, Any]], predictions: Path
) -> np.ndarray:
    """pycocotools' 12 numbers from the run's predictions.parquet boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {im["file_name"]: im["id"] for im in images}
    cats = {name: k + 1 for k, name in enumerate(categories)}
    dets = [
        {
            "image_id": ids[row["item_id"]],
            "category_id": cats[b["name"]],
            "bbox": [b["x"], b["y"], b["width"], b["height"]],
            "score": b["score"],
        }
        for row in pq.read_table(predictions).to_pylist()
        for b in row["boxes"] or []
    ]
    dataset = {
        "images": images,
        "annotations": gt,
        "categories": [{"id": v, "name": k} for k, v in cats.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        e = COCOeval(coco, coco.loadRes(dets) if dets else COCO(), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    PRECISION.clear()
    PRECISION.append(np.asarray(e.eval["precision"]) if dets else None)
    return np.asarray(e.stats)


PRECISION: list[Any] = []  # pycocotools' precision table of the last call


def assert_equal_to_pycocotools(result: dict[str, Any], stats: np.ndarray) -> None:
    for name, ref in zip(COCO_SUMMARY, stats, strict=True):
        got = result["metrics"][name]["value"]
        if ref < 0:  # pycocotools' -1: nothing to evaluate at that size
            assert got is None, name
        else:
            assert got == pytest.approx(ref, abs=1e-12), name


@pytest.fixture
def plates_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    items = plates(80, seed=1)
    coco = write_coco(tmp_path / "data", items)
    model = grid_detector_onnx(tmp_path / "det.onnx", reference_image(), cell=16)
    spec = detector_spec(tmp_path / "det.yaml", ["spot"])
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(coco))[0] == 0
    assert assay(capsys, home, "model", "add", "det", str(model), "--spec", str(spec))[0] == 0
    code, printed, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "det",
        "--dataset",
        "plates",
        "--out",
        str(tmp_path / "out"),
        "--no-profile",
        "--resamples",
        "200",
    )
    assert code in (0, 1), err
    assert "map_50" in printed and "mar_100" in printed  # the summary shows the task numbers
    return {
        "out": tmp_path / "out",
        "coco": json.loads(coco.read_text()),
        "items": items,
        "home": home,
        "tmp": tmp_path,
    }


def test_detection_metrics_equal_pycocotools_on_the_boxes_the_run_wrote(
    plates_run: dict[str, Any],
) -> None:
    result = json.loads((plates_run["out"] / "result.json").read_text())
    coco = plates_run["coco"]
    stats = pycocotools_stats(
        coco["images"], ["spot"], coco["annotations"], plates_run["out"] / "predictions.parquet"
    )
    assert stats[0] > 0.05  # the grid detector finds some squares: a test that can fail
    assert_equal_to_pycocotools(result, stats)
    ap = result["metrics"]["per_class"]["spot"]["ap"]
    assert ap["value"] == pytest.approx(stats[0], abs=1e-12)  # one class: its AP is the mAP
    for name in ("map", "map_50", "map_75"):
        m = result["metrics"][name]
        assert m["ci_low"] <= m["value"] <= m["ci_high"], name
    assert result["task"]["name"] == "detection"
    assert "IoU >= 0.5" in result["task"]["item_rule"]
    # The per-class PR curve at IoU 0.5 is pycocotools' interpolated precision.
    curve = result["task"]["detection"]["pr_curves_iou_50"]["spot"]["precision"]
    np.testing.assert_allclose(curve, np.maximum(PRECISION[0][0, :, 0, 0, 2], 0), atol=1e-12)
    tide = result["task"]["tide"]
    assert set(tide["errors"]) == {
        "classification",
        "localisation",
        "both",
        "duplicate",
        "background",
        "missed",
    }
    assert tide["errors"]["localisation"]["count"] > 0  # the grid's cells are off the squares
    assert tide["ap50"] == pytest.approx(
        stats[1], abs=1e-9
    )  # one class, no crowd: TIDE's AP50 is COCO's


def test_item_level_decision_is_every_box_found_and_no_false_box(
    plates_run: dict[str, Any],
) -> None:
    from assay.core.tasks.detection.confusion import match_objects

    result = json.loads((plates_run["out"] / "result.json").read_text())
    assert result["labels"] == ["good", "defect"]
    rows = {
        r["item_id"]: r
        for r in pq.read_table(plates_run["out"] / "predictions.parquet").to_pylist()
    }
    right = 0
    for item in plates_run["items"]:
        row = rows[f"images/{item['name']}"]
        assert row["label"] == ("defect" if item["boxes"] else "good")
        boxes = row["boxes"] or []
        dt = np.array([[b["x"], b["y"], b["width"], b["height"]] for b in boxes]).reshape(-1, 4)
        scores = np.array([b["score"] for b in boxes])
        gt = np.array(item["boxes"], float).reshape(-1, 4)
        outcome = match_objects(
            gt, np.zeros(len(gt), np.int64), dt, scores, np.zeros(len(dt), np.int64)
        )
        assert row["correct"] == outcome.right, row["item_id"]
        right += outcome.right
        assert row["score_defect"] == pytest.approx(max(scores, default=0.0))
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(right / len(rows))
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == len(rows) and np.trace(matrix) == right
    confusion = result["task"]["object_confusion"]
    assert confusion["labels"] == ["spot", "background"]
    n_boxes = sum(len(i["boxes"]) for i in plates_run["items"])
    assert sum(confusion["matrix"][0]) == n_boxes  # every expert box is found or missed


def test_a_detector_that_outputs_nan_judges_nothing_and_cannot_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = write_coco(tmp_path / "data", plates(12, seed=2))
    model = grid_detector_onnx(tmp_path / "nan.onnx", reference_image(), cell=16, gain=float("nan"))
    home = tmp_path / "home"
    assay(capsys, home, "dataset", "add", "plates", str(coco))
    assert (
        assay(
            capsys,
            home,
            "model",
            "add",
            "nan",
            str(model),
            "--spec",
            str(detector_spec(tmp_path / "s.yaml", ["spot"])),
        )[0]
        == 0
    )
    code, _, _ = assay(
        capsys,
        home,
        "validate",
        "--model",
        "nan",
        "--dataset",
        "plates",
        "--out",
        str(tmp_path / "out"),
        "--no-profile",
    )
    assert code == 1
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["n_failed"] == 12
    assert (
        "model output is not finite (a box or score is NaN or infinite)"
        in result["failures"]["by_reason"]
    )
    assert result["verdict"]["status"] != "pass"
    assert result["metrics"]["map"]["value"] is None


def test_bad_detection_inputs_are_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    coco = write_coco(tmp_path / "data", plates(6, seed=3), category="spot")
    assay(capsys, home, "dataset", "add", "plates", str(coco))
    # A segmenter is no detector: its outputs are not the ones the spec names.
    seg = segmenter_onnx(tmp_path / "seg.onnx", reference_image())
    code, _, err = assay(
        capsys,
        home,
        "model",
        "add",
        "seg",
        str(seg),
        "--spec",
        str(detector_spec(tmp_path / "d.yaml", ["spot"])),
    )
    assert code == 2 and "spec output.boxes 'boxes' is not a model output" in err
    assert len(err.strip().splitlines()) == 1
    # Boxes of a class the model does not know.
    det = grid_detector_onnx(tmp_path / "det.onnx", reference_image(), cell=16)
    assay(
        capsys,
        home,
        "model",
        "add",
        "scratch-only",
        str(det),
        "--spec",
        str(detector_spec(tmp_path / "x.yaml", ["scratch"])),
    )
    code, _, err = assay(
        capsys, home, "validate", "--model", "scratch-only", "--dataset", "plates", "--no-profile"
    )
    assert code == 2 and "boxes of classes ['spot']" in err
    # A dataset without boxes at all.
    folder = tmp_path / "folders" / "good"
    folder.mkdir(parents=True)
    from PIL import Image

    for k in range(3):
        Image.fromarray(np.full((64, 64), 128, np.uint8)).save(folder / f"{k}.png")
    assay(capsys, home, "dataset", "add", "folders", str(tmp_path / "folders"))
    assay(
        capsys,
        home,
        "model",
        "add",
        "det",
        str(det),
        "--spec",
        str(detector_spec(tmp_path / "y.yaml", ["spot"])),
    )
    code, _, err = assay(
        capsys, home, "validate", "--model", "det", "--dataset", "folders", "--no-profile"
    )
    assert code == 2 and "has no expert boxes" in err


def test_neu_det_detection_equals_pycocotools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real boxes: NEU-DET's VOC annotations, judged through the CLI, equal pycocotools."""
    root = shared_dataset("neu-det")
    labels = sorted({p.stem.rsplit("_", 1)[0] for p in (root / "IMAGES").glob("*.jpg")})
    size = (200, 200)
    reference = np.full(size, 0.5, np.float32)
    model = grid_detector_onnx(tmp_path / "grid.onnx", reference, cell=40, gain=8.0, offset=0.1)
    spec = detector_spec(tmp_path / "grid.yaml", labels, size)
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "neu", str(root))[0] == 0
    assert assay(capsys, home, "model", "add", "grid", str(model), "--spec", str(spec))[0] == 0
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "grid",
        "--dataset",
        "neu",
        "--out",
        str(tmp_path / "out"),
        "--no-profile",
        "--no-explore",
        "--resamples",
        "100",
    )
    assert code in (0, 1), err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    images, gt = [], []
    for k, xml in enumerate(sorted((root / "ANNOTATIONS").glob("*.xml"))):
        image = next((root / "IMAGES").glob(xml.stem + ".*"), None)
        if image is None:
            continue
        images.append({"id": k + 1, "file_name": f"IMAGES/{image.name}"})
        for obj in ET.parse(xml).getroot().iter("object"):
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (float(b.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            gt.append(
                {
                    "id": len(gt) + 1,
                    "image_id": k + 1,
                    "category_id": labels.index(obj.findtext("name").strip()) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    # NEU-DET marks some objects difficult: crowd regions, as the reader keeps them.
                    "iscrowd": int((obj.findtext("difficult") or "0").strip() == "1"),
                }
            )
    assert result["n_items"] - result["n_failed"] == len(images)
    stats = pycocotools_stats(images, labels, gt, tmp_path / "out" / "predictions.parquet")
    assert_equal_to_pycocotools(result, stats)


def _fine_and_blind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], blind_name: str, fine_name: str
) -> Path:
    """A store with 40 plates, a blind detector registered first, then a fine one."""
    coco = write_coco(tmp_path / "data", plates(40, seed=21))
    fine = grid_detector_onnx(tmp_path / "fine.onnx", reference_image(), cell=16)
    blind = grid_detector_onnx(tmp_path / "blind.onnx", reference_image(), cell=16, offset=5.0)
    home = tmp_path / "home"
    assay(capsys, home, "dataset", "add", "plates", str(coco))
    spec = str(detector_spec(tmp_path / "d.yaml", ["spot"]))
    assay(capsys, home, "model", "add", blind_name, str(blind), "--spec", spec)
    assay(capsys, home, "model", "add", fine_name, str(fine), "--spec", spec)
    return home


def test_policies_check_the_task_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``map >= ...``, ``ap[spot]`` and a change of mAP against production are checks like any."""
    import yaml

    home = _fine_and_blind(tmp_path, capsys, "det", "det")  # det@1 (production): blind
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "checks": [
                    "map >= 0.02",
                    "ap[spot] >= 0.02",
                    {"metric": "map", "change": {"max_regression": 0.01}, "evidence": "point"},
                    "map_50 >= 0.99",
                ]
            }
        )
    )
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "det@2",
        "--dataset",
        "plates",
        "--baseline",
        "det@1",
        "--policy",
        str(policy),
        "--out",
        str(tmp_path / "out"),
        "--no-profile",
        "--resamples",
        "200",
    )
    assert code == 1, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    checks = {c["name"]: c for c in result["verdict"]["checks"]}
    statuses = {name: c["status"] for name, c in checks.items() if c["metric"] != "unjudged_share"}
    assert statuses["map >= 0.02"] == "pass", statuses
    assert statuses["ap[spot] >= 0.02"] == "pass", statuses
    assert statuses["map_50 >= 0.99"] == "fail", statuses
    change = next(c for c in result["verdict"]["checks"] if "vs baseline" in c["name"])
    assert change["status"] == "pass" and change["value"] > 0  # far better than a blind detector
    # A detector reports no losses or calibration: none is compared (a review saw log loss
    # '+5.39 worse' from the images' best box scores).
    deltas = result["comparison"]["deltas"]
    assert "map" in deltas and not {"log_loss", "brier_score", "ece"} & set(deltas), deltas
    policy.write_text(yaml.safe_dump({"checks": ["ap[scratch] >= 0.5"]}))
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "det@2",
        "--dataset",
        "plates",
        "--policy",
        str(policy),
        "--no-profile",
    )
    assert code == 2 and "unknown class 'scratch'" in err


def test_task_mismatches_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a hostile review: a policy on a number the task never reports ended
    INCONCLUSIVE (exit 1), and a baseline of another task got a misleading message."""
    import yaml

    from assay.demo.vision_models import segmenter_onnx
    from tests.tasks.test_segmentation_validation import segmenter_spec

    home = tmp_path / "home"
    assay(
        capsys,
        home,
        "dataset",
        "add",
        "plates",
        str(write_coco(tmp_path / "data", plates(8, seed=60))),
    )
    det = grid_detector_onnx(tmp_path / "det.onnx", reference_image(), cell=16)
    assay(
        capsys,
        home,
        "model",
        "add",
        "det",
        str(det),
        "--spec",
        str(detector_spec(tmp_path / "d.yaml", ["spot"])),
    )
    seg = segmenter_onnx(tmp_path / "seg.onnx", reference_image())
    assay(
        capsys,
        home,
        "model",
        "add",
        "seg",
        str(seg),
        "--spec",
        str(segmenter_spec(tmp_path / "s.yaml")),
    )
    for check in ("mean_iou >= 0.1", "log_loss <= 0.5", "aupro >= 0.5", "roc_auc >= 0.5"):
        policy = tmp_path / "p.yaml"
        policy.write_text(yaml.safe_dump({"checks": [check]}))
        code, _, err = assay(
            capsys,
            home,
            "validate",
            "--model",
            "det",
            "--dataset",
            "plates",
            "--policy",
            str(policy),
            "--no-profile",
        )
        metric = check.split()[0]
        assert code == 2 and f"a detection model has no '{metric}'" in err, err
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "det",
        "--dataset",
        "plates",
        "--baseline",
        "seg",
        "--no-profile",
    )
    assert code == 2 and "is a segmentation model and the candidate det@1 a detection model" in err
    code, _, _ = assay(
        capsys,
        home,
        "validate",
        "--model",
        "det",
        "--dataset",
        "plates",
        "--out",
        str(tmp_path / "o"),
        "--no-profile",
    )
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    # The decision is a rule over boxes: no score-based metric to contradict it.
    assert not {"roc_auc", "log_loss", "ece", "brier_score"} & set(result["metrics"])
    assert {"accuracy", "false_alarm_rate", "missed_defect_rate", "map"} <= set(result["metrics"])


def test_a_map_change_has_a_paired_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change of mAP against production needed evidence: point (no paired interval). Both
    runs' boxes are evaluated again on the images both judged, one set of image draws
    resampling both: the estimates equal each run's own, and a confident 'no mAP regression'
    passes the fine detector and fails the blind one."""
    import yaml

    home = _fine_and_blind(tmp_path, capsys, "blind", "fine")
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [
        {"metric": "map", "change": {"max_regression": 0.01}},
        {"metric": "ap_50", "scope": "every_class", "change": {"max_regression": 0.05}}]}))  # fmt: skip
    found = {}
    for cand, base in (("fine", "blind"), ("blind", "fine")):
        code, _, _ = assay(capsys, home, "validate", "--model", cand, "--dataset", "plates",
                             "--baseline", base, "--policy", str(policy), "--out",
                             str(tmp_path / cand), "--no-profile", "--resamples", "300")  # fmt: skip
        result = json.loads((tmp_path / cand / "result.json").read_text())
        d = result["comparison"]["deltas"]["map"]
        assert d["candidate"] == pytest.approx(result["metrics"]["map"]["value"], abs=1e-12)
        assert d["ci_low"] <= d["delta"] <= d["ci_high"]
        check = next(c for c in result["verdict"]["checks"] if c["metric"] == "map")
        found[cand] = (code, check["status"], d["delta"])
    assert found["fine"][:2] == (0, "pass") and found["blind"][:2] == (1, "fail"), found
    assert found["fine"][2] == pytest.approx(-found["blind"][2], abs=1e-12)


def test_the_map_change_sees_every_box_the_runs_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A baseline with its right spot boxes at 0.5 and 100 false scratches at 0.9 per image:
    its run scored mAP 1.0 for spots (100 boxes per class), but kept only the 100 best boxes of
    all classes, so the comparison read it as 0.0 and passed a candidate at 0.3 (a hostile
    review). Runs keep each class's 100 best now; the change is -0.7 and fails."""

    from tests.vision_data import plates as plate_items
    from tests.vision_data import write_coco as coco_file

    gt = coco_file(tmp_path / "data", plate_items(12, seed=7))
    doc = json.loads(gt.read_text())
    doc["categories"] = [{"id": 1, "name": "spot"}, {"id": 2, "name": "scratch"}]
    gt.write_text(json.dumps(doc))
    rng = np.random.default_rng(0)
    base = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.5}
            for a in doc["annotations"]]  # fmt: skip
    base += [{"image_id": im["id"], "category_id": 2, "score": 0.9,
              "bbox": [float(rng.uniform(0, 40)), float(rng.uniform(0, 40)), 5.0, 5.0]}
             for im in doc["images"] for _ in range(100)]  # fmt: skip
    cand = [{"image_id": a["image_id"], "category_id": 1, "score": 0.5,
             "bbox": [a["bbox"][0] + 4, a["bbox"][1], a["bbox"][2], a["bbox"][3]]}
            for a in doc["annotations"]]  # fmt: skip
    code, err, result = map_change(tmp_path, capsys, gt, ["spot", "scratch"], base, cand)
    d = result["comparison"]["deltas"]["map"]
    assert d["baseline"] > 0.4 and d["delta"] < -0.3, d
    assert code == 1 and result["verdict"]["status"] == "fail", err


def test_two_detectors_right_on_twelve_plates_prove_no_map_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two detectors that find every box of twelve plates: every resample of those plates said
    "no change", the paired interval was [0, 0], and "no mAP regression of 0.01" passed. The
    draws may now hold half a plate whose box the candidate misses where the baseline finds it
    (and the reverse): twelve plates are too few to tell."""

    from tests.vision_data import plates as plate_items
    from tests.vision_data import write_coco as coco_file

    gt = coco_file(tmp_path / "data", plate_items(12, seed=8))
    doc = json.loads(gt.read_text())
    base, cand = (
        [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
          "score": score} for a in doc["annotations"]]
        for score in (0.9, 0.8)
    )  # fmt: skip
    code, err, result = map_change(tmp_path, capsys, gt, ["spot"], base, cand)
    d = result["comparison"]["deltas"]["map"]
    assert d["baseline"] == d["candidate"] == pytest.approx(1.0) and d["delta"] == 0.0, d
    assert d["ci_low"] < -0.01 < 0.01 < d["ci_high"], d
    check = next(c for c in result["verdict"]["checks"] if c["metric"] == "map")
    assert code == 1 and check["status"] == "too_few", (err, check)


def map_change(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    gt: Path,
    labels: list[str],
    base: list[dict[str, Any]],
    cand: list[dict[str, Any]],
) -> tuple[int, str, dict[str, Any]]:
    """Two detectors given as recorded COCO detections, validated against each other under
    "no mAP regression of 0.01": the exit code, stderr and the candidate's result."""
    import yaml

    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(gt))[0] == 0
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"task": "detection", "labels": labels}))
    for name, dets in (("base", base), ("cand", cand)):
        (tmp_path / f"{name}.json").write_text(json.dumps(dets))
        assert assay(capsys, home, "model", "add", name, "--predictions",
                     str(tmp_path / f"{name}.json"), "--spec", str(spec))[0] == 0  # fmt: skip
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"checks": [{"metric": "map", "change": {"max_regression": 0.01}}]})
    )
    code, _, err = assay(capsys, home, "validate", "--model", "cand", "--dataset", "plates",
                         "--baseline", "base", "--policy", str(policy), "--out", str(tmp_path / "o"),
                         "--no-profile", "--resamples", "300")  # fmt: skip
    return code, err, json.loads((tmp_path / "o" / "result.json").read_text())


def test_box_scores_that_look_like_logits_are_named_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a review: the warning that box scores lie outside [0, 1] was in the report only;
    a CI log, which shows the CLI's lines, said nothing."""
    import onnx

    coco = write_coco(tmp_path / "data", plates(20, seed=3))
    path = grid_detector_onnx(tmp_path / "det.onnx", reference_image(), cell=16)
    model = onnx.load(str(path))
    for node in model.graph.node:  # the logits, not their sigmoid
        if node.op_type == "Sigmoid":
            node.op_type = "Identity"
    path.write_bytes(model.SerializeToString())
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(coco))[0] == 0
    spec = detector_spec(tmp_path / "det.yaml", ["spot"])
    assert assay(capsys, home, "model", "add", "det", str(path), "--spec", str(spec))[0] == 0
    code, printed, err = assay(
        capsys, home, "validate", "--model", "det", "--dataset", "plates", "--no-profile",
        "--no-explore", "--resamples", "100",
    )  # fmt: skip
    assert code in (0, 1), err
    assert "boxes scored outside [0, 1]: logits, perhaps?" in printed
