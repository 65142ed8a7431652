"""describe_environment: what a run ran on, for reproducibility."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from assay.core.records import RunRecord

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
# 3: a binary spec naming only its good class (negative) makes the other class positive, for
#    the threshold rule too (it was the second label): predicted classes may differ; and rows
#    with an infinite feature are not judged under `missing: error` (they were fed as inf); and
#    images are decoded whole unless the spec says input.decode: draft (JPEGs larger than the
#    input were decoded at a fraction of their size).
# 4: 16-bit grey images (PNG, TIFF, PGM) are scaled to 8 bits (value / 257; they were clipped at 255), and 32-bit
#    and floating-point pixels are not judged (they were clipped or truncated).
# 5: a segmenter's mask and an anomaly map are judged at the expert mask's size (the expert mask
#    was shrunk to the model's), and an anomaly model's good image given no mask is normal
#    everywhere (it was not judged): a run of revision 4 is not taken whole as a baseline.
NUMERICS_REVISION = 5
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
    """The processor's model name, which ``platform.processor()`` leaves empty on Linux (on
    aarch64 Linux, where /proc/cpuinfo names no model, its implementer and part numbers)."""
    if sys.platform == "darwin":
        try:
            done = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return done.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    fields = _cpuinfo()
    if "model name" in fields:
        return fields["model name"]
    parts = [
        f"{k} {fields[k]}" for k in ("CPU implementer", "CPU part", "CPU variant") if k in fields
    ]
    return ", ".join(parts) or None


def cpu_features() -> str | None:
    """A short digest of the instruction-set extensions the processor reports (x86 ``flags``,
    Arm ``Features``): two machines with one model name but other extensions (a VM that hides
    AVX-512, say) run other kernels, and may compute other last bits."""
    fields = _cpuinfo()
    flags = fields.get("flags") or fields.get("Features")
    if not flags:
        return None
    return hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:16]


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


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
        "cpu_features": environment.get("cpu_features"),
    }


def run_numerics(run: RunRecord) -> dict[str, Any]:
    """The numerics ``run``'s outputs were computed under. On Spark, the executors', as each
    task reported them: the driver's environment (what a run records) says nothing of the
    machines the model ran on, and a laptop run reused a cluster run's outputs on its word (a
    review). Executors that differ among themselves, or a Spark run that recorded none, match
    no machine."""
    environment = run.environment or {}
    if str((run.config or {}).get("engine", "local")) != "spark":
        return numerics(environment)
    executors = environment.get("spark_executors")
    if isinstance(executors, list) and len(executors) == 1 and isinstance(executors[0], dict):
        return dict(executors[0])
    return {"spark_executors": executors or "not recorded"}


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
        "cpu_features": cpu_features(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "numerics_revision": NUMERICS_REVISION,
    }
