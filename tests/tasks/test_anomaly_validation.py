"""Anomaly detection through ``assay validate``: image and pixel metrics against scikit-learn and
the MVTec AUPRO formula, the conformal threshold from a calibration set, and the hostile cases
(calibration overlapping the test, no threshold, NaN maps)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from assay.cli.main import main
from assay.datasets.images import decode_image
from assay.demo.vision_models import anomaly_onnx
from tests.core.tasks.test_pixel_anomaly import mvtec_aupro
from tests.models import write_spec
from tests.vision_data import plates, reference_image, write_mask_manifest


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def anomaly_spec(path: Path, **extra: Any) -> Path:
    return write_spec(
        path,
        task="anomaly",
        labels=["good", "defect"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"score": "score", "map": "anomaly_map"},
        **extra,
    )


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    test = plates(50, seed=10)
    good = plates(100, seed=11, max_defects=0)
    home = tmp_path / "home"
    assay(
        capsys, home, "dataset", "add", "plates", str(write_mask_manifest(tmp_path / "test", test))
    )
    assay(capsys, home, "dataset", "add", "good", str(write_mask_manifest(tmp_path / "cal", good)))
    model = anomaly_onnx(tmp_path / "ano.onnx", reference_image())
    assert (
        assay(
            capsys,
            home,
            "model",
            "add",
            "ano",
            str(model),
            "--spec",
            str(anomaly_spec(tmp_path / "a.yaml")),
        )[0]
        == 0
    )
    return {"home": home, "tmp": tmp_path, "test": test, "good": good, "model": model}


def outputs(
    model: Path, folder: Path, items: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """The reference run: onnxruntime on the images as Assay decodes them."""
    x = np.stack(
        [
            decode_image(str(folder / "images" / i["name"]), None, (64, 64), "grayscale")
            for i in items
        ]
    )
    maps, scores = ort.InferenceSession(str(model)).run(
        ["anomaly_map", "score"], {"image": x.transpose(0, 3, 1, 2).astype(np.float32) / 255}
    )
    return maps[:, 0], scores


def test_anomaly_metrics_and_calibrated_threshold_equal_their_references(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = setup["tmp"]
    code, out, err = assay(
        capsys,
        setup["home"],
        "validate",
        "--model",
        "ano",
        "--dataset",
        "plates",
        "--calibration",
        "good",
        "--false-alarm-rate",
        "0.05",
        "--out",
        str(tmp / "out"),
        "--no-profile",
        "--resamples",
        "200",
    )
    assert code in (0, 1), err
    assert "image_auroc" in out and "aupro" in out
    assert "(calibrated for a 5.00% false-alarm rate on 100 good items)" in out
    result = json.loads((tmp / "out" / "result.json").read_text())
    maps, scores = outputs(setup["model"], tmp / "test", setup["test"])
    _, cal_scores = outputs(setup["model"], tmp / "cal", setup["good"])
    # Conformal threshold: the ceil((n + 1)(1 - 0.05))-th smallest good calibration score.
    k = math.ceil((len(cal_scores) + 1) * 0.95)
    threshold = result["threshold"]
    assert threshold["value"] == pytest.approx(float(np.sort(cal_scores)[k - 1]), rel=1e-5)
    assert threshold["target_false_alarm_rate"] == 0.05 and threshold["n_calibration"] == 100
    anomalous = np.array([bool(i["boxes"]) for i in setup["test"]])
    metrics = result["metrics"]
    assert metrics["image_auroc"]["value"] == pytest.approx(roc_auc_score(anomalous, scores))
    assert metrics["image_aupr"]["value"] == pytest.approx(
        average_precision_score(anomalous, scores)
    )
    p, r, _ = precision_recall_curve(anomalous, scores)
    assert metrics["f1_max"]["value"] == pytest.approx(
        np.max(2 * p * r / np.maximum(p + r, 1e-300))
    )
    pixels = np.stack([i["mask"] for i in setup["test"]]) > 0
    assert metrics["pixel_auroc"]["value"] == pytest.approx(
        roc_auc_score(pixels.ravel(), maps.ravel()), abs=2e-3
    )
    assert metrics["aupro"]["value"] == pytest.approx(
        mvtec_aupro(list(maps), list(pixels.astype(np.uint8))), abs=2e-3
    )
    rows = {r["item_id"]: r for r in pq.read_table(tmp / "out" / "predictions.parquet").to_pylist()}
    for k_ in range(len(setup["test"])):
        row = rows[str(k_)]
        # float32 inputs scaled as Assay does them, not as this reference: rounding apart.
        assert row["anomaly_score"] == pytest.approx(float(scores[k_]), rel=1e-5)
        assert row["predicted"] == (
            "defect" if row["anomaly_score"] > threshold["value"] else "good"
        )
    called = np.array([rows[str(k_)]["anomaly_score"] > threshold["value"] for k_ in range(50)])
    fa = metrics["false_alarm_rate"]
    assert fa["value"] == pytest.approx((called & ~anomalous).sum() / (~anomalous).sum())
    assert fa["ci_low"] <= fa["value"] <= fa["ci_high"]
    checks = {c["name"]: c["status"] for c in result["verdict"]["checks"]}
    assert checks["calibration and test items are different images"] == "pass"


def test_calibrating_on_test_images_fails_the_verdict(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = assay(
        capsys,
        setup["home"],
        "validate",
        "--model",
        "ano",
        "--dataset",
        "plates",
        "--calibration",
        "plates",
        "--false-alarm-rate",
        "0.05",
        "--out",
        str(setup["tmp"] / "o2"),
        "--no-profile",
    )
    assert code == 1
    result = json.loads((setup["tmp"] / "o2" / "result.json").read_text())
    check = next(c for c in result["verdict"]["checks"] if c["metric"] == "calibration_overlap")
    # The good ones: the threshold was set on them (its defects were left out of it).
    n_good = sum(not i["boxes"] for i in setup["test"])
    assert check["status"] == "fail" and check["value"] == float(n_good) > 0
    assert result["verdict"]["status"] == "fail"


def test_calibration_copies_are_refused_and_its_defects_are_not_seen_by_the_threshold(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: one good scan listed 150 times calibrated a "2%" threshold that flagged 20% of
    the test's good images, and the verdict passed; and defects of the test set in a
    calibration set, left out of the threshold, failed the overlap check as seen by it."""
    tmp, home = setup["tmp"], setup["home"]
    one = setup["good"][0]
    copies = [dict(one, name=f"copy{k}.png") for k in range(60)]
    assay(capsys, home, "dataset", "add", "copies",
          str(write_mask_manifest(tmp / "copies", copies)))  # fmt: skip
    code, _, err = assay(capsys, home, "validate", "--model", "ano", "--dataset", "plates",
                         "--calibration", "copies", "--false-alarm-rate", "0.05", "--no-profile")  # fmt: skip
    assert code == 2 and "59 good item(s) that repeat another one's content" in err, err

    defects = [dict(i, name=f"d-{i['name']}") for i in setup["test"] if i["boxes"]]
    assay(capsys, home, "dataset", "add", "mixed",
          str(write_mask_manifest(tmp / "mixed", setup["good"] + defects)))  # fmt: skip
    code, out, err = assay(capsys, home, "validate", "--model", "ano", "--dataset", "plates",
                           "--calibration", "mixed", "--false-alarm-rate", "0.05", "--no-profile",
                           "--out", str(tmp / "o3"))  # fmt: skip
    assert code in (0, 1), err
    assert f"on 100 good items; {len(defects)} not good left out)" in out, out  # said, not hidden
    result = json.loads((tmp / "o3" / "result.json").read_text())
    check = next(c for c in result["verdict"]["checks"] if c["metric"] == "calibration_overlap")
    assert check["status"] == "pass", check


def test_an_anomaly_model_without_threshold_or_calibration_is_refused(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = assay(
        capsys, setup["home"], "validate", "--model", "ano", "--dataset", "plates", "--no-profile"
    )
    assert code == 2 and "has no threshold" in err and len(err.strip().splitlines()) == 1
    code, _, err = assay(
        capsys,
        setup["home"],
        "validate",
        "--model",
        "ano",
        "--dataset",
        "plates",
        "--calibration",
        "good",
        "--false-alarm-rate",
        "0.001",
        "--no-profile",
    )
    assert code == 2 and "cannot promise a 0.10% false-alarm rate" in err


def test_a_fixed_threshold_and_nan_maps(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, home = setup["tmp"], setup["home"]
    assay(
        capsys,
        home,
        "model",
        "add",
        "fixed",
        str(setup["model"]),
        "--spec",
        str(anomaly_spec(tmp / "f.yaml", threshold=0.05)),
    )
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "fixed",
        "--dataset",
        "plates",
        "--out",
        str(tmp / "o3"),
        "--no-profile",
    )
    assert code in (0, 1), err
    result = json.loads((tmp / "o3" / "result.json").read_text())
    assert result["threshold"] == {
        "value": 0.05,
        "method": "fixed in the model's spec",
        "target_false_alarm_rate": None,
    }
    nan_model = anomaly_onnx(tmp / "nan.onnx", np.full((64, 64), np.nan, np.float32))
    assay(
        capsys,
        home,
        "model",
        "add",
        "nan",
        str(nan_model),
        "--spec",
        str(anomaly_spec(tmp / "n.yaml", threshold=0.05)),
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
        str(tmp / "o4"),
        "--no-profile",
    )
    assert code == 1
    result = json.loads((tmp / "o4" / "result.json").read_text())
    assert result["n_failed"] == 50
    assert result["failures"]["by_reason"] == {
        "model output is not finite (NaN or infinite anomaly score or map)": 50
    }
    assert result["metrics"]["image_auroc"]["value"] is None


def test_calibration_applies_to_anomaly_models_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.models import registered_table_model

    paths = registered_table_model(tmp_path)
    home = paths["home"]
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "m",
        "--dataset",
        "t",
        "--calibration",
        "t",
        "--no-profile",
    )
    assert code == 2 and "--calibration applies to anomaly models" in err


def test_image_auroc_aupr_and_f1_max_changes_have_paired_intervals(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A change check on an anomaly model's image numbers was refused under evidence: confident
    (no paired interval). Both runs' raw anomaly scores are now compared on the images both
    judged: the estimates equal each run's own, and 'no regression' passes the model that
    ranks the plates and fails the one that compares them with a defect's grey level."""
    import yaml

    tmp, home = setup["tmp"], setup["home"]
    blind = anomaly_onnx(tmp / "blind.onnx", np.full((64, 64), 230 / 255, np.float32))
    for name, model in (("sharp", setup["model"]), ("blind", blind)):
        spec = anomaly_spec(tmp / f"{name}.yaml", threshold=0.2)
        assert assay(capsys, home, "model", "add", name, str(model), "--spec", str(spec))[0] == 0
    policy = tmp / "policy.yaml"
    names = ("image_auroc", "image_aupr", "f1_max")
    policy.write_text(yaml.safe_dump({"checks": [
        {"metric": m, "change": {"max_regression": 0.02}} for m in names]}))  # fmt: skip
    found = {}
    for cand, base in (("sharp", "blind"), ("blind", "sharp")):
        out = tmp / f"vs-{cand}"
        code, _, err = assay(capsys, home, "validate", "--model", cand, "--dataset", "plates",
                             "--baseline", base, "--policy", str(policy), "--out", str(out),
                             "--no-profile", "--resamples", "300")  # fmt: skip
        assert code in (0, 1), err
        result = json.loads((out / "result.json").read_text())
        for name in names:
            d = result["comparison"]["deltas"][name]
            assert d["candidate"] == pytest.approx(result["metrics"][name]["value"], abs=1e-12)
            assert d["ci_low"] <= d["delta"] <= d["ci_high"], (name, d)
        statuses = {c["metric"]: c["status"] for c in result["verdict"]["checks"]}
        found[cand] = (code, [statuses[n] for n in names])
    assert found["sharp"] == (0, ["pass"] * 3), found
    markdown = (tmp / "vs-sharp" / "verdict.md").read_text()
    assert "| Image AUROC | " in markdown and "| F1-max | " in markdown, markdown
    assert found["blind"] == (1, ["fail"] * 3), found


def test_a_candidate_scoring_nan_everywhere_passes_no_change_check(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A candidate whose every score is NaN judged nothing: its changes against the baseline
    have no value and the policy fails, with the items both models judged named, not a crash
    and never a pass."""
    import yaml

    tmp, home = setup["tmp"], setup["home"]
    nan_model = anomaly_onnx(tmp / "nan.onnx", np.full((64, 64), np.nan, np.float32))
    for name, model in (("nan", nan_model), ("sharp", setup["model"])):
        spec = anomaly_spec(tmp / f"{name}.yaml", threshold=0.2)
        assert assay(capsys, home, "model", "add", name, str(model), "--spec", str(spec))[0] == 0
    policy = tmp / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [
        {"metric": m, "change": {"max_regression": 0.02}}
        for m in ("image_auroc", "image_aupr", "f1_max")]}))  # fmt: skip
    code, _, err = assay(capsys, home, "validate", "--model", "nan", "--dataset", "plates",
                         "--baseline", "sharp", "--policy", str(policy), "--out", str(tmp / "o"),
                         "--no-profile")  # fmt: skip
    assert code == 1 and "internal error" not in err, err
    result = json.loads((tmp / "o" / "result.json").read_text())
    assert result["verdict"]["status"] == "fail"
    statuses = {c["metric"]: c["status"] for c in result["verdict"]["checks"]}
    assert statuses["items_not_compared"] == "fail"
    for name in ("image_auroc", "image_aupr", "f1_max"):
        assert statuses[name] != "pass", (name, statuses)
        assert result["comparison"]["deltas"][name]["delta"] is None


def test_a_dataset_writing_the_good_class_otherwise_is_refused(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: a folder of OK and defect images against a spec whose good class is 'good':
    every OK image counted as a defect, a model right on every image missed half the
    'defects', and a model flagging everything passed missed_defect_rate <= 0.1. Refused, as
    a calibration set with no 'good' item but OK ones; named as the dataset writes it, it runs."""
    home, tmp = setup["home"], setup["tmp"]
    for name, items in (("plates_ok", setup["test"]), ("good_ok", setup["good"])):
        labels = {i["name"]: "OK" for i in items if not i["boxes"]}
        path = write_mask_manifest(tmp / name, items, labels)
        assert assay(capsys, home, "dataset", "add", name, str(path))[0] == 0
    fixed = anomaly_spec(tmp / "fixed.yaml", threshold=0.5)
    assert assay(capsys, home, "model", "add", "fixed", str(setup["model"]), "--spec",
                 str(fixed))[0] == 0  # fmt: skip
    args = ["validate", "--model", "fixed", "--no-profile", "--no-explore"]
    code, _, err = assay(capsys, home, *args, "--dataset", "plates_ok")
    assert code == 2 and "no item labelled 'good'" in err and "good: 'OK' in the spec" in err, err
    code, _, err = assay(capsys, home, "validate", "--model", "ano", "--dataset", "plates",
                         "--calibration", "good_ok", "--no-profile")  # fmt: skip
    assert code == 2 and "'OK' reads as good" in err, err
    named = anomaly_spec(tmp / "named.yaml", threshold=0.5, good="OK")
    named.write_text(named.read_text().replace("- good", "- OK"))
    code, _, err = assay(capsys, home, "model", "add", "named", str(setup["model"]), "--spec",
                         str(named))  # fmt: skip
    assert code == 0, err
    code, _, err = assay(capsys, home, "validate", "--model", "named", "--no-profile",
                           "--no-explore", "--dataset", "plates_ok")  # fmt: skip
    assert code in (0, 1), err


def test_a_coarse_map_is_judged_at_the_masks_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: expert masks were shrunk to the anomaly map, so small regions dropped out of
    AUPRO and region recall, and an 8 x 8 map beat its own 64 x 64 original. The map is
    enlarged to the mask (bilinear, as anomalib does) and every region counts."""
    torch = pytest.importorskip("torch")
    test = plates(40, seed=12)
    home = tmp_path / "home"
    assay(capsys, home, "dataset", "add", "plates",
          str(write_mask_manifest(tmp_path / "test", test)))  # fmt: skip
    size = (16, 16)
    model = anomaly_onnx(tmp_path / "small.onnx", np.full(size, 128 / 255, np.float32))
    spec = write_spec(tmp_path / "s.yaml", task="anomaly", labels=["good", "defect"],
                      input={"kind": "image", "size": list(size), "color": "grayscale"},
                      output={"score": "score", "map": "anomaly_map"}, threshold=0.2)  # fmt: skip
    assert assay(capsys, home, "model", "add", "small", str(model), "--spec", str(spec))[0] == 0
    code, _, err = assay(capsys, home, "validate", "--model", "small", "--dataset", "plates",
                         "--out", str(tmp_path / "out"), "--no-profile", "--resamples", "100")  # fmt: skip
    assert code in (0, 1), err
    x = np.stack([decode_image(str(tmp_path / "test" / "images" / i["name"]), None, size,
                               "grayscale") for i in test])  # fmt: skip
    (maps,) = ort.InferenceSession(str(model)).run(
        ["anomaly_map"], {"image": x.transpose(0, 3, 1, 2).astype(np.float32) / 255}
    )
    enlarged = torch.nn.functional.interpolate(
        torch.from_numpy(maps.astype(np.float64)), size=(64, 64), mode="bilinear",
        align_corners=False,
    )[:, 0].numpy()  # fmt: skip
    pixels = np.stack([i["mask"] for i in test]) > 0
    metrics = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    assert metrics["pixel_auroc"]["value"] == pytest.approx(
        roc_auc_score(pixels.ravel(), enlarged.ravel()), abs=2e-3
    )
    assert metrics["aupro"]["value"] == pytest.approx(
        mvtec_aupro(list(enlarged), list(pixels.astype(np.uint8))), abs=2e-3
    )


def test_bilinear_resizing_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    from assay.core.tasks.segmentation.task import resize_bilinear

    rng = np.random.default_rng(0)
    for shape, target in (((8, 8), (64, 64)), ((13, 7), (40, 29)), ((64, 64), (16, 16))):
        values = rng.normal(size=shape)
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(values)[None, None], size=target, mode="bilinear",
            align_corners=False,
        )[0, 0].numpy()  # fmt: skip
        np.testing.assert_allclose(resize_bilinear(values, target), expected, atol=1e-12)


def test_good_images_without_a_mask_are_normal_everywhere(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: MVTec AD gives good images no mask; with the cell empty, 112 of 300 images were
    'no expert mask for this image', not judged, and the verdict failed. A good image's missing
    mask is normal everywhere; a defect's is still not judged."""
    tmp, home = setup["tmp"], setup["home"]
    manifest = tmp / "test" / "manifest.csv"
    lines = manifest.read_text().splitlines()
    blank = [lines[0]] + [
        ",".join([f[0], "" if f[2] == "good" or k == 1 else f[1], *f[2:]])
        for k, f in enumerate(line.split(",") for line in lines[1:])
    ]
    (tmp / "test" / "mvtec.csv").write_text("\n".join(blank) + "\n")
    assay(capsys, home, "dataset", "add", "mvtec", str(tmp / "test" / "mvtec.csv"))
    code, _, err = assay(capsys, home, "validate", "--model", "ano", "--dataset", "mvtec",
                         "--calibration", "good", "--false-alarm-rate", "0.05", "--no-profile",
                         "--out", str(tmp / "o4"))  # fmt: skip
    assert code in (0, 1), err
    result = json.loads((tmp / "o4" / "result.json").read_text())
    n_defect_without = int(lines[2].split(",")[2] != "good")  # item 1: a defect's mask blanked
    assert result["n_failed"] == n_defect_without
    maps, _ = outputs(setup["model"], tmp / "test", setup["test"])
    keep = [k for k in range(len(setup["test"])) if not (k == 1 and n_defect_without)]
    pixels = np.stack([setup["test"][k]["mask"] for k in keep]) > 0
    assert result["metrics"]["pixel_auroc"]["value"] == pytest.approx(
        roc_auc_score(pixels.ravel(), maps[keep].ravel()), abs=2e-3
    )
