"""Export equivalence on the real datasets: one PyTorch model, trained here on SECOM and on
NEU-DET, shipped as TorchScript, ONNX, OpenVINO IR (FP32 and FP16), ONNX read by OpenVINO, and
ONNX quantised to INT8 by onnxruntime's static quantisation. Each is validated through the CLI
against its ONNX twin as the baseline, with an equivalence policy.

Stated tolerances (max |Δscore| against the ONNX twin): FP32 formats 1e-5; FP16 IR 1e-2. INT8 is
not held to a tolerance: what it changes is reported, and a strict policy stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from tests.models import write_spec
from tests.real_datasets import neu_det, secom

torch_models = pytest.importorskip("tests.torch_models")

FP32_TOLERANCE = 1e-5
FP16_TOLERANCE = 1e-2


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def quantised(onnx: Path, calibration: np.ndarray, out: Path) -> Path:
    """onnxruntime's static INT8 quantisation (QDQ), calibrated on real items."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(calibration[i : i + 16] for i in range(0, len(calibration), 16))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.rows, None)
            return None if batch is None else {"input": batch.astype(np.float32)}

    # The layers with weights, as edge toolchains do; the softmax stays in float (quantised, its
    # rows would not sum to one, and Assay would rightly judge no item).
    quantize_static(
        str(onnx),
        str(out),
        Reader(),
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
    )
    return out


def validate_twins(
    capsys: pytest.CaptureFixture[str],
    home: Path,
    tmp: Path,
    dataset: str,
    files: dict[str, Path],
    spec: Path,
) -> dict[str, dict[str, Any]]:
    """Register every file, validate each against the ONNX twin; the results by name."""
    policy = tmp / "equivalence.yaml"
    policy.write_text(
        f"checks:\n  - max_abs_score_diff <= {FP32_TOLERANCE}\n  - decision_flips <= 0\n"
    )
    for name, path in files.items():
        extra = ["--runtime", "openvino"] if name == "openvino-onnx" else []
        code, _, err = assay(
            capsys, home, "model", "add", name, str(path), "--spec", str(spec), *extra
        )
        assert code == 0, (name, err)
    common = ["--dataset", dataset, "--no-profile", "--no-explore", "--resamples", "100"]
    onnx_run = tmp / "run-onnx"
    assert assay(capsys, home, "validate", "--model", "onnx", "--out", str(onnx_run), *common)[
        0
    ] in (0, 1)
    # What a device running the ONNX model would have recorded: its predictions file.
    code, _, err = assay(
        capsys, home, "model", "add", "recorded", "--predictions",
        str(onnx_run / "predictions.parquet"), "--spec", str(spec),
    )  # fmt: skip
    assert code == 0, err
    out: dict[str, dict[str, Any]] = {}
    for name in [*files, "recorded"]:
        if name == "onnx":
            continue
        folder = tmp / f"run-{name}"
        code, printed, err = assay(
            capsys,
            home,
            "validate",
            "--model",
            name,
            "--baseline",
            "onnx",
            "--policy",
            str(policy),
            "--out",
            str(folder),
            *common,
        )
        assert code in (0, 1), (name, err)
        result = json.loads((folder / "result.json").read_text())
        out[name] = {"code": code, "result": result, "dir": folder, "printed": printed}
    return out


@contextlib.contextmanager
def in_mlflow(tmp: Path, onnx: Path, name: str, shape: tuple[int, ...]) -> Iterator[str]:
    """The ONNX twin logged to a real MLflow registry under the alias champion."""
    from tests.mlflow_server import log_onnx_model, running_mlflow

    with running_mlflow(tmp / "mlflow") as url:
        log_onnx_model(url, onnx, name, "champion", shape)
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = url
        try:
            yield f"models:/{name}@champion"
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous


@contextlib.contextmanager
def running_mlserver_of(tmp: Path, onnx: Path, name: str) -> Iterator[str]:
    """The ONNX twin served by MLServer (onnxruntime inside it): the endpoint's twin."""
    from tests.mlserver import running_mlserver, serve_onnx

    serve_onnx(tmp / "served", name, onnx)
    with running_mlserver(tmp / "served") as url:
        yield f"{url}/v2/models/{name}"


def check_twins(runs: dict[str, dict[str, Any]], labels: list[str]) -> None:
    registry = runs["registry"]["result"]["comparison"]["score_differences"]
    assert registry["any_class"]["max"] == 0.0  # the same ONNX file, through the registry
    recorded = runs["recorded"]["result"]["comparison"]["score_differences"]
    # Equal up to the last bit of a renormalised float64 (the file holds the scores as judged).
    assert recorded["any_class"]["max"] <= 1e-12 and recorded["n_decision_flips"] == 0
    for name in ("torchscript", "openvino", "openvino-onnx"):
        diff = runs[name]["result"]["comparison"]["score_differences"]
        assert diff["any_class"]["max"] <= FP32_TOLERANCE, (name, diff["any_class"])
        assert diff["n_decision_flips"] == 0, name
        assert runs[name]["code"] == 0, runs[name]["printed"]
        assert runs[name]["result"]["verdict"]["status"] == "pass"
    fp16 = runs["openvino-fp16"]["result"]["comparison"]["score_differences"]
    assert FP32_TOLERANCE < fp16["any_class"]["max"] <= FP16_TOLERANCE  # measurably not FP32
    int8 = runs["int8"]["result"]["comparison"]["score_differences"]
    assert int8["any_class"]["max"] > fp16["any_class"]["max"]
    assert int8["any_class"]["p99"] <= int8["any_class"]["max"]
    assert set(int8["by_class"]) == set(labels)
    assert runs["int8"]["code"] == 1  # the strict policy stops the quantised model...
    failed = {
        c["metric"] for c in runs["int8"]["result"]["verdict"]["checks"] if c["status"] == "fail"
    }
    assert "max_abs_score_diff" in failed  # ...on the number that moved
    if int8["n_decision_flips"]:
        examples = int8["flipped_examples"]
        assert examples and all(e["label"] != e["predicted"] for e in examples)
        assert examples == sorted(examples, key=lambda e: (-e["confidence"], e["item_id"]))


def reference_differences(a: Path, b: Path, labels: list[str]) -> np.ndarray:
    """|Δscore| per item and class, from the two predictions files (numpy, not Assay)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    ok = np.array(
        [
            x is None and y is None
            for x, y in zip(
                ta.column("error").to_pylist(), tb.column("error").to_pylist(), strict=True
            )
        ]
    )
    sa = np.stack([np.asarray(ta.column(f"score_{label}")) for label in labels], axis=1)
    sb = np.stack([np.asarray(tb.column(f"score_{label}")) for label in labels], axis=1)
    return np.abs(sa - sb)[ok]


def test_secom_twins_agree_and_int8_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, x, y = secom()
    labels = ["pass", "fail"]
    target = (y == "fail").astype(np.int64)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[~(scale > 0)] = 1.0
    mean[~np.isfinite(mean)] = 0.0
    module = torch_models.fit(torch_models.Tabular(mean, scale, 2), np.nan_to_num(x, nan=0), target)
    files = torch_models.export_all(module, x[:4].astype(np.float32), tmp_path / "m", "secom")
    files["int8"] = quantised(
        files["onnx"], np.nan_to_num(x[:256], nan=0), tmp_path / "m" / "secom-int8.onnx"
    )
    files["openvino-onnx"] = files["onnx"]
    spec = write_spec(
        tmp_path / "secom.yaml",
        labels=labels,
        negative="pass",
        input={
            "kind": "tabular",
            "columns": [f"f{j:03d}" for j in range(x.shape[1])],
            "missing": "allow",
        },
    )
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "secom", str(root))[0] == 0
    with in_mlflow(tmp_path, files["onnx"], "secom", (x.shape[1],)) as uri:
        files["registry"] = uri  # type: ignore[assignment]
        runs = validate_twins(capsys, home, tmp_path, "secom", files, spec)
    check_twins(runs, labels)
    # The reported numbers are numpy's, from the two predictions files (the FP32 IR stands in
    # for the ONNX twin: they agree within 1e-5).
    int8 = runs["int8"]
    diff = int8["result"]["comparison"]["score_differences"]
    ours = reference_differences(
        int8["dir"] / "predictions.parquet", runs["openvino"]["dir"] / "predictions.parquet", labels
    )
    # Against the FP32 IR (within 1e-5 of the twin): the same maximum to that tolerance.
    assert diff["any_class"]["max"] == pytest.approx(float(ours.max()), abs=2 * FP32_TOLERANCE)
    exact_p99 = float(np.quantile(ours.max(axis=1), 0.99, method="higher"))
    assert (
        exact_p99 - 2 * FP32_TOLERANCE
        <= diff["any_class"]["p99"]
        <= exact_p99 * 1.05 + 2 * FP32_TOLERANCE
    )


def test_neu_det_twins_agree_and_int8_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = (64, 64)
    root, _, x, y = neu_det(size)
    labels = sorted(set(y.tolist()))
    target = np.array([labels.index(v) for v in y])
    images = x.reshape(-1, 1, *size)
    module = torch_models.fit(torch_models.SmallCnn(len(labels)), images, target, steps=25)
    files = torch_models.export_all(module, images[:2], tmp_path / "m", "neu")
    files["int8"] = quantised(files["onnx"], images[::30], tmp_path / "m" / "neu-int8.onnx")
    files["openvino-onnx"] = files["onnx"]
    spec = write_spec(
        tmp_path / "neu.yaml",
        labels=labels,
        input={"kind": "image", "size": list(size), "color": "grayscale", "layout": "NCHW"},
        output={"kind": "probabilities"},
    )
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "neu", str(root))[0] == 0
    with (
        running_mlserver_of(tmp_path, files["onnx"], "neu") as url,
        in_mlflow(tmp_path, files["onnx"], "neu", (1, *size)) as uri,
    ):
        files["served"] = url  # type: ignore[assignment]
        files["registry"] = uri  # type: ignore[assignment]
        runs = validate_twins(capsys, home, tmp_path, "neu", files, spec)
    check_twins(runs, labels)
    served = runs["served"]["result"]["comparison"]["score_differences"]
    assert served["any_class"]["max"] <= FP32_TOLERANCE and served["n_decision_flips"] == 0
    accuracy = runs["torchscript"]["result"]["metrics"]["accuracy"]["value"]
    assert accuracy > 1 / len(labels)  # a model that learnt something: flips would matter
