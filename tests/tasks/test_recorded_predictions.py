"""Recorded predictions (``assay model add --predictions``): a model that ran elsewhere is judged
exactly as if it had run here, items without a prediction are not judged with the reason, and
predictions that name no item are counted and listed, never dropped."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.demo.vision_models import anomaly_onnx, grid_detector_onnx
from tests.models import fit_logistic, tabular_onnx, write_spec
from tests.vision_data import plates, reference_image, write_coco, write_mask_manifest


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def result(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "result.json").read_text())


@pytest.fixture(scope="module")
def press(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A table, an ONNX model validated on it, and that run's predictions: what a device that
    ran the same model would have recorded."""
    tmp = tmp_path_factory.mktemp("press")
    rng = np.random.default_rng(5)
    n = 2000
    x = rng.normal(size=(n, 2))
    y = np.where(x[:, 0] + 0.3 * rng.normal(size=n) > 0, "defect", "ok")
    (tmp / "press.csv").write_text(
        "a,b,label\n" + "".join(f"{p:.5f},{q:.5f},{v}\n" for (p, q), v in zip(x, y, strict=True))
    )
    model = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp / "good.onnx")
    spec = write_spec(
        tmp / "spec.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp / "home"
    assert main(["dataset", "add", "press", str(tmp / "press.csv"), "--home", str(home)]) == 0
    assert main(["model", "add", "good", str(model), "--spec", str(spec), "--home", str(home)]) == 0
    args = ["--dataset", "press", "--no-profile", "--seed", "3", "--home", str(home)]
    assert main(["validate", "--model", "good", "--out", str(tmp / "onnx"), *args]) == 0
    return {"home": home, "tmp": tmp, "spec": spec, "onnx": tmp / "onnx"}


def recorded(press: dict[str, Path]) -> pa.Table:
    return pq.read_table(press["onnx"] / "predictions.parquet")


def validate(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path], model: str, out: str, *more: str
) -> tuple[int, str, str]:
    return assay(
        capsys,
        press["home"],
        "validate",
        "--model",
        model,
        "--dataset",
        "press",
        "--out",
        str(press["tmp"] / out),
        "--no-profile",
        "--seed",
        "3",
        *more,
    )


def test_recorded_scores_are_judged_exactly_as_the_model_that_made_them(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    table = recorded(press).select(["item_id", "score_defect", "score_ok"])
    path = press["tmp"] / "device.csv"
    pacsv.write_csv(table, path)
    code, out, err = assay(
        capsys,
        press["home"],
        "model",
        "add",
        "device",
        "--predictions",
        str(path),
        "--spec",
        str(press["spec"]),
    )
    assert code == 0, err
    assert "recorded" in out
    code, _, err = validate(capsys, press, "device", "rec")
    assert code == 0, err
    onnx, rec = result(press["onnx"]), result(press["tmp"] / "rec")
    metrics = {k: v for k, v in onnx["metrics"].items() if k != "per_class"}
    assert metrics and all(
        rec["metrics"][k]["value"] == pytest.approx(v["value"], abs=1e-12)
        for k, v in metrics.items()
    )
    assert rec["confusion_matrix"] == onnx["confusion_matrix"]
    assert rec["recorded_predictions"]["n_items_with_prediction"] == rec["n_items"] == 2000
    assert rec["recorded_predictions"]["n_unmatched"] == 0
    a, b = (
        pq.read_table(press["onnx"] / "predictions.parquet"),
        pq.read_table(press["tmp"] / "rec" / "predictions.parquet"),
    )
    assert a.column("predicted").equals(b.column("predicted"))


def test_items_without_and_predictions_without_items_are_both_accounted_for(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Ten items the device never answered are not judged, with the reason; three predictions
    for items the dataset does not hold are counted, listed and flagged in the verdict."""
    table = recorded(press).select(["item_id", "score_defect", "score_ok"])
    kept = table.slice(10)
    strangers = pa.table(
        {
            "item_id": ["ghost-1", "ghost-2", "ghost-3"],
            "score_defect": [0.5, 0.1, 0.9],
            "score_ok": [0.5, 0.9, 0.1],
        }
    )
    path = press["tmp"] / "partial.parquet"
    pq.write_table(pa.concat_tables([kept, strangers]), path)
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "partial",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    code, printed, err = validate(capsys, press, "partial", "partial")
    assert code == 0, err
    rec = result(press["tmp"] / "partial")
    lost = set(table.column("item_id").to_pylist()[:10])
    assert rec["n_failed"] == 10
    assert rec["failures"]["by_reason"] == {"no recorded prediction": 10}
    assert {f["item_id"] for f in rec["failures"]["items"]} == lost
    info = rec["recorded_predictions"]
    assert info["n_unmatched"] == 3 and info["n_items_without_prediction"] == 10
    assert info["unmatched_examples"] == ["ghost-1", "ghost-2", "ghost-3"]
    listed = pacsv.read_csv(press["tmp"] / "partial" / "unmatched_predictions.csv")
    assert listed.column("item_id").to_pylist() == ["ghost-1", "ghost-2", "ghost-3"]
    check = next(c for c in rec["verdict"]["checks"] if c["metric"] == "unmatched_predictions")
    assert check["status"] == "warn" and "ghost-1" in check["reason"]
    assert "3 recorded prediction(s) name item ids" in printed
    # The judged items' numbers are the model's on those items.
    preds = pq.read_table(press["tmp"] / "partial" / "predictions.parquet").to_pylist()
    judged = [p for p in preds if p["error"] is None]
    assert len(judged) == 1990
    assert rec["metrics"]["accuracy"]["value"] == pytest.approx(
        np.mean([p["correct"] for p in judged])
    )


def test_a_class_per_item_without_scores_reports_only_what_decisions_say(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = press["tmp"] / "classes.csv"
    pacsv.write_csv(recorded(press).select(["item_id", "predicted"]), path)
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "classes",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    code, _, err = validate(capsys, press, "classes", "classes")
    assert code == 0, err
    onnx, rec = result(press["onnx"]), result(press["tmp"] / "classes")
    assert rec["config"]["model_spec"]["output"]["kind"] == "labels"
    for name in ("accuracy", "mcc", "false_alarm_rate", "missed_defect_rate"):
        assert rec["metrics"][name]["value"] == pytest.approx(
            onnx["metrics"][name]["value"], abs=1e-12
        )
    for name in ("roc_auc", "pr_auc", "log_loss", "brier_score", "ece"):
        assert name not in rec["metrics"]  # a one-hot "score" would make these up
    assert rec["doubtful_labels"] is None
    # Hostile review: that run's own predictions file has one-hot score columns; added back as
    # recorded predictions it is a model of classes, not one that scores (no made-up ROC AUC).
    again = press["tmp"] / "classes" / "predictions.parquet"
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "again",
            "--predictions",
            str(again),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    assert validate(capsys, press, "again", "again")[0] == 0
    assert "roc_auc" not in result(press["tmp"] / "again")["metrics"]
    policy = press["tmp"] / "auc.yaml"
    policy.write_text("checks:\n  - roc_auc >= 0.9\n")
    code, _, err = validate(capsys, press, "classes", "classes-auc", "--policy", str(policy))
    assert code == 2 and "a model that gives no scores has no 'roc_auc'" in err


def test_logits_are_read_as_the_spec_says(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    table = recorded(press)
    p = np.clip(np.asarray(table.column("score_defect")), 1e-12, 1 - 1e-12)
    logits = pa.table(
        {
            "item_id": table.column("item_id"),
            "score_defect": np.log(p / (1 - p)),
            "score_ok": np.zeros(len(p)),
        }
    )
    path = press["tmp"] / "logits.parquet"
    pq.write_table(logits, path)
    spec = write_spec(
        press["tmp"] / "logits.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "recorded"},
        output={"kind": "logits"},
    )
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "logits",
            "--predictions",
            str(path),
            "--spec",
            str(spec),
        )[0]
        == 0
    )
    assert validate(capsys, press, "logits", "logits")[0] == 0
    onnx, rec = result(press["onnx"]), result(press["tmp"] / "logits")
    for name in ("accuracy", "roc_auc", "log_loss"):
        assert rec["metrics"][name]["value"] == pytest.approx(
            onnx["metrics"][name]["value"], abs=1e-6
        )


def test_a_recorded_model_is_a_baseline_like_any_other(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = press["tmp"] / "prod.parquet"
    pq.write_table(recorded(press).select(["item_id", "score_defect", "score_ok"]), path)
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "prod",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    code, _, err = validate(capsys, press, "good", "vs-prod", "--baseline", "prod")
    assert code == 0, err
    comparison = result(press["tmp"] / "vs-prod")["comparison"]
    # The same answers: nothing fixed, nothing broken.
    assert comparison["n_fixed"] == 0 and comparison["n_broken"] == 0


BAD_FILES = {
    "duplicate ids": (
        "item_id,score_defect,score_ok\n7,0.2,0.8\n7,0.3,0.7\n",
        "1 item id(s) appear more than once (first: '7')",
    ),
    "no id column": ("id,score_defect,score_ok\n7,0.2,0.8\n", "no 'item_id' column"),
    "scores of other labels": (
        "item_id,score_defect,score_void\n7,0.2,0.8\n",
        "do not match the spec's labels",
    ),
    "text scores": ("item_id,score_defect,score_ok\n7,high,low\n", "holds string, not numbers"),
    "unknown class": ("item_id,predicted\n7,scratch\n", "predicted classes ['scratch']"),
    "nothing usable": ("item_id,answer\n7,ok\n", "needs score_defect, score_ok"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_prediction_files_are_refused_with_one_line(
    case: str, press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = BAD_FILES[case]
    path = press["tmp"] / "bad.csv"
    path.write_text(text)
    code, _, err = assay(
        capsys,
        press["home"],
        "model",
        "add",
        "bad",
        "--predictions",
        str(path),
        "--spec",
        str(press["spec"]),
    )
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_predictions_for_another_dataset_are_refused_before_the_pass(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = press["tmp"] / "elsewhere.csv"
    path.write_text("item_id,score_defect,score_ok\nA-1,0.2,0.8\nA-2,0.6,0.4\n")
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "elsewhere",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    code, _, err = validate(capsys, press, "elsewhere", "elsewhere")
    assert code == 2 and "none of the 2000 items of press@1 has a recorded prediction" in err
    assert not (press["tmp"] / "elsewhere").exists()


def test_model_add_takes_a_file_or_predictions_not_both(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = assay(capsys, press["home"], "model", "add", "x", "--spec", str(press["spec"]))
    assert code == 2 and "a model FILE or --predictions FILE" in err


def coco_results(run: Path, coco: dict[str, Any]) -> list[dict[str, Any]]:
    """The boxes an ONNX run wrote, as the COCO results file a device would have written."""
    ids = {im["file_name"]: im["id"] for im in coco["images"]}
    cats = {c["name"]: c["id"] for c in coco["categories"]}
    return [
        {
            "image_id": ids[row["item_id"]],
            "category_id": cats[b["name"]],
            "bbox": [b["x"], b["y"], b["width"], b["height"]],
            "score": b["score"],
        }
        for row in pq.read_table(run / "predictions.parquet").to_pylist()
        for b in row["boxes"] or []
    ]


def test_coco_results_are_judged_as_the_detector_that_made_them_and_as_pycocotools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    items = plates(60, seed=4)
    coco_path = write_coco(tmp_path / "data", items)
    coco = json.loads(coco_path.read_text())
    model = grid_detector_onnx(tmp_path / "det.onnx", reference_image(), cell=16)
    spec = write_spec(
        tmp_path / "det.yaml",
        task="detection",
        labels=["spot"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"boxes": "boxes", "scores": "scores", "classes": "classes", "box_format": "xyxy"},
    )
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(coco_path))[0] == 0
    assert assay(capsys, home, "model", "add", "det", str(model), "--spec", str(spec))[0] == 0
    common = [
        "--dataset",
        "plates",
        "--no-profile",
        "--no-explore",
        "--resamples",
        "100",
        "--seed",
        "1",
    ]
    assert assay(
        capsys, home, "validate", "--model", "det", "--out", str(tmp_path / "onnx"), *common
    )[0] in (0, 1)
    dets = coco_results(tmp_path / "onnx", coco)
    dets.append(
        {"image_id": 999, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}
    )  # no such image
    results = tmp_path / "results.json"
    results.write_text(json.dumps(dets))
    # The spec of recorded detections needs only the task and the labels.
    short = write_spec(tmp_path / "short.yaml", task="detection", labels=["spot"])
    code, _, err = assay(
        capsys, home, "model", "add", "device", "--predictions", str(results), "--spec", str(short)
    )
    assert code == 0, err
    code, _, err = assay(
        capsys, home, "validate", "--model", "device", "--out", str(tmp_path / "rec"), *common
    )
    assert code in (0, 1), err
    onnx, rec = result(tmp_path / "onnx"), result(tmp_path / "rec")
    for name in ("map", "map_50", "map_75", "mar_100", "accuracy"):
        assert rec["metrics"][name]["value"] == pytest.approx(
            onnx["metrics"][name]["value"], abs=1e-12
        ), name
    assert rec["n_failed"] == 0  # an image the results do not name has no detections: judged
    assert rec["recorded_predictions"]["n_unmatched"] == 1
    assert rec["recorded_predictions"]["unmatched_examples"] == ["999"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes(dets[:-1]), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    assert e.stats[0] > 0.05
    assert rec["metrics"]["map"]["value"] == pytest.approx(e.stats[0], abs=1e-12)
    assert rec["metrics"]["map_50"]["value"] == pytest.approx(e.stats[1], abs=1e-12)

    # A category the dataset does not define, and a box that is not a box.
    for bad, message in (
        (
            [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 2, 2], "score": 0.5}],
            "category ids ['7']",
        ),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, -2, 2], "score": 0.5}], "bbox must be"),
        ({"image_id": 1}, "a list of detections"),
    ):
        results.write_text(json.dumps(bad))
        code, _, err = assay(
            capsys, home, "model", "add", "bad", "--predictions", str(results), "--spec", str(short)
        )
        if code == 0:
            code, _, err = assay(capsys, home, "validate", "--model", "bad", *common)
        assert code == 2 and message in err, err

    # The same images read by another reader keep no COCO ids: the message says so and what to
    # do (it blamed "an older Assay").
    import shutil

    voc = tmp_path / "voc"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    for im in coco["images"]:
        name = Path(im["file_name"])
        shutil.copy(tmp_path / "data" / name, voc / "JPEGImages" / name.name)
        objects = "".join(
            f"<object><name>spot</name><bndbox><xmin>{a['bbox'][0]}</xmin><ymin>{a['bbox'][1]}"
            f"</ymin><xmax>{a['bbox'][0] + a['bbox'][2]}</xmax><ymax>{a['bbox'][1] + a['bbox'][3]}"
            "</ymax></bndbox></object>"
            for a in coco["annotations"]
            if a["image_id"] == im["id"]
        )
        (voc / "Annotations" / f"{name.stem}.xml").write_text(
            f"<annotation><size><width>{im['width']}</width><height>{im['height']}</height>"
            f"</size>{objects}</annotation>")  # fmt: skip
    assert assay(capsys, home, "dataset", "add", "listed", str(voc))[0] == 0
    code, _, err = assay(capsys, home, "validate", "--model", "device", "--dataset", "listed",
                         "--no-profile", "--no-explore")  # fmt: skip
    assert code == 2 and "read by the voc reader" in err and "older" not in err, err


def test_tied_scores_give_pycocotools_ap_whatever_the_order_of_the_images_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: scores rounded to 0.1 tie across images; pycocotools breaks such ties by the
    sorted image ids, Assay by the images' order in the file, so a shuffled images list moved
    map by 0.005 and a class's ap_50 across a policy's limit (0.543 to 0.490). And image ids
    1 and "1" were two images that a result's image_id 1 named both."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_path = write_coco(tmp_path / "data", plates(60, seed=4))
    coco = json.loads(coco_path.read_text())
    rng = np.random.default_rng(5)
    dets = []
    for a in coco["annotations"]:  # each box found, jittered, plus a false alarm, scores tied
        x, y, w, h = a["bbox"]
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [x + rng.normal(0, 1.5), y + rng.normal(0, 1.5), w, h],
                     "score": round(float(rng.uniform()), 1)})  # fmt: skip
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [1.0, 1.0, 5.0, 5.0], "score": round(float(rng.uniform()), 1)})  # fmt: skip
    results = tmp_path / "results.json"
    results.write_text(json.dumps(dets))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes(dets), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    short = write_spec(tmp_path / "short.yaml", task="detection", labels=["spot"])
    home = tmp_path / "home"
    rng.shuffle(coco["images"])
    shuffled = coco_path.with_name("shuffled.json")
    shuffled.write_text(json.dumps(coco))
    assert assay(capsys, home, "dataset", "add", "plates", str(shuffled))[0] == 0
    assert assay(capsys, home, "model", "add", "rec", "--predictions", str(results), "--spec",
                 str(short))[0] == 0  # fmt: skip
    code, _, err = assay(capsys, home, "validate", "--model", "rec", "--dataset", "plates",
                         "--out", str(tmp_path / "out"), "--no-profile", "--no-explore")  # fmt: skip
    assert code in (0, 1), err
    metrics = result(tmp_path / "out")["metrics"]
    assert metrics["map"]["value"] == pytest.approx(e.stats[0], abs=1e-12)
    assert metrics["map_50"]["value"] == pytest.approx(e.stats[1], abs=1e-12)

    coco["images"][1]["id"] = str(coco["images"][0]["id"])
    twins = coco_path.with_name("twins.json")
    twins.write_text(json.dumps(coco))
    code, _, err = assay(capsys, home, "dataset", "add", "twins", str(twins))
    assert code == 2 and "ids must differ as text" in err, err


def test_confident_boxes_of_a_class_no_expert_marked_are_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: a detector with five boxes at 0.99 of a class absent from the expert boxes on
    every image (every image wrong) passed map_50 and per-class AP checks without a word, as
    AP leaves such a class out. The verdict names them now, as a warning."""
    coco_path = write_coco(tmp_path / "data", plates(40, seed=4))
    coco = json.loads(coco_path.read_text())
    coco["categories"].append({"id": 2, "name": "void"})
    coco_path.write_text(json.dumps(coco))
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in coco["annotations"]]  # fmt: skip
    dets += [{"image_id": im["id"], "category_id": 2, "bbox": [1.0, 1.0, 4.0, 4.0],
              "score": 0.99} for im in coco["images"]]  # fmt: skip
    results = tmp_path / "results.json"
    results.write_text(json.dumps(dets))
    spec = write_spec(tmp_path / "s.yaml", task="detection", labels=["spot", "void"])
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - metric: map_50\n    min: 0.5\n    evidence: point\n")
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "plates", str(coco_path))[0] == 0
    assert assay(capsys, home, "model", "add", "rec", "--predictions", str(results), "--spec",
                 str(spec))[0] == 0  # fmt: skip
    code, out, err = assay(capsys, home, "validate", "--model", "rec", "--dataset", "plates",
                           "--policy", str(policy), "--out", str(tmp_path / "out"),
                           "--no-profile", "--no-explore")  # fmt: skip
    assert code == 0, err  # a warning: map_50 is what the policy asked
    checks = {c["name"]: c for c in result(tmp_path / "out")["verdict"]["checks"]}
    unseen = checks["no boxes of classes the experts never marked"]
    assert unseen["status"] == "warn" and unseen["value"] == 40, unseen
    assert "void (40)" in out, out


def test_recorded_anomaly_scores_and_a_calibrated_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An anomaly model's recorded scores, calibrated on good items it also scored: the same
    threshold and numbers as the ONNX model that produced them."""
    from assay.datasets.images import decode_image

    test, good = plates(40, seed=20), plates(60, seed=21, max_defects=0)
    home = tmp_path / "home"
    model = anomaly_onnx(tmp_path / "ano.onnx", reference_image())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = []
    for name, items in (("plates", test), ("good", good)):
        manifest = write_mask_manifest(tmp_path / name, items)
        table = pacsv.read_csv(manifest)
        ids = [f"{name}-{k}" for k in range(table.num_rows)]  # unique across both datasets
        pacsv.write_csv(table.append_column("item", pa.array(ids)), manifest)
        assert (
            assay(capsys, home, "dataset", "add", name, str(manifest), "--id-column", "item")[0]
            == 0
        )
        x = np.stack(
            [
                decode_image(
                    str(tmp_path / name / "images" / i["name"]), None, (64, 64), "grayscale"
                )
                for i in items
            ]
        )
        (scores,) = session.run(
            ["score"], {"image": x.transpose(0, 3, 1, 2).astype(np.float32) / 255}
        )
        rows += [
            {"item_id": i, "score": float(v)} for i, v in zip(ids, np.ravel(scores), strict=True)
        ]
    spec = write_spec(
        tmp_path / "a.yaml",
        task="anomaly",
        labels=["good", "defect"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"score": "score", "map": "anomaly_map"},
    )
    assert assay(capsys, home, "model", "add", "ano", str(model), "--spec", str(spec))[0] == 0
    path = tmp_path / "scores.csv"
    pacsv.write_csv(pa.Table.from_pylist(rows), path)
    short = write_spec(tmp_path / "s.yaml", task="anomaly", labels=["good", "defect"])
    assert (
        assay(
            capsys, home, "model", "add", "device", "--predictions", str(path), "--spec", str(short)
        )[0]
        == 0
    )
    common = [
        "--dataset",
        "plates",
        "--calibration",
        "good",
        "--false-alarm-rate",
        "0.05",
        "--no-profile",
        "--no-explore",
        "--resamples",
        "100",
    ]
    assert assay(
        capsys, home, "validate", "--model", "ano", "--out", str(tmp_path / "onnx"), *common
    )[0] in (0, 1)
    code, _, err = assay(
        capsys, home, "validate", "--model", "device", "--out", str(tmp_path / "rec"), *common
    )
    assert code in (0, 1), err
    onnx, rec = result(tmp_path / "onnx"), result(tmp_path / "rec")
    assert rec["threshold"]["value"] == pytest.approx(onnx["threshold"]["value"], abs=1e-6)
    for name in ("image_auroc", "accuracy", "false_alarm_rate"):
        assert rec["metrics"][name]["value"] == pytest.approx(
            onnx["metrics"][name]["value"], abs=1e-6
        ), name
    # The file scores the test items and the calibration items: none is a stray (hostile review:
    # the 60 calibration scores were flagged as naming no item).
    assert rec["recorded_predictions"]["n_unmatched"] == 0
    assert rec["recorded_predictions"]["dataset"] == "plates@1 and good@1"


def test_agreement_with_a_baseline_that_judged_almost_nothing_is_no_evidence(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Hostile review: a baseline answering 10 of 2,000 items left decision_flips at 0 and the
    verdict PASS. The comparison of answers now needs the items both judged (max_unjudged)."""
    path = press["tmp"] / "sparse.parquet"
    pq.write_table(
        recorded(press).select(["item_id", "score_defect", "score_ok"]).slice(0, 10), path
    )
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "sparse",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    policy = press["tmp"] / "flips.yaml"
    policy.write_text("checks:\n  - decision_flips <= 0\n")
    code, _, err = validate(
        capsys, press, "good", "vs-sparse", "--baseline", "sparse", "--policy", str(policy)
    )
    assert code == 1, err
    checks = {c["metric"]: c for c in result(press["tmp"] / "vs-sparse")["verdict"]["checks"]}
    assert checks["items_not_compared"]["status"] == "fail"
    assert "10 of 2000 items judged by both models" in checks["items_not_compared"]["reason"]
    # Whose doing it is (a review read a baseline's NaNs as the candidate's fault).
    assert "(all the baseline's: it could not judge them)" in checks["items_not_compared"]["reason"]


def test_score_changes_against_a_baseline_without_scores_are_refused(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = press["tmp"] / "only-classes.csv"
    pacsv.write_csv(recorded(press).select(["item_id", "predicted"]), path)
    assert (
        assay(
            capsys,
            press["home"],
            "model",
            "add",
            "only-classes",
            "--predictions",
            str(path),
            "--spec",
            str(press["spec"]),
        )[0]
        == 0
    )
    policy = press["tmp"] / "loss.yaml"
    policy.write_text("checks:\n  - metric: log_loss\n    change: {max_regression: 0.01}\n")
    code, _, err = validate(
        capsys, press, "good", "vs-classes", "--baseline", "only-classes", "--policy", str(policy)
    )
    assert code == 2 and "no scores: the change of log_loss against it cannot be measured" in err


def test_a_labels_spec_needs_classes_and_odd_column_types_are_one_line(
    press: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    labels_spec = write_spec(
        press["tmp"] / "labels.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "recorded"},
        output={"kind": "labels"},
    )
    scores = press["tmp"] / "scores-only.parquet"
    pq.write_table(recorded(press).select(["item_id", "score_defect", "score_ok"]), scores)
    code, _, err = assay(
        capsys,
        press["home"],
        "model",
        "add",
        "x",
        "--predictions",
        str(scores),
        "--spec",
        str(labels_spec),
    )
    assert code == 2 and "output.kind is labels but the file has no predicted column" in err
    nested = press["tmp"] / "nested.parquet"
    pq.write_table(pa.table({"item_id": [[1], [2]], "predicted": ["ok", "ok"]}), nested)
    code, _, err = assay(
        capsys,
        press["home"],
        "model",
        "add",
        "x",
        "--predictions",
        str(nested),
        "--spec",
        str(labels_spec),
    )
    assert code == 2 and "column 'item_id' holds list<" in err, err


def test_a_recorded_run_stopped_part_way_and_resumed_equals_a_whole_one(
    press: dict[str, Path], tmp_path: Path
) -> None:
    """A killed process: positions after the checkpoint must still find their predictions (the
    bound file is read by the items' rows in the dataset, offset included)."""
    import pandas as pd

    from assay.core.config import ValidationConfig
    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.validation import resume_validation, validate
    from assay.services.workspace import Workspace

    config = ValidationConfig(batch_size=128, checkpoint_every_s=0, profile=False, n_resamples=200)
    table = recorded(press).select(["item_id", "score_defect", "score_ok"])
    path = tmp_path / "device.parquet"
    pq.write_table(table.take(np.random.default_rng(0).permutation(table.num_rows)), path)
    outcomes = []
    for name in ("resumed", "whole"):
        ws = Workspace.open(tmp_path / name)
        register_dataset(ws, "press", press["tmp"] / "press.csv")
        spec = {"labels": ["defect", "ok"], "negative": "ok", "input": {"kind": "recorded"}}
        register_model(ws, "device", path, spec, predictions=True)
        if name == "resumed":
            seen = 0

            def stop_part_way(n: int) -> None:
                nonlocal seen
                seen += 1
                if seen == 5:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                validate(ws, "device", "press", config=config, on_progress=stop_part_way)
            (run,) = ws.catalog.list_runs()
            assert run.status == "interrupted"
            outcomes.append(resume_validation(ws, run.id))
        else:
            outcomes.append(validate(ws, "device", "press", config=config))
    got, want = (o.result.to_dict() for o in outcomes)
    assert got["metrics"] == want["metrics"] and got["n_failed"] == want["n_failed"] == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(outcomes[0].run_dir / "predictions.parquet"),
        pd.read_parquet(outcomes[1].run_dir / "predictions.parquet"),
    )


def test_a_recorded_class_named_na_is_a_class_and_only_an_empty_field_is_none(
    tmp_path: Path,
) -> None:
    """As in a dataset's label column: a device's CSV naming the class NA (no anomaly) read it
    as a missing prediction."""
    from assay.runtimes.recorded import _read_table

    path = tmp_path / "p.csv"
    path.write_text("item_id,predicted,score_NA\nNA,NA,0.9\n2,,NA\n007,crack,0.1\n")
    table = _read_table(path)
    assert table.column("item_id").to_pylist() == ["NA", "2", "007"]
    assert table.column("predicted").to_pylist() == ["NA", None, "crack"]
    assert table.column("score_NA").to_pylist() == [0.9, None, 0.1]  # a number's NA is missing


def test_recorded_anomaly_scores_of_table_rows_are_calibrated_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: the README promised `--calibration` on good items a recorded scores file also
    scores, but a table's calibration set was refused ("holds no images")."""
    rng = np.random.default_rng(0)
    n, m = 300, 400
    labels = np.where(rng.uniform(size=n) < 0.3, "defect", "good")
    pq.write_table(pa.table({"id": [f"t{i}" for i in range(n)], "x": rng.normal(size=n),
                             "label": labels}), tmp_path / "test.parquet")  # fmt: skip
    pq.write_table(pa.table({"id": [f"c{i}" for i in range(m)], "x": rng.normal(size=m),
                             "label": ["good"] * m}), tmp_path / "cal.parquet")  # fmt: skip
    cal = rng.normal(0, 1, m)
    scores = np.where(labels == "defect", rng.normal(2, 1, n), rng.normal(0, 1, n))
    pq.write_table(pa.table({"item_id": [f"t{i}" for i in range(n)] + [f"c{i}" for i in range(m)],
                             "score": np.r_[scores, cal]}), tmp_path / "scores.parquet")  # fmt: skip
    spec = write_spec(tmp_path / "s.yaml", task="anomaly", labels=["good", "defect"])
    home = tmp_path / "home"
    for name in ("test", "cal"):
        assert assay(capsys, home, "dataset", "add", name, str(tmp_path / f"{name}.parquet"),
                     "--id-column", "id")[0] == 0  # fmt: skip
    assert assay(capsys, home, "model", "add", "rec", "--predictions",
                 str(tmp_path / "scores.parquet"), "--spec", str(spec))[0] == 0  # fmt: skip
    code, _, err = assay(capsys, home, "validate", "--model", "rec", "--dataset", "test",
                         "--calibration", "cal", "--false-alarm-rate", "0.05", "--no-profile",
                         "--out", str(tmp_path / "out"))  # fmt: skip
    assert code in (0, 1), err
    threshold = result(tmp_path / "out")["threshold"]
    k = int(np.ceil((m + 1) * 0.95))
    assert threshold["value"] == pytest.approx(float(np.sort(cal)[k - 1]))
    assert threshold["n_calibration"] == m


def test_a_calibration_table_of_test_rows_in_another_column_order_is_seen(
    tmp_path: Path,
) -> None:
    """Review: the overlap check compared the rows' stored digests, which follow the table's
    column order: the test's good rows exported with their columns in another order (or with
    a column added) as a calibration set passed as 'no item in the calibration set'."""
    from assay.services.calibration import overlap_check
    from assay.services.datasets import get_dataset, register_dataset
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(1)
    n = 200
    labels = np.where(rng.uniform(size=n) < 0.3, "defect", "good")
    test = pa.table({"id": [f"t{i}" for i in range(n)], "x": rng.normal(size=n),
                     "y": rng.normal(size=n), "label": labels})  # fmt: skip
    pq.write_table(test, tmp_path / "test.parquet")
    copy = test.set_column(0, "id", pa.array([f"c{i}" for i in range(n)]))
    pq.write_table(copy.select(["y", "label", "id", "x"]), tmp_path / "reordered.parquet")
    pq.write_table(copy.append_column("camera", pa.array(["c1"] * n)), tmp_path / "added.parquet")
    ws = Workspace.open(tmp_path / "home")
    for name in ("test", "reordered", "added"):
        register_dataset(ws, name, tmp_path / f"{name}.parquet", id_column="id")
    for name in ("reordered", "added"):
        check = overlap_check(get_dataset(ws, "test"), get_dataset(ws, name), "good")
        assert (name, check.status, check.value) == (name, "fail", float((labels == "good").sum()))
