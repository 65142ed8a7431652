"""OnnxRuntime: ONNX models through onnxruntime on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from assay.core.errors import InputError, describe_exception
from assay.core.spec import ModelSpec
from assay.runtimes.base import (
    ModelBatch,
    ModelSignature,
    TensorInfo,
    check_smoke_output,
    check_task_output,
    expected_input_shape,
    task_outputs,
)

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
_SCORE_NAMES = ("probabilities", "probability", "output_probability", "probs", "scores", "logits")


def _info(arg: Any) -> TensorInfo:
    return TensorInfo(arg.name, tuple(arg.shape), arg.type)


class OnnxRuntime:
    """An onnxruntime session with the spec's input and output resolved and checked."""

    def __init__(
        self, session: ort.InferenceSession, spec: ModelSpec, input_name: str, output_name: str
    ) -> None:
        self.session = session
        self.spec = spec
        self.input_name = input_name
        self.output_name = output_name
        self.embedding_name: str | None = None
        # Detection, segmentation, anomaly: which model output plays each role of the task.
        self.roles: dict[str, str] = {}
        self.fixed_batch: int | None = None
        # skl2onnx's default ZipMap output: one {class: probability} map per item, read into the
        # spec's label order (None: a plain tensor).
        self.zipmap_order: list[Any] | None = None
        declared = next(i for i in session.get_inputs() if i.name == input_name)
        self._dtype = _DTYPES.get(declared.type, np.float32)
        self.signature = ModelSignature(
            tuple(_info(i) for i in session.get_inputs()),
            tuple(_info(o) for o in session.get_outputs()),
            {"runtime": "onnx", "providers": session.get_providers()},
        )

    @classmethod
    def load(
        cls, path: Path, spec: ModelSpec, threads: int | None = None, spin: bool = True
    ) -> OnnxRuntime:
        """Open the model, resolve and check its input and output against the spec.

        ``spin`` False stops onnxruntime's threads from busy-waiting between calls: right when
        other threads share the cores (a validation reads, scores and writes beside the model;
        a 64x64 MLP's pass took 12% less time), wrong for measuring the model alone.
        """
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path.name} is not a valid ONNX model: {first[:300]}") from None
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        input_name = cls._resolve_input(inputs, spec)
        if spec.task != "classification":
            return cls._load_task(session, spec, input_name, inputs, outputs)
        output_name = cls._resolve_output(outputs, spec)
        runtime = cls(session, spec, input_name, output_name)
        runtime._check_input_shape(next(i for i in inputs if i.name == input_name))
        runtime.embedding_name = cls._resolve_embedding(outputs, spec)
        declared_output = next(o for o in outputs if o.name == output_name)
        if declared_output.type.startswith("seq(map("):
            runtime.zipmap_order = runtime._zipmap_keys(path)
        smoke = np.zeros((2, *expected_input_shape(spec)), dtype=np.float32)
        try:
            out = runtime.predict(ModelBatch.of(smoke))
        except Exception as exc:
            raise InputError(
                f"model rejected the spec's input shape {[2, *expected_input_shape(spec)]}: "
                f"{str(exc).strip().splitlines()[0][:300]}"
            ) from None
        check_smoke_output(out, spec, output_name)
        if runtime.embedding_name is not None:
            _, vectors = runtime.predict_with_embedding(ModelBatch.of(smoke))
            if vectors.ndim < 2 or vectors.shape[0] != 2:
                raise InputError(
                    f"embedding output {runtime.embedding_name!r} gives shape {list(vectors.shape)} "
                    "for 2 items; it needs one vector per item"
                )
        return runtime

    @classmethod
    def _load_task(
        cls,
        session: ort.InferenceSession,
        spec: ModelSpec,
        input_name: str,
        inputs: list[Any],
        outputs: list[Any],
    ) -> OnnxRuntime:
        """A detection, segmentation or anomaly model: its named outputs, checked on a test run."""
        names = [o.name for o in outputs]
        roles = task_outputs(spec)
        if spec.task == "segmentation" and roles["scores"] is None:
            floats = [o.name for o in outputs if o.type in _DTYPES]
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
        runtime = cls(session, spec, input_name, next(n for n in roles.values() if n))
        runtime.roles = {role: name for role, name in roles.items() if name is not None}
        runtime._check_input_shape(next(i for i in inputs if i.name == input_name))
        smoke = np.zeros((2, *expected_input_shape(spec)), dtype=np.float32)
        try:
            out = runtime.predict(ModelBatch.of(smoke))
        except Exception as exc:
            raise InputError(
                f"model rejected the spec's input shape {[2, *expected_input_shape(spec)]}: "
                f"{describe_exception(exc)}"
            ) from None
        check_task_output(out, spec)
        return runtime

    @staticmethod
    def _resolve_embedding(outputs: list[Any], spec: ModelSpec) -> str | None:
        name = spec.output.embedding
        if name is None:
            return None
        found = next((o for o in outputs if o.name == name), None)
        if found is None:
            raise InputError(
                f"spec output.embedding {name!r} is not a model output "
                f"(model outputs: {[o.name for o in outputs]})"
            )
        if found.type not in _DTYPES:
            raise InputError(f"embedding output {name!r} is {found.type}, not a float tensor")
        return name

    @staticmethod
    def _resolve_input(inputs: list[Any], spec: ModelSpec) -> str:
        names = [i.name for i in inputs]
        if spec.input.name is not None:
            if spec.input.name not in names:
                raise InputError(
                    f"spec input.name {spec.input.name!r} is not a model input (model inputs: {names})"
                )
            return spec.input.name
        if len(inputs) != 1:
            raise InputError(
                f"the model has {len(inputs)} inputs {names}; name one in the spec's input.name"
            )
        return str(names[0])

    @staticmethod
    def _resolve_output(outputs: list[Any], spec: ModelSpec) -> str:
        names = [o.name for o in outputs]
        if spec.output.name is not None:
            if spec.output.name not in names:
                raise InputError(
                    f"spec output.name {spec.output.name!r} is not a model output (model outputs: {names})"
                )
            return spec.output.name
        floats = [o.name for o in outputs if o.type in _DTYPES]
        for preferred in _SCORE_NAMES:
            if preferred in floats:
                return preferred
        if len(floats) == 1:
            return str(floats[0])
        maps = [o.name for o in outputs if o.type.startswith("seq(map(")]
        if not floats and len(maps) == 1:
            return str(maps[0])
        raise InputError(
            f"cannot tell which model output holds the scores ({names}); set output.name in the spec"
        )

    def _zipmap_keys(self, path: Path) -> list[Any]:
        """The map keys in the spec's label order, from one run on a test item.

        String keys must be the spec's labels; integer keys are matched by name (``"0"``) or, when
        they are exactly 0..k-1, by position in the spec's labels.
        """
        smoke = np.zeros((1, *expected_input_shape(self.spec)), dtype=self._dtype)
        try:
            (maps,) = self._run([self.output_name], smoke)
            keys = list(maps[0].keys())
        except Exception as exc:
            raise InputError(
                f"{path.name}: cannot read its ZipMap output {self.output_name!r} "
                f"({describe_exception(exc)}); export with options={{'zipmap': False}}"
            ) from None
        labels = list(self.spec.labels)
        by_name = {str(k): k for k in keys}
        if set(by_name) == set(labels):
            return [by_name[label] for label in labels]
        if sorted(keys) == list(range(len(labels))):
            return list(range(len(labels)))
        raise InputError(
            f"{path.name}: its ZipMap output has classes {sorted(by_name)} but the spec lists "
            f"{labels}; fix the spec's labels, or export with options={{'zipmap': False}}"
        )

    def _scores(self, out: Any) -> npt.NDArray[Any]:
        if self.zipmap_order is None:
            return np.asarray(out)
        order = self.zipmap_order
        return np.array([[row[k] for k in order] for row in out], dtype=np.float64).reshape(
            -1, len(order)
        )

    def _check_input_shape(self, declared: Any) -> None:
        want = expected_input_shape(self.spec)
        shape = list(declared.shape)
        if len(shape) != len(want) + 1:
            raise InputError(
                f"model input {declared.name!r} has shape {shape} ({len(shape)} dims) but the spec "
                f"gives items of shape {list(want)} plus a batch dimension"
            )
        for dim, expected in zip(shape[1:], want, strict=True):
            if isinstance(dim, int) and dim != expected:
                raise InputError(
                    f"model input {declared.name!r} has shape {shape} but the spec produces "
                    f"[N, {', '.join(map(str, want))}]"
                )
        # Exported with a fixed batch size (often 1): batches are fed in pieces of that size.
        if isinstance(shape[0], int) and shape[0] > 0:
            self.fixed_batch = int(shape[0])
            self.signature.extra["fixed_batch"] = self.fixed_batch

    def _run(self, names: list[str], inputs: npt.NDArray[np.float32]) -> list[Any]:
        """``session.run`` of ``names``; for a model with a fixed batch size, in pieces of that
        size (the last one padded with zeros, whose outputs are dropped)."""
        x = inputs.astype(self._dtype, copy=False)
        size = self.fixed_batch
        if size is None or x.shape[0] == size:
            return list(self.session.run(names, {self.input_name: x}))
        pieces: list[list[Any]] = []
        for start in range(0, x.shape[0], size):
            chunk = x[start : start + size]
            k = chunk.shape[0]
            if k < size:
                pad = np.zeros((size - k, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            outs = self.session.run(names, {self.input_name: chunk})
            pieces.append([o[:k] for o in outs])
        return [
            [v for piece in pieces for v in piece[i]]
            if isinstance(pieces[0][i], list)
            else np.concatenate([piece[i] for piece in pieces])
            for i in range(len(names))
        ]

    def predict_with_embedding(
        self, batch: ModelBatch
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
        """Scores and the spec's embedding output, from one run of the model."""
        assert self.embedding_name is not None
        scores, vectors = self._run([self.output_name, self.embedding_name], batch.inputs)
        flat = np.asarray(vectors, dtype=np.float32)
        return self._scores(scores), flat.reshape(flat.shape[0], -1) if flat.ndim > 2 else flat

    def predict(self, batch: ModelBatch) -> Any:
        """Classification: the score tensor; other tasks: {role: tensor} (``task_outputs``)."""
        inputs = batch.inputs
        if self.roles:
            values = self._run(list(self.roles.values()), inputs)
            return {role: np.asarray(v) for role, v in zip(self.roles, values, strict=True)}
        (out,) = self._run([self.output_name], inputs)
        return self._scores(out)


def load(path: Path, spec: ModelSpec, threads: int | None = None, spin: bool = True) -> OnnxRuntime:
    """The runtime entry's loader (``assay.runtimes.RUNTIMES``)."""
    return OnnxRuntime.load(path, spec, threads=threads, spin=spin)
