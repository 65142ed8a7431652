"""Model runtimes: ONNX Runtime first, scikit-learn through skops, and a fake for tests."""

from __future__ import annotations

from pathlib import Path

from assay.core.errors import InputError
from assay.core.spec import ModelSpec
from assay.runtimes.base import LoadedModel


def runtime_kind(path: Path) -> str:
    """Which runtime loads a model file, from its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".skops":
        return "sklearn"
    raise InputError(
        f"{path.name}: unsupported model format {suffix or '(none)'} (use .onnx or .skops)"
    )


def load_model(
    path: Path,
    spec: ModelSpec,
    kind: str | None = None,
    threads: int | None = None,
    spin: bool = True,
) -> LoadedModel:
    """Load and check a model file against its spec; raises InputError naming any mismatch.

    ``spin`` False: the runtime's threads sleep rather than busy-wait between calls (ONNX), for
    a model that shares the cores with other work."""
    kind = kind or runtime_kind(path)
    if spec.task != "classification" and kind != "onnx":
        raise InputError(f"task {spec.task} is supported for ONNX models only")
    if kind == "onnx":
        from assay.runtimes.onnx import OnnxRuntime

        return OnnxRuntime.load(path, spec, threads=threads, spin=spin)
    if kind == "sklearn":
        from assay.runtimes.sklearn import SklearnRuntime

        if spec.output.embedding is not None:
            raise InputError("spec output.embedding is supported for ONNX models only")

        return SklearnRuntime.load(path, spec)
    raise InputError(f"unknown runtime {kind!r}")
