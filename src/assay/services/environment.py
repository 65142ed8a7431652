"""describe_environment: what a run ran on, for reproducibility."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "assay",
    "numpy",
    "pyarrow",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "openvino",
    "torch",
    "pillow",
    "scikit-learn",
    "skops",
    "sqlalchemy",
)
# Bumped whenever a change to Assay itself changes what a model outputs for the same file, input
# and device (how a runtime is configured, how an image is decoded or resized): outputs and
# profiles recorded under an earlier revision are never reused. Runs from before it count as 1.
# 2: OpenVINO computes in f32 (it computed in bfloat16 on CPUs with bf16 units).
NUMERICS_REVISION = 2
# The packages whose versions a model's outputs depend on, besides its file and input.
NUMERICS_PACKAGES = (
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "torch",
    "scikit-learn",
    "skops",
    "pillow",
)


def cpu_model() -> str | None:
    """The processor's model name (Linux), which ``platform.processor()`` leaves empty."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def numerics(environment: dict[str, Any]) -> dict[str, Any]:
    """What a model's outputs depend on in a run's ``environment`` besides the model version,
    the item and the device: Assay's numerics revision, the runtimes' and decoders' versions, the
    architecture and the processor (kernels differ by instruction set). Outputs are reused only
    between runs where this is equal."""
    packages = environment.get("packages") or {}
    return {
        "revision": environment.get("numerics_revision", 1),
        "packages": {k: packages.get(k) for k in NUMERICS_PACKAGES},
        "machine": environment.get("machine"),
        "cpu": environment.get("cpu"),
    }


def describe_environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu": cpu_model() or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "numerics_revision": NUMERICS_REVISION,
    }
