"""Helpers every runtime adapter shares: the input shape a spec gives, and the checks of a test
run's output against the spec. The port itself (``Runtime``, ``ModelBatch``, ``ModelSignature``)
lives in ``assay.core.ports``."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError
from assay.core.ports import ModelBatch, ModelSignature, Runtime, TensorInfo
from assay.core.spec import ImageInput, ModelSpec, TabularInput


def expected_input_shape(spec: ModelSpec) -> tuple[int, ...]:
    """The per-item input shape the spec produces (without the batch dimension)."""
    if isinstance(spec.input, ImageInput):
        h, w = spec.input.size
        c = spec.input.channels
        return (c, h, w) if spec.input.layout == "NCHW" else (h, w, c)
    if isinstance(spec.input, TabularInput):
        return (len(spec.input.columns),)
    return (0,)  # recorded predictions: nothing is fed


def check_smoke_output(out: npt.NDArray[Any], spec: ModelSpec, output_name: str) -> None:
    """A test batch of two items must give [2, n_labels] scores (or [2]/[2, 1] for binary)."""
    array = np.asarray(out)
    if array.dtype.kind not in "fiu":
        raise InputError(
            f"model output {output_name!r} is not numeric (it gives {array.dtype} values); "
            "name a score tensor in the spec's output.name"
        )
    shape = tuple(array.shape)
    k = spec.n_classes
    ok = shape in {(2, k)} or (k == 2 and shape in {(2,), (2, 1)})
    if not ok:
        raise InputError(
            f"model output {output_name!r} has shape {list(shape)} for 2 items, but the spec lists "
            f"{k} labels (expected [2, {k}])"
        )


def task_outputs(spec: ModelSpec) -> dict[str, str | None]:
    """The model outputs a detection, segmentation or anomaly task reads, by role."""
    o = spec.output
    if spec.task == "detection":
        return {"boxes": o.boxes, "scores": o.scores, "classes": o.classes}
    if spec.task == "anomaly":
        return {"score": o.score, "map": o.map}
    return {"scores": o.name}


def check_task_output(out: dict[str, npt.NDArray[Any]], spec: ModelSpec) -> None:
    """The shapes a test batch of two items must give, per task; InputError naming the output."""
    for role, array in out.items():
        if array.dtype.kind not in "fiu":
            raise InputError(f"model output for {role!r} is not numeric ({array.dtype})")
    shapes = {role: list(a.shape) for role, a in out.items()}
    if spec.task == "detection":
        b, s, c = shapes["boxes"], shapes["scores"], shapes["classes"]
        if len(b) != 3 or b[0] != 2 or b[2] != 4 or s != b[:2] or c != b[:2]:
            raise InputError(
                f"detection outputs have shapes boxes {b}, scores {s}, classes {c} for 2 items; "
                "expected [2, D, 4], [2, D], [2, D] (pad with class -1)"
            )
    elif spec.task == "segmentation":
        got = shapes["scores"]
        if len(got) != 4 or got[0] != 2 or got[1] != spec.n_classes:
            raise InputError(
                f"segmentation output has shape {got} for 2 items; expected "
                f"[2, {spec.n_classes}, H, W] (one channel per label)"
            )
    elif spec.task == "anomaly":
        if "score" in shapes and shapes["score"] not in ([2], [2, 1]):
            raise InputError(
                f"anomaly score output has shape {shapes['score']} for 2 items; expected [2]"
            )
        amap = shapes.get("map")
        if amap is not None and not (
            amap[:1] == [2] and (len(amap) == 3 or (len(amap) == 4 and amap[1] == 1))
        ):
            raise InputError(
                f"anomaly map output has shape {shapes['map']} for 2 items; expected "
                "[2, H, W] or [2, 1, H, W]"
            )


__all__ = [
    "ModelBatch",
    "ModelSignature",
    "Runtime",
    "TensorInfo",
    "check_smoke_output",
    "check_task_output",
    "expected_input_shape",
    "task_outputs",
]
