"""One PyTorch model, every format a plant ships it in: TorchScript, ONNX (torch's exporter), and
OpenVINO IR in FP32 and FP16 (read from that ONNX file and saved by OpenVINO's runtime API).

The same weights go into every file, so the formats can be compared with each other: what
export equivalence means. Everything is built here, nothing is downloaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ov = pytest.importorskip("openvino")
nn = torch.nn


class Tabular(nn.Module):  # type: ignore[misc]
    """Standardise (missing values as the mean), a hidden layer, class probabilities."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, n_classes: int, hidden: int = 32):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.body = nn.Sequential(
            nn.Linear(len(mean), hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: Any) -> Any:
        z = (x - self.mean) / self.scale
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
        return torch.softmax(self.body(z), dim=1)


class SmallCnn(nn.Module):  # type: ignore[misc]
    """Two convolutions and a linear layer over a grey image; class probabilities."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(16, n_classes)

    def forward(self, x: Any) -> Any:
        return torch.softmax(self.head(self.features(x)) * 4.0, dim=1)


def fit(module: Any, x: np.ndarray, y: np.ndarray, steps: int = 150, seed: int = 0) -> Any:
    """A few Adam steps on all of (x, y): enough for answers that are not all one class."""
    torch.manual_seed(seed)
    data = torch.tensor(x, dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.long)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        probs = module(data)
        loss = nn.functional.nll_loss(torch.log(probs + 1e-9), target)
        loss.backward()
        optimiser.step()
    return module.eval()


def export_all(module: Any, example: np.ndarray, folder: Path, name: str) -> dict[str, Path]:
    """``torchscript`` (.pt), ``onnx``, ``openvino`` (FP32 IR) and ``openvino-fp16`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    x = torch.tensor(example, dtype=torch.float32)
    out = {
        "torchscript": folder / f"{name}.pt",
        "onnx": folder / f"{name}.onnx",
        "openvino": folder / f"{name}.xml",
        "openvino-fp16": folder / f"{name}-fp16.xml",
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation notes
        torch.jit.save(torch.jit.trace(module, x), str(out["torchscript"]))
        torch.onnx.export(
            module,
            (x,),
            str(out["onnx"]),
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_axes={"input": {0: "n"}, "probabilities": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    core = ov.Core()
    ov.save_model(core.read_model(str(out["onnx"])), str(out["openvino"]), compress_to_fp16=False)
    ov.save_model(core.read_model(str(out["onnx"])), str(out["openvino-fp16"]))
    return out
