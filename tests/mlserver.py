"""A real MLServer (Seldon's Open Inference Protocol server) started by the tests, and a proxy in
front of it that injects the faults of a plant's network (HTTP 500, slow answers, another model
version) into real traffic.

MLServer runs from a virtual environment of its own, ``.venv-mlserver`` (its pins clash with
Assay's), which ``make test`` builds; ``ASSAY_MLSERVER`` may name another ``mlserver`` binary.
Its models are fitted by that environment's Python, so that the server unpickles what its own
scikit-learn wrote.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import sys, joblib, numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
folder = sys.argv[1]
x, y = np.load(folder + "/x.npy"), np.load(folder + "/y.npy", allow_pickle=False)
model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
joblib.dump(model, folder + "/model.joblib")
np.save(folder + "/proba.npy", model.predict_proba(x))
print(",".join(str(c) for c in model.classes_))
"""


def mlserver_binary() -> Path:
    """MLServer's executable; skips outside CI when it is not built, fails inside CI."""
    given = os.environ.get("ASSAY_MLSERVER")
    path = Path(given) if given else ROOT / ".venv-mlserver" / "bin" / "mlserver"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but MLServer is missing ({path}); `make test` builds it")
        pytest.skip(f"MLServer not built ({path}): `make mlserver` builds it; CI runs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fit_served_model(
    folder: Path, name: str, x: np.ndarray, y: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """A scikit-learn pipeline fitted by the server's Python into ``folder/name``; its classes
    and its predict_proba on ``x`` (the reference)."""
    model = folder / name
    model.mkdir(parents=True)
    np.save(model / "x.npy", x)
    np.save(model / "y.npy", y.astype(str))
    python = mlserver_binary().parent / "python"
    done = subprocess.run(
        [str(python), "-c", FIT, str(model)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (model / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    return done.stdout.strip().split(","), np.load(model / "proba.npy")


ONNX_RUNTIME = """
import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxModel(MLModel):
    \"\"\"An ONNX file served by onnxruntime inside MLServer (a custom runtime).\"\"\"

    async def load(self) -> bool:
        path = await get_model_uri(self.settings)
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        (out,) = self.session.run(["probabilities"], {self.session.get_inputs()[0].name: x})
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("probabilities", out)],
        )
"""


def serve_onnx(folder: Path, name: str, onnx: Path) -> None:
    """An ONNX model served by MLServer through onnxruntime (its custom runtime above)."""
    model = folder / name
    model.mkdir(parents=True)
    (model / "model.onnx").write_bytes(onnx.read_bytes())
    (model / "onnx_model.py").write_text(ONNX_RUNTIME)
    (model / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "onnx_model.OnnxModel",
                "parameters": {"uri": "./model.onnx", "version": "v1"},
            }
        )
    )


@contextmanager
def running_mlserver(repository: Path) -> Iterator[str]:
    """``mlserver start`` on 127.0.0.1 free ports, until ready; its base URL."""
    port = free_port()
    (repository / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    with serving(
        [str(mlserver_binary()), "start", str(repository)],
        f"http://127.0.0.1:{port}",
        "/v2/health/ready",
        repository / "mlserver.log",
    ) as url:
        yield url


@contextmanager
def serving(
    command: list[str], url: str, probe: str, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start a server, yield ``url`` once ``url + probe`` answers 200 (two minutes at most),
    stop it at the end; its output goes to ``log_path``, whose tail a failed start shows."""
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(log_path.read_text()[-2000:])
            try:
                if httpx.get(url + probe, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not answer in 120 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@dataclass
class Faults:
    """What the proxy does to the next inference requests (others pass through)."""

    fail_next: int = 0  # answer HTTP 500 to this many
    fail_items: set[int] = field(default_factory=set)  # 500 to requests of this many items
    delay_s: float = 0.0  # before forwarding
    version: str | None = None  # rewrite the answers' model_version
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def faulty_proxy(upstream: str, faults: Faults) -> Iterator[str]:
    """A plain HTTP proxy to ``upstream`` that injects ``faults`` into POST .../infer."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            answer = httpx.get(upstream + self.path, timeout=30)
            self._send(answer.status_code, answer.content)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with faults.lock:
                faults.requests += 1
                fail = faults.fail_next > 0
                if fail:
                    faults.fail_next -= 1
            n_items = json.loads(body)["inputs"][0]["shape"][0]
            if fail or n_items in faults.fail_items:
                self._send(500, b'{"error": "injected failure"}')
                return
            if faults.delay_s:
                time.sleep(faults.delay_s)
            answer = httpx.post(
                upstream + self.path,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            content = answer.content
            if faults.version is not None and answer.status_code == 200:
                data = answer.json()
                data["model_version"] = faults.version
                content = json.dumps(data).encode()
            self._send(answer.status_code, content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
