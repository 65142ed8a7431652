"""Datasets, models and run artifacts behind s3:// URLs, against a local S3-compatible server
(moto in server mode on 127.0.0.1; never a real cloud)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import main
from tests.models import brightness_onnx, tabular_onnx, write_spec
from tests.real_datasets import secom
from tests.web.conftest import SIZE, bright_and_dark

BUCKET = "plant-7"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ASSAY_FSSPEC_OPTIONS": json.dumps({"s3": {"endpoint_url": endpoint}}),
    }.items():
        monkeypatch.setenv(key, value)
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    if not fs.exists(BUCKET):  # moto keeps its state per process, across servers
        fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()


def test_secom_and_a_model_from_s3_with_artifacts_back_to_s3(s3: object, tmp_path: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs = s3
    root, x, y = secom()
    for name in ("secom.data", "secom_labels.data"):
        fs.put(str(root / name), f"{BUCKET}/secom/{name}")  # type: ignore[attr-defined]
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)).fit(
        np.nan_to_num(x[::2]).astype(np.float32), y[::2]
    )
    onnx = tabular_onnx(model, x.shape[1], tmp_path / "secom.onnx")
    fs.put(str(onnx), f"{BUCKET}/models/secom.onnx")  # type: ignore[attr-defined]
    spec = write_spec(
        tmp_path / "secom.yaml",
        labels=[str(c) for c in model.classes_],
        input={
            "kind": "tabular",
            "columns": [f"f{j:03d}" for j in range(x.shape[1])],
            "missing": "allow",
        },
        positive="fail",
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "secom", f"s3://{BUCKET}/secom", "--home", home]) == 0
    assert (
        main(["dataset", "add", "secom", f"s3://{BUCKET}/secom", "--home", home]) == 0
    )  # unchanged
    assert (
        main(
            [
                "model",
                "add",
                "m",
                f"s3://{BUCKET}/models/secom.onnx",
                "--spec",
                str(spec),
                "--home",
                home,
            ]
        )
        == 0
    )
    run = ["validate", "--model", "m", "--dataset", "secom", "--no-profile", "--home", home]
    assert main([*run, "--out", f"s3://{BUCKET}/runs/first"]) == 0
    assert main([*run, "--out", str(tmp_path / "local")]) == 0
    remote = json.loads(fs.cat(f"{BUCKET}/runs/first/result.json"))  # type: ignore[attr-defined]
    local = json.loads((tmp_path / "local" / "result.json").read_text())
    assert remote["n_items"] == local["n_items"] == len(y)
    assert remote["metrics"] == local["metrics"] and remote["dataset"]["number"] == 1
    names = {Path(p).name for p in fs.ls(f"{BUCKET}/runs/first")}  # type: ignore[attr-defined]
    assert {"report.html", "result.json", "predictions.parquet"} <= names
    assert main(["dataset", "add", "nope", f"s3://{BUCKET}/missing", "--home", home]) == 2


def test_image_folder_from_s3(s3: object, tmp_path: Path) -> None:
    fs = s3
    folder = bright_and_dark(tmp_path / "scans")
    fs.put(str(folder), f"{BUCKET}/scans", recursive=True)  # type: ignore[attr-defined]
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "image", "size": list(SIZE), "color": "grayscale"},
    )
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "scans", f"s3://{BUCKET}/scans", "--home", home]) == 0
    assert (
        main(
            [
                "model",
                "add",
                "b",
                str(brightness_onnx(tmp_path / "b.onnx", SIZE)),
                "--spec",
                str(spec),
                "--home",
                home,
            ]
        )
        == 0
    )
    out = tmp_path / "run"
    assert (
        main(
            [
                "validate",
                "--model",
                "b",
                "--dataset",
                "scans",
                "--no-profile",
                "--out",
                str(out),
                "--home",
                home,
            ]
        )
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert result["n_items"] == 40 and result["n_failed"] == 0
    assert sum(result["label_counts"].values()) == 40
