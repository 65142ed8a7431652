"""TorchScriptRuntime: ``.pt`` files saved with ``torch.jit.save``, on the CPU or a CUDA GPU.

A TorchScript archive holds a program for TorchScript's own interpreter, not Python, and
``torch.jit.load`` reads it without Python's pickle: a pickled ``nn.Module`` (``torch.save``),
which would run code when loaded, is refused, and so is an archive whose code or graph uses an
operator that opens files (``torchscript_ops``). TorchScript declares no output names, so outputs
are named from what ``forward`` returns: ``output`` for a tensor, ``output_0``, ``output_1``...
for a tuple, the keys for a dict.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from assay.core.errors import InputError, describe_exception
from assay.core.ports import ModelSignature, TensorInfo
from assay.core.spec import ModelSpec
from assay.runtimes.base import (
    NamedOutputs,
    expected_input_shape,
    resolve_embedding,
    resolve_input,
    resolve_roles,
    resolve_scores,
    smoke_test,
)
from assay.runtimes.device import Device
from assay.runtimes.torchscript_ops import check_archive, check_module


def _torch_device(device: Device) -> torch.device:
    if device.kind == "cpu":
        return torch.device("cpu")
    if device.kind != "cuda":
        raise InputError(f"TorchScript models run on cpu or cuda[:N], not {device.name!r}")
    if not torch.cuda.is_available():
        raise InputError("--device cuda: this torch build has no CUDA (or no GPU is visible)")
    return torch.device("cuda", device.index)


def _named(out: Any) -> dict[str, torch.Tensor]:
    """``forward``'s result as named tensors."""
    if isinstance(out, torch.Tensor):
        return {"output": out}
    if isinstance(out, list | tuple):
        return {f"output_{i}": t for i, t in enumerate(out)}
    if isinstance(out, dict):
        return {str(k): v for k, v in out.items()}
    raise TypeError(f"forward returned {type(out).__name__}, not tensors")


class TorchScriptRuntime(NamedOutputs):
    def __init__(self, module: Any, spec: ModelSpec, device: torch.device) -> None:
        self.module = module
        self.spec = spec
        self.device = device
        self.output_name = "output"
        self.embedding_name: str | None = None
        self.roles: dict[str, str] = {}
        self.signature = ModelSignature((), ())

    @classmethod
    def load(
        cls,
        path: Path,
        spec: ModelSpec,
        threads: int | None = None,
        spin: bool = True,
        device: str = "cpu",
    ) -> TorchScriptRuntime:
        target = _torch_device(Device.parse(device))
        check_archive(path)  # before loading: loading runs a module's __setstate__
        if threads:
            torch.set_num_threads(int(threads))  # process-wide: torch has no per-model setting
        try:
            with warnings.catch_warnings():
                # torch 2.10+ deprecates TorchScript for torch.export; edge boxes still run it.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location=target)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise InputError(
                f"{path.name} is not a TorchScript file (save it with torch.jit.save; a "
                f"pickled nn.Module is refused, it could run code): {describe_exception(exc)}"
            ) from None
        check_module(module, path.name)
        module.eval()
        runtime = cls(module, spec, target)
        schema = getattr(getattr(module, "forward", None), "schema", None)
        arguments = [a.name for a in schema.arguments[1:]] if schema is not None else ["input"]
        inputs = [TensorInfo(a, (None, *expected_input_shape(spec)), "float32") for a in arguments]
        declared = resolve_input(inputs, spec)
        try:
            named = runtime._forward(np.zeros((2, *expected_input_shape(spec)), np.float32))
        except Exception as exc:
            raise InputError(
                f"model rejected the spec's input shape {[2, *expected_input_shape(spec)]}: "
                f"{describe_exception(exc)}"
            ) from None
        outputs = [
            TensorInfo(name, (None, *t.shape[1:]), str(t.dtype).removeprefix("torch."))
            for name, t in named.items()
        ]
        floats = [name for name, t in named.items() if t.is_floating_point()]
        if spec.task != "classification":
            runtime.roles = resolve_roles(outputs, floats, spec)
            runtime.output_name = next(iter(runtime.roles.values()))
        else:
            runtime.output_name = resolve_scores(outputs, floats, spec)
            runtime.embedding_name = resolve_embedding(outputs, floats, spec)
        runtime.signature = ModelSignature(
            (declared,),
            tuple(outputs),
            {"runtime": "torchscript", "device": str(target), "torch": torch.__version__},
        )
        smoke_test(runtime, spec, runtime.output_name, runtime.embedding_name)
        return runtime

    def _forward(self, inputs: npt.NDArray[np.float32]) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            return _named(self.module(x))

    def _run(self, names: list[str], inputs: npt.NDArray[np.float32]) -> list[Any]:
        named = self._forward(inputs)
        return [named[n].detach().to("cpu").numpy() for n in names]


def load(
    path: Path,
    spec: ModelSpec,
    threads: int | None = None,
    spin: bool = True,
    device: str = "cpu",
) -> TorchScriptRuntime:
    """The runtime entry's loader (``assay.runtimes.RUNTIMES``)."""
    return TorchScriptRuntime.load(path, spec, threads=threads, spin=spin, device=device)
