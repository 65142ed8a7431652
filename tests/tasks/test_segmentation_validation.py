"""Segmentation through ``assay validate``: IoU, Dice and pixel accuracy equal scikit-learn on the
model's own masks, the item-level decision, resized masks, boundary F1 against scipy, and the
hostile cases (bad class indices, missing or changed masks, RGB masks, NaN scores)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from assay.cli.main import main
from assay.core.tasks.segmentation.boundary import boundary_counts, boundary_f1
from assay.demo.vision_models import segmenter_onnx
from tests.models import write_spec
from tests.vision_data import plates, reference_image, write_mask_manifest


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def segmenter_spec(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    return write_spec(
        path,
        task="segmentation",
        labels=["background", "spot"],
        input={"kind": "image", "size": list(size), "color": "grayscale"},
        output={"name": "logits", "kind": "logits"},
    )


def run(
    tmp: Path,
    capsys: pytest.CaptureFixture[str],
    items: list[dict[str, Any]],
    size: tuple[int, int] = (64, 64),
    gain: float = 40.0,
) -> tuple[int, dict[str, Any], Path]:
    manifest = write_mask_manifest(tmp / "data", items)
    reference = np.full(size, 128 / 255, np.float32)
    model = segmenter_onnx(tmp / "seg.onnx", reference, gain=gain)
    home = tmp / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(manifest))[0] == 0
    code, _, err = assay(
        capsys,
        home,
        "model",
        "add",
        "seg",
        str(model),
        "--spec",
        str(segmenter_spec(tmp / "seg.yaml", size)),
    )
    assert code == 0, err
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "seg",
        "--dataset",
        "plates",
        "--out",
        str(tmp / "out"),
        "--no-profile",
        "--resamples",
        "200",
    )
    assert code in (0, 1), err
    return (
        code,
        json.loads((tmp / "out" / "result.json").read_text()),
        tmp / "out" / "predictions.parquet",
    )


def model_masks(model: Path, items: list[dict[str, Any]], size: tuple[int, int]) -> np.ndarray:
    """The reference: onnxruntime on the images as Assay decodes them, argmax per pixel."""
    from assay.datasets.images import decode_image

    session = ort.InferenceSession(str(model))
    x = np.stack(
        [
            decode_image(str(model.parent / "data" / "images" / i["name"]), None, size, "grayscale")
            for i in items
        ]
    )
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    (logits,) = session.run(["logits"], {"image": x})
    return np.argmax(logits, axis=1)


def test_segmentation_metrics_equal_scikit_learn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = plates(30, seed=4)
    _, result, predictions = run(tmp_path, capsys, items)
    predicted = model_masks(tmp_path / "seg.onnx", items, (64, 64))
    expert = np.stack([i["mask"] for i in items])
    y, p = expert.ravel(), predicted.ravel()
    iou = jaccard_score(y, p, average=None, labels=[0, 1])
    dice = f1_score(y, p, average=None, labels=[0, 1])
    per_class = result["metrics"]["per_class"]
    for k, label in enumerate(("background", "spot")):
        assert per_class[label]["iou"]["value"] == pytest.approx(iou[k], abs=1e-12)
        assert per_class[label]["dice"]["value"] == pytest.approx(dice[k], abs=1e-12)
        assert per_class[label]["iou"]["ci_low"] <= iou[k] <= per_class[label]["iou"]["ci_high"]
    assert result["metrics"]["mean_iou"]["value"] == pytest.approx(iou.mean(), abs=1e-12)
    assert result["metrics"]["pixel_accuracy"]["value"] == pytest.approx(
        accuracy_score(y, p), abs=1e-12
    )
    # The item-level decision: defect IoU (the spot class here) >= 0.5, or no spot in either mask.
    rows = {r["item_id"]: r for r in pq.read_table(predictions).to_pylist()}
    right = 0
    for k in range(len(items)):
        e, m = expert[k] == 1, predicted[k] == 1
        union = (e | m).sum()
        image_iou = (e & m).sum() / union if union else None
        row = rows[str(k)]
        assert row["label"] == ("defect" if e.any() else "good")
        assert (row["iou"] is None) == (image_iou is None)
        if image_iou is not None:
            assert row["iou"] == pytest.approx(image_iou)
        ok = image_iou is None or image_iou >= 0.5
        assert row["correct"] == ok
        right += ok
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(right / len(items))
    assert result["task"]["name"] == "segmentation" and "defect IoU" in result["task"]["item_rule"]


@pytest.mark.parametrize("size", [(32, 32), (8, 8)])
def test_a_smaller_model_mask_is_judged_at_the_expert_masks_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: tuple[int, int]
) -> None:
    """A review: the expert mask was shrunk to the model's output, so small defects vanished
    from the count and a coarse model (8 x 8) scored better than its own full-size original.
    The model's mask is enlarged to the expert's (nearest neighbour) and judged there."""
    items = plates(20, seed=5)
    _, result, _ = run(tmp_path, capsys, items, size=size)
    predicted = model_masks(tmp_path / "seg.onnx", items, size)
    factor = 64 // size[0]  # nearest at pixel centres, enlarging by a whole factor: repeats
    enlarged = predicted.repeat(factor, axis=1).repeat(factor, axis=2)
    expert = np.stack([i["mask"] for i in items])
    iou = jaccard_score(expert.ravel(), enlarged.ravel(), average=None, labels=[0, 1])
    assert result["metrics"]["per_class"]["spot"]["iou"]["value"] == pytest.approx(
        iou[1], abs=1e-12
    )
    assert result["n_failed"] == 0


def test_hostile_masks_are_not_judged_with_their_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = plates(8, seed=6)
    items[0]["mask"] = np.where(items[0]["mask"] == 1, 7, 0).astype(np.uint8)  # no class 7
    items[0]["boxes"] = items[0]["boxes"] or [[0, 0, 1, 1]]
    items[4]["mask"] = np.full((64, 64), 255, np.uint8)  # every pixel left out
    items[5]["mask"] = items[5]["mask"][:, :40]  # not the image's proportions
    items[6]["mask"] = items[6]["mask"][::2, ::2]  # half the resolution: judged
    manifest = write_mask_manifest(tmp_path / "data", items)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(
        tmp_path / "data" / "masks" / items[1]["name"]
    )  # RGB
    (tmp_path / "data" / "masks" / items[2]["name"]).unlink()  # missing
    home = tmp_path / "home"
    code, out, _ = assay(capsys, home, "dataset", "add", "plates", str(manifest))
    assert code == 0
    # Said at registration too (a review: nothing said it until the run).
    assert "1 expert mask file(s) are missing or unreadable: those images will not be judged" in (
        out
    )
    # Changed after registration: its digest no longer matches.
    Image.fromarray(np.ones((64, 64), np.uint8)).save(
        tmp_path / "data" / "masks" / items[3]["name"]
    )
    model = segmenter_onnx(tmp_path / "seg.onnx", reference_image())
    assay(
        capsys,
        home,
        "model",
        "add",
        "seg",
        str(model),
        "--spec",
        str(segmenter_spec(tmp_path / "s.yaml")),
    )
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "seg",
        "--dataset",
        "plates",
        "--out",
        str(tmp_path / "out"),
        "--no-profile",
    )
    assert code in (0, 1), err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    reasons = result["failures"]["by_reason"]
    assert reasons == {
        "expert mask holds class index 7 outside 0..1 (255: left out)": 1,
        "mask is a RGB image: save one class index per pixel (a single-channel PNG)": 1,
        "mask file not found": 1,
        "mask file changed since the dataset was registered": 1,
        "the expert mask leaves every pixel out (255): nothing to judge": 1,
        "mask is 40x64 pixels, its image 64x64: not the image's proportions (another image's "
        "mask?)": 1,
    }
    assert result["n_failed"] == 6 and result["n_items"] == 8


def test_nan_scores_judge_nothing_and_a_maskless_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = plates(6, seed=7)
    code, result, _ = run(tmp_path, capsys, items, gain=float("nan"))
    assert code == 1 and result["n_failed"] == 6
    assert result["failures"]["by_reason"] == {
        "model output is not finite (NaN or infinite class scores)": 6
    }
    assert result["metrics"]["mean_iou"]["value"] is None
    assert result["verdict"]["status"] != "pass"
    lines = ["path,label"] + [f"images/{i['name']},good" for i in items]
    (tmp_path / "data" / "plain.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    assert (
        assay(capsys, home, "dataset", "add", "plain", str(tmp_path / "data" / "plain.csv"))[0] == 0
    )
    code, _, err = assay(
        capsys, home, "validate", "--model", "seg", "--dataset", "plain", "--no-profile"
    )
    assert code == 2 and "has no expert masks" in err and len(err.strip().splitlines()) == 1


def scipy_boundary_f1(expert: np.ndarray, model: np.ndarray, k: int, tolerance: int) -> float:
    """Boundary F1 with scipy: boundaries by 4-connected erosion, tolerance by a square dilation."""
    cross = ndimage.generate_binary_structure(2, 1)
    square = np.ones((2 * tolerance + 1, 2 * tolerance + 1), bool)

    def edge(mask: np.ndarray) -> np.ndarray:
        return mask & ~ndimage.binary_erosion(mask, cross, border_value=1)

    e, m = edge(expert == k), edge(model == k)
    near_m = (m & ndimage.binary_dilation(e, square)).sum()
    near_e = (e & ndimage.binary_dilation(m, square)).sum()
    precision = near_m / m.sum() if m.sum() else 0.0
    recall = near_e / e.sum() if e.sum() else 0.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("tolerance", [0, 1, 2, 3])
def test_boundary_f1_equals_a_scipy_reference(tolerance: int) -> None:
    rng = np.random.default_rng(tolerance)
    for _ in range(20):
        expert = (ndimage.uniform_filter(rng.random((40, 50)), 7) > 0.5).astype(np.int64)
        model = (ndimage.uniform_filter(rng.random((40, 50)), 5) > 0.5).astype(np.int64)
        counts = boundary_counts(expert, model, 2, tolerance)
        f1 = boundary_f1(counts)
        for k in (0, 1):
            if counts[k, 1] + counts[k, 3] == 0:
                assert np.isnan(f1[k])
            else:
                assert f1[k] == pytest.approx(scipy_boundary_f1(expert, model, k, tolerance))


def test_boundary_f1_has_an_image_bootstrap_interval() -> None:
    """Boundary F1 was reported without an interval (too_few under evidence: confident). A
    resample weights each image's boundary counts by how often it was drawn: the same as
    measuring the dataset with the images repeated; weights of one give the estimate."""
    from assay.core.batch import ScoredBatch
    from assay.core.intervals import IntervalConfig
    from assay.core.tasks.segmentation.pixel_confusion import image_counts
    from assay.core.tasks.segmentation.task import SegmentationMetrics

    rng = np.random.default_rng(9)
    details = []
    for order in range(12):
        expert = (ndimage.uniform_filter(rng.random((30, 30)), 5) > 0.5).astype(np.int64)
        model = (ndimage.uniform_filter(rng.random((30, 30)), 5) > 0.5).astype(np.int64)
        details.append(
            (order, image_counts(expert, model, 2), boundary_counts(expert, model, 2, 1))
        )

    def state_of(items: list) -> object:
        acc = SegmentationMetrics(("bg", "spot"), IntervalConfig(n_resamples=200, seed=1), 1)
        batch = ScoredBatch(np.zeros(len(items), np.int64), np.zeros(len(items), np.int64),
                            np.zeros((len(items), 2)), detail=items)  # fmt: skip
        return acc, acc.update(acc.empty(), batch)

    acc, state = state_of(details)
    found = acc.finalize(state)  # type: ignore[attr-defined]
    f1 = found.metrics["boundary_f1"]
    assert (
        f1.ci_low is not None and f1.ci_low <= f1.value <= f1.ci_high and f1.method == "bootstrap"
    )
    assert found.per_class["spot"]["boundary_f1"].ci_low is not None
    weights = np.ones((2, 12))
    weights[1] = [2, 0, 1, 1, 3, 0, 1, 1, 1, 0, 1, 1]
    reps = acc.boundary_replicates(state, acc.intervals, weights)  # type: ignore[attr-defined]
    assert reps["boundary_f1"][0] == pytest.approx(f1.value, abs=1e-12)
    repeated = [(n, d[1], d[2]) for n, d in enumerate(
        d for d, times in zip(details, weights[1], strict=True) for _ in range(int(times)))]  # fmt: skip
    acc2, state2 = state_of(repeated)
    again = acc2.finalize(state2)  # type: ignore[attr-defined]
    assert reps["boundary_f1"][1] == pytest.approx(again.metrics["boundary_f1"].value, abs=1e-12)


def test_mean_iou_and_class_iou_changes_have_paired_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change check on mean IoU was refused under evidence: confident (no paired interval).
    Both runs' stored masks are now compared with the experts' on the images both judged, one
    set of image draws for both: the estimates equal each run's own, 'no regression' passes the
    sharp segmenter against one whose offset hides every spot and fails the reverse, and two
    segmenters 1.4 points apart on 40 plates are too few to tell apart at 0.01."""
    import yaml

    items = plates(40, seed=5)
    manifest = write_mask_manifest(tmp_path / "data", items)
    reference = np.full((64, 64), 128 / 255, np.float32)
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(manifest))[0] == 0
    for name, offset in (("sharp", 0.08), ("eroded", 0.33), ("blind", 0.45)):
        model = segmenter_onnx(tmp_path / f"{name}.onnx", reference, offset=offset)
        spec = segmenter_spec(tmp_path / f"{name}.yaml")
        assert assay(capsys, home, "model", "add", name, str(model), "--spec", str(spec))[0] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [
        {"metric": "mean_iou", "change": {"max_regression": 0.01}},
        {"metric": "iou[spot]", "change": {"max_regression": 0.02}}]}))  # fmt: skip
    found = {}
    for cand, base in (("sharp", "blind"), ("blind", "sharp"), ("sharp", "eroded")):
        out = tmp_path / f"{cand}-vs-{base}"
        code, _, err = assay(capsys, home, "validate", "--model", cand, "--dataset", "plates",
                             "--baseline", base, "--policy", str(policy), "--out", str(out),
                             "--no-profile", "--resamples", "300")  # fmt: skip
        assert code in (0, 1), err
        result = json.loads((out / "result.json").read_text())
        deltas = result["comparison"]["deltas"]
        assert deltas["mean_iou"]["candidate"] == pytest.approx(
            result["metrics"]["mean_iou"]["value"], abs=1e-12
        )
        assert deltas["iou[spot]"]["candidate"] == pytest.approx(
            result["metrics"]["per_class"]["spot"]["iou"]["value"], abs=1e-12
        )
        for name in ("mean_iou", "iou[spot]", "pixel_accuracy", "dice[spot]", "boundary_f1"):
            assert deltas[name]["ci_low"] <= deltas[name]["delta"] <= deltas[name]["ci_high"]
        statuses = {c["metric"]: c["status"] for c in result["verdict"]["checks"]}
        found[f"{cand}-vs-{base}"] = (code, [statuses["mean_iou"], statuses["iou[spot]"]])
        found[f"{cand}-vs-{base} delta"] = deltas["mean_iou"]["delta"]
    assert found["sharp-vs-blind"] == (0, ["pass", "pass"]), found
    # What users read: verdict.md's and the report's tables of changes hold the task's numbers
    # (they showed the item-level decision's alone).
    markdown = (tmp_path / "sharp-vs-blind" / "verdict.md").read_text()
    assert "| Mean IoU | " in markdown and "| Pixel accuracy | " in markdown, markdown
    report = (tmp_path / "sharp-vs-blind" / "report.html").read_text()
    assert report.index(">mean_iou<") < report.index(">accuracy<")
    assert found["blind-vs-sharp"] == (1, ["fail", "fail"]), found
    assert found["sharp-vs-blind delta"] == pytest.approx(-found["blind-vs-sharp delta"], abs=1e-12)
    assert found["sharp-vs-eroded"] == (1, ["too_few", "too_few"]), found
    assert 0 < found["sharp-vs-eroded delta"] < 0.02


def test_compare_judges_segmentation_runs_and_refuses_other_tasks_and_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`assay compare` of two finished segmentation runs stopped with an internal error (it
    judged their items with the pixel classes' spec: "lacks column 'score_background'"). And it
    compared runs of different tasks: an anomaly model's thresholded maps read as a
    segmenter's masks passed 7 of 7 checks (a hostile review). A segmenter listing its classes
    in another order was compared index by index, its background's IoU reported as its
    defect's. Both are refused now, by ``validate --baseline`` and ``compare`` alike."""
    import yaml

    from assay.demo.vision_models import anomaly_onnx

    manifest = write_mask_manifest(tmp_path / "data", plates(30, seed=6))
    reference = np.full((64, 64), 128 / 255, np.float32)
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(manifest))[0] == 0
    image = {"kind": "image", "size": [64, 64], "color": "grayscale"}
    logits = {"name": "logits", "kind": "logits"}
    models = {
        "sharp": (segmenter_onnx(tmp_path / "s.onnx", reference), ["background", "spot"], {}),
        "blind": (segmenter_onnx(tmp_path / "b.onnx", reference, offset=0.45),
                  ["background", "spot"], {}),
        "reversed": (segmenter_onnx(tmp_path / "s.onnx", reference), ["spot", "background"], {}),
        "anomaly": (anomaly_onnx(tmp_path / "a.onnx", reference), ["good", "defect"], {"threshold": 0.2}),
    }  # fmt: skip
    runs = {}
    for name, (model, labels, extra) in models.items():
        task = "anomaly" if name == "anomaly" else "segmentation"
        output = {"score": "score", "map": "anomaly_map"} if task == "anomaly" else logits
        spec = write_spec(tmp_path / f"{name}.yaml", task=task, labels=labels, input=image,
                          output=output, **extra)  # fmt: skip
        assert assay(capsys, home, "model", "add", name, str(model), "--spec", str(spec))[0] == 0
        code, _, err = assay(capsys, home, "validate", "--model", name, "--dataset", "plates",
                             "--out", str(tmp_path / name), "--no-profile", "--resamples", "200")  # fmt: skip
        assert code in (0, 1), err
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())["run_id"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"checks": [{"metric": "mean_iou", "change": {"max_regression": 0.01}}]})
    )
    code, _, err = assay(capsys, home, "compare", runs["sharp"], runs["blind"], "--policy",
                         str(policy), "--out", str(tmp_path / "cmp"))  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "cmp" / "result.json").read_text())
    d = result["comparison"]["deltas"]["mean_iou"]
    assert d["ci_low"] > 0.1 and d["candidate"] == pytest.approx(
        result["metrics"]["mean_iou"]["value"], abs=1e-12
    )
    for cand, base, words in (
        ("anomaly", "sharp", "is a segmentation model and the candidate"),
        ("sharp", "anomaly", "is an anomaly model and the candidate"),
        ("sharp", "reversed", "must list them alike"),
    ):
        code, _, err = assay(capsys, home, "compare", runs[cand], runs[base], "--out",
                             str(tmp_path / f"x-{cand}-{base}"))  # fmt: skip
        assert code == 2 and words in err and "internal error" not in err, (cand, base, err)
    code, _, err = assay(capsys, home, "validate", "--model", "sharp", "--dataset", "plates",
                         "--baseline", "reversed", "--no-profile")  # fmt: skip
    assert code == 2 and "must list them alike" in err, err


def test_the_change_from_stored_counts_equals_the_masks_compared_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs keep each image's pixel and boundary counts, so a comparison reads them instead of
    decoding every mask again (23 ms per 1024 x 1024 image and model); runs from before kept
    none, and their masks are compared again: both ways give the same changes."""
    from assay.core.intervals import IntervalConfig
    from assay.services.paired_tasks import task_deltas

    manifest = write_mask_manifest(tmp_path / "data", plates(25, seed=9))
    reference = np.full((64, 64), 128 / 255, np.float32)
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(manifest))[0] == 0
    files, specs = [], []
    for name, offset in (("sharp", 0.08), ("eroded", 0.33)):
        model = segmenter_onnx(tmp_path / f"{name}.onnx", reference, offset=offset)
        spec = segmenter_spec(tmp_path / f"{name}.yaml")
        assert assay(capsys, home, "model", "add", name, str(model), "--spec", str(spec))[0] == 0
        code, _, err = assay(capsys, home, "validate", "--model", name, "--dataset", "plates",
                             "--out", str(tmp_path / name), "--no-profile", "--resamples", "100")  # fmt: skip
        assert code in (0, 1), err
        files.append(tmp_path / name / "predictions.parquet")
        specs.append(json.loads((tmp_path / name / "result.json").read_text())["config"])
    stored = pq.read_table(files[0]).column("pixel_counts").to_pylist()
    assert all(len(c) == 2 * 7 for c in stored)  # two classes: 3 pixel and 4 boundary counts
    dataset = next((home / "datasets").rglob("manifest.parquet"))
    config = IntervalConfig(0.95, 300, 0)
    args = (specs[0]["model_spec"], specs[1]["model_spec"])
    kept = task_deltas(*args, files[0], files[1], dataset, config)
    for path in files:  # as a run from before would have written it
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["pixel_counts"]), path)
    again = task_deltas(*args, files[0], files[1], dataset, config)
    assert set(kept) == set(again) and "mean_iou" in kept
    for name, d in kept.items():
        e = again[name]
        assert (d.baseline, d.candidate, d.delta) == (e.baseline, e.candidate, e.delta), name
        assert (d.ci_low, d.ci_high) == (e.ci_low, e.ci_high), name


def test_a_segmenter_painting_background_everywhere_is_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: a model whose masks are background in every pixel passed pixel_accuracy >=
    0.95 (0.989) and mean_iou >= 0.45 without a word; the CLI warned only for classifiers."""
    items = plates(20, seed=7)
    _, result, _ = run(tmp_path, capsys, items, gain=0.0)
    matrix = result["task"]["segmentation"]["pixel_confusion"]["matrix"]
    assert sum(row[1] for row in matrix) == 0  # nothing but background
    code, out, err = assay(capsys, tmp_path / "home", "validate", "--model", "seg", "--dataset",
                           "plates", "--no-profile", "--no-explore")  # fmt: skip
    assert code in (0, 1), err
    assert "the model's masks are background in every pixel" in out, out
