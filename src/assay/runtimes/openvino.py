"""OpenVinoRuntime: OpenVINO IR (``.xml`` with its ``.bin`` weights, often INT8 or FP16 for edge
boxes) and ONNX files as OpenVINO reads them, on the CPU or another OpenVINO device.

Only the inference API is used (``Core.read_model``, ``compile_model``): OpenVINO's conversion
tools, which can send telemetry, are never imported, so nothing calls home from a plant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov

from assay.core.errors import InputError, describe_exception
from assay.core.ports import ModelSignature, TensorInfo
from assay.core.spec import ModelSpec
from assay.runtimes.base import (
    NamedOutputs,
    fixed_batch,
    in_pieces,
    resolve_embedding,
    resolve_input,
    resolve_roles,
    resolve_scores,
    smoke_test,
    task_outputs,
)
from assay.runtimes.device import Device
from assay.runtimes.onnx_files import check_self_contained

_FLOATS = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "bf16": np.float32}


def _device_name(device: Device) -> str:
    """OpenVINO's name for ``--device``: cpu -> CPU, cuda is refused (OpenVINO has no CUDA),
    anything else (GPU, GPU.1, NPU, AUTO) as OpenVINO spells it."""
    if device.kind == "cpu":
        return "CPU"
    if device.kind == "cuda":
        raise InputError(
            "--device cuda: OpenVINO does not run on NVIDIA GPUs; use its own device names "
            "(GPU for an Intel GPU, NPU, AUTO) or run the ONNX model with onnxruntime"
        )
    return device.name.upper()


def _named(port: Any, wanted: set[str]) -> str:
    """A port's name: the one the spec uses when the port has it among its names, else any."""
    names = set(port.get_names())
    chosen = sorted(names & wanted)
    return chosen[0] if chosen else str(port.get_any_name())


def _info(port: Any, wanted: set[str]) -> TensorInfo:
    shape = tuple(int(d.get_length()) if d.is_static else None for d in port.get_partial_shape())
    return TensorInfo(_named(port, wanted), shape, port.get_element_type().get_type_name())


class OpenVinoRuntime(NamedOutputs):
    """A compiled OpenVINO model with the spec's input and outputs resolved and checked."""

    def __init__(self, compiled: Any, spec: ModelSpec, signature: ModelSignature) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.spec = spec
        self.signature = signature
        self.input_name = ""
        self.output_name = ""
        self.embedding_name: str | None = None
        self.roles: dict[str, str] = {}
        self.fixed_batch: int | None = None
        self._ports: dict[str, Any] = {}
        self._dtype: Any = np.float32

    @classmethod
    def load(
        cls,
        path: Path,
        spec: ModelSpec,
        threads: int | None = None,
        spin: bool = True,
        device: str = "cpu",
    ) -> OpenVinoRuntime:
        core = ov.Core()
        target = _device_name(Device.parse(device))
        if path.suffix.lower() == ".onnx":  # OpenVINO follows its external data as onnxruntime
            check_self_contained(path)
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise InputError(
                f"{path.name} is not a model OpenVINO can read: {describe_exception(exc)}"
            ) from None
        o = spec.output
        wanted = {
            n
            for n in (spec.input.name, o.name, o.embedding, *task_outputs(spec).values())
            if isinstance(n, str)
        }
        inputs = [_info(p, wanted) for p in model.inputs]
        outputs = [_info(p, wanted) for p in model.outputs]
        floats = [t.name for t in outputs if t.dtype in _FLOATS]
        declared = resolve_input(inputs, spec)
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",  # one batch at a time
            # The model as it was saved: on a CPU with bfloat16 units (AVX512-BF16, AMX) and on
            # GPUs, OpenVINO otherwise computes in bf16 / f16 by default, which moved scores by
            # 1e-3 on such a machine. A validation judges the model's own numbers; a lower
            # precision is a model of its own (a quantised twin, registered as such).
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            compiled = core.compile_model(model, target, config)
        except Exception as exc:
            raise InputError(
                f"{path.name} cannot be compiled for {target}: {describe_exception(exc)}"
            ) from None
        signature = ModelSignature(
            tuple(inputs),
            tuple(outputs),
            {"runtime": "openvino", "device": target, "openvino": ov.__version__},
        )
        runtime = cls(compiled, spec, signature)
        runtime.input_name = declared.name
        runtime._dtype = _FLOATS.get(declared.dtype, np.float32)
        ports = list(compiled.outputs)
        runtime._ports = {t.name: ports[i] for i, t in enumerate(outputs)}
        if spec.task != "classification":
            runtime.roles = resolve_roles(outputs, floats, spec)
            runtime.output_name = next(iter(runtime.roles.values()))
        else:
            runtime.output_name = resolve_scores(outputs, floats, spec)
            runtime.embedding_name = resolve_embedding(outputs, floats, spec)
        runtime.fixed_batch = fixed_batch(declared, spec)
        if runtime.fixed_batch is not None:
            signature.extra["fixed_batch"] = runtime.fixed_batch
        smoke_test(runtime, spec, runtime.output_name, runtime.embedding_name)
        return runtime

    def _run(self, names: list[str], inputs: npt.NDArray[np.float32]) -> list[Any]:
        def once(x: npt.NDArray[Any]) -> list[Any]:
            results = self.request.infer({self.input_name: np.ascontiguousarray(x)})
            # Copies: the request reuses its output buffers on the next call.
            return [np.array(results[self._ports[name]]) for name in names]

        return in_pieces(once, inputs.astype(self._dtype, copy=False), self.fixed_batch)


def load(
    path: Path,
    spec: ModelSpec,
    threads: int | None = None,
    spin: bool = True,
    device: str = "cpu",
) -> OpenVinoRuntime:
    """The runtime entry's loader (``assay.runtimes.RUNTIMES``)."""
    return OpenVinoRuntime.load(path, spec, threads=threads, spin=spin, device=device)
