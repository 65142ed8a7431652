"""Helpers every runtime adapter shares: the input shape a spec gives, and the checks of a test
run's output against the spec. The port itself (``Runtime``, ``ModelBatch``, ``ModelSignature``)
lives in ``assay.core.ports``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError, describe_exception
from assay.core.ports import ModelBatch, Runtime, TensorInfo
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


# -- what every runtime that runs a model file resolves the same way --------------------------
# Runtimes describe their tensors as TensorInfo and say which are float tensors; these helpers
# pick the spec's input and outputs among them, with the same messages for every runtime.

SCORE_NAMES = ("probabilities", "probability", "output_probability", "probs", "scores", "logits")


def resolve_input(inputs: Sequence[TensorInfo], spec: ModelSpec) -> TensorInfo:
    """The input the spec names, or the model's only input."""
    names = [i.name for i in inputs]
    if spec.input.name is not None:
        found = next((i for i in inputs if i.name == spec.input.name), None)
        if found is None:
            raise InputError(
                f"spec input.name {spec.input.name!r} is not a model input (model inputs: {names})"
            )
        return found
    if len(inputs) != 1:
        raise InputError(
            f"the model has {len(inputs)} inputs {names}; name one in the spec's input.name"
        )
    return inputs[0]


def resolve_scores(outputs: Sequence[TensorInfo], floats: Sequence[str], spec: ModelSpec) -> str:
    """The classification score output: the spec's ``output.name``, else a conventional name
    among the float outputs, else the only float output."""
    names = [o.name for o in outputs]
    if spec.output.name is not None:
        if spec.output.name not in names:
            raise InputError(
                f"spec output.name {spec.output.name!r} is not a model output (model outputs: {names})"
            )
        return spec.output.name
    for preferred in SCORE_NAMES:
        if preferred in floats:
            return preferred
    if len(floats) == 1:
        return str(floats[0])
    raise InputError(
        f"cannot tell which model output holds the scores ({names}); set output.name in the spec"
    )


def resolve_roles(
    outputs: Sequence[TensorInfo], floats: Sequence[str], spec: ModelSpec
) -> dict[str, str]:
    """Detection, segmentation, anomaly: the model output that plays each role of the task."""
    names = [o.name for o in outputs]
    roles = task_outputs(spec)
    if spec.task == "segmentation" and roles["scores"] is None:
        if len(floats) != 1:
            raise InputError(
                f"cannot tell which model output holds the class scores ({names}); "
                "set output.name in the spec"
            )
        roles["scores"] = floats[0]
    for role, name in roles.items():
        if name is not None and name not in names:
            raise InputError(
                f"spec output.{role if spec.task != 'segmentation' else 'name'} {name!r} is "
                f"not a model output (model outputs: {names})"
            )
    return {role: name for role, name in roles.items() if name is not None}


def resolve_embedding(
    outputs: Sequence[TensorInfo], floats: Sequence[str], spec: ModelSpec
) -> str | None:
    name = spec.output.embedding
    if name is None:
        return None
    found = next((o for o in outputs if o.name == name), None)
    if found is None:
        raise InputError(
            f"spec output.embedding {name!r} is not a model output "
            f"(model outputs: {[o.name for o in outputs]})"
        )
    if name not in floats:
        raise InputError(f"embedding output {name!r} is {found.dtype}, not a float tensor")
    return name


def fixed_batch(declared: TensorInfo, spec: ModelSpec) -> int | None:
    """Check the declared input against the spec's items; the batch size the model was exported
    with when it is fixed (often 1), else None."""
    want = expected_input_shape(spec)
    shape = list(declared.shape)
    if len(shape) != len(want) + 1:
        raise InputError(
            f"model input {declared.name!r} has shape {shape} ({len(shape)} dims) but the spec "
            f"gives items of shape {list(want)} plus a batch dimension"
        )
    for dim, expected in zip(shape[1:], want, strict=True):
        if isinstance(dim, int) and dim > 0 and dim != expected:
            raise InputError(
                f"model input {declared.name!r} has shape {shape} but the spec produces "
                f"[N, {', '.join(map(str, want))}]"
            )
    return int(shape[0]) if isinstance(shape[0], int) and shape[0] > 0 else None


def in_pieces(
    run: Callable[[npt.NDArray[Any]], list[Any]], x: npt.NDArray[Any], size: int | None
) -> list[Any]:
    """``run(x)`` for a model with a fixed batch ``size``: in pieces of that size, the last one
    padded with zeros whose outputs are dropped; outputs joined back (lists or arrays)."""
    if size is None or x.shape[0] == size:
        return run(x)
    pieces: list[list[Any]] = []
    for start in range(0, x.shape[0], size):
        chunk = x[start : start + size]
        k = chunk.shape[0]
        if k < size:
            chunk = np.concatenate([chunk, np.zeros((size - k, *chunk.shape[1:]), chunk.dtype)])
        pieces.append([o[:k] for o in run(chunk)])
    n_outputs = len(pieces[0]) if pieces else 0
    return [
        [v for piece in pieces for v in piece[i]]
        if isinstance(pieces[0][i], list)
        else np.concatenate([piece[i] for piece in pieces])
        for i in range(n_outputs)
    ]


def smoke_test(
    runtime: Runtime, spec: ModelSpec, output_name: str, embedding: str | None = None
) -> None:
    """Two zero items through the model: the outputs must have the shapes the spec implies."""
    smoke = ModelBatch.of(np.zeros((2, *expected_input_shape(spec)), dtype=np.float32))
    try:
        out = runtime.predict(smoke)
    except Exception as exc:
        raise InputError(
            f"model rejected the spec's input shape {[2, *expected_input_shape(spec)]}: "
            f"{describe_exception(exc)}"
        ) from None
    if spec.task == "classification":
        check_smoke_output(out, spec, output_name)
    else:
        check_task_output(out, spec)
    if embedding is not None:
        _, vectors = runtime.predict_with_embedding(smoke)  # type: ignore[attr-defined]
        if vectors.ndim < 2 or vectors.shape[0] != 2:
            raise InputError(
                f"embedding output {embedding!r} gives shape {list(vectors.shape)} "
                "for 2 items; it needs one vector per item"
            )


class NamedOutputs:
    """``predict`` and ``predict_with_embedding`` for a runtime that can run a list of named
    outputs (``_run``): the task's roles, or the scores (and the embedding) of a classifier."""

    output_name: str
    embedding_name: str | None
    roles: dict[str, str]

    def _run(self, names: list[str], inputs: npt.NDArray[np.float32]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release: the session goes with the object."""

    def _scores(self, out: Any) -> npt.NDArray[Any]:
        """The classification output as an array (ONNX reads its ZipMaps here)."""
        return np.asarray(out)

    def predict(self, batch: ModelBatch) -> Any:
        """Classification: the score tensor; other tasks: {role: tensor} (``task_outputs``)."""
        if self.roles:
            values = self._run(list(self.roles.values()), batch.inputs)
            return {role: np.asarray(v) for role, v in zip(self.roles, values, strict=True)}
        (out,) = self._run([self.output_name], batch.inputs)
        return self._scores(out)

    def predict_with_embedding(
        self, batch: ModelBatch
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
        """Scores and the spec's embedding output, from one run of the model."""
        assert self.embedding_name is not None
        scores, vectors = self._run([self.output_name, self.embedding_name], batch.inputs)
        flat = np.asarray(vectors, dtype=np.float32)
        return self._scores(scores), flat.reshape(flat.shape[0], -1) if flat.ndim > 2 else flat
