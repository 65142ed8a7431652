"""A real MLflow tracking server with a model registry, started by the tests on 127.0.0.1 with a
SQLite backend, from a virtual environment of its own (``.venv-mlflow``, which ``make test``
builds: MLflow's pins clash with Assay's). Models are logged by that environment's Python."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.mlserver import free_port, serving

ROOT = Path(__file__).resolve().parents[1]

LOG = """
import sys, mlflow, numpy as np, onnx
from mlflow.models import infer_signature
from mlflow import MlflowClient
onnx_path, name, alias = sys.argv[1], sys.argv[2], sys.argv[3]
shape = tuple(int(d) for d in sys.argv[4].split(","))
n_features = shape[0]
columns = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] else None
x = np.zeros((2, *shape), np.float32)
import pandas as pd
example = pd.DataFrame(x, columns=columns) if columns else x
if onnx_path == "sklearn":
    outputs = np.zeros((2, 2), np.float32)
else:  # the model's own output, for a signature that says how many scores it gives
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    outputs = [o for o in session.run(None, {session.get_inputs()[0].name: x}) if o.dtype == np.float32][-1]
signature = infer_signature(example, outputs)
mlflow.set_experiment("assay-tests")
with mlflow.start_run() as run:
    if onnx_path == "sklearn":  # a pickled flavour, which Assay must refuse
        from sklearn.linear_model import LogisticRegression
        model = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, n_features)), [0, 1] * 10)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    else:
        info = mlflow.onnx.log_model(onnx.load(onnx_path), name="model", registered_model_name=name, signature=signature)
client = MlflowClient()
version = info.registered_model_version
client.set_registered_model_alias(name, alias, version)
print(run.info.run_id, version)
"""


def mlflow_python() -> Path:
    given = os.environ.get("ASSAY_MLFLOW_PYTHON")
    path = Path(given) if given else ROOT / ".venv-mlflow" / "bin" / "python"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(
                f"CI is set but MLflow's environment is missing ({path}); `make test` builds it"
            )
        pytest.skip(f"MLflow's environment not built ({path}): `make mlflow` builds it; CI runs it")
    return path


@contextmanager
def running_mlflow(folder: Path) -> Iterator[str]:
    """``mlflow server`` with a SQLite registry and local artifacts; its URL once it answers."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with serving(
        [
            str(mlflow_python().parent / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        f"http://127.0.0.1:{port}",
        "/health",
        folder / "mlflow.log",
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
    ) as url:  # fmt: skip
        yield url


def log_onnx_model(
    url: str,
    onnx: Path,
    name: str,
    alias: str,
    shape: tuple[int, ...],
    columns: list[str] | None = None,
) -> tuple[str, str]:
    """Log and register an ONNX model (items of ``shape``) through MLflow's own client; its
    (run id, version)."""
    done = subprocess.run(
        [
            str(mlflow_python()),
            "-c",
            LOG,
            str(onnx),
            name,
            alias,
            ",".join(map(str, shape)),
            ",".join(columns or []),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, version = done.stdout.strip().splitlines()[-1].split()
    return run_id, version
