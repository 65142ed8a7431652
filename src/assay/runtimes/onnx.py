"""OnnxRuntime: ONNX models through onnxruntime, on the CPU or a CUDA GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from assay.core.errors import InputError, describe_exception
from assay.core.ports import ModelSignature, TensorInfo
from assay.core.spec import ModelSpec, canonical_label, label_key
from assay.runtimes.base import (
    NamedOutputs,
    expected_input_shape,
    fixed_batch,
    in_pieces,
    resolve_embedding,
    resolve_input,
    resolve_roles,
    resolve_scores,
    smoke_test,
)
from assay.runtimes.device import Device
from assay.runtimes.onnx_files import check_self_contained, external_tensors

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def _info(arg: Any) -> TensorInfo:
    return TensorInfo(arg.name, tuple(arg.shape), arg.type)


def _providers(device: Device) -> list[Any]:
    """The execution providers for ``device``; InputError when this onnxruntime lacks CUDA."""
    if device.kind == "cpu":
        return ["CPUExecutionProvider"]
    if device.kind != "cuda":
        raise InputError(f"onnxruntime runs on cpu or cuda[:N], not {device.name!r}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise InputError(
            "--device cuda: this onnxruntime has no CUDA execution provider "
            "(pip install 'assay[gpu]', which installs onnxruntime-gpu)"
        )
    return [("CUDAExecutionProvider", {"device_id": device.index}), "CPUExecutionProvider"]


class OnnxRuntime(NamedOutputs):
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
        cls,
        path: Path,
        spec: ModelSpec,
        threads: int | None = None,
        spin: bool = True,
        device: str = "cpu",
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
        providers = _providers(Device.parse(device))
        check_self_contained(path)
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises several private exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path.name} is not a valid ONNX model: {first[:300]}") from None
        if providers[0] != "CPUExecutionProvider" and "CUDAExecutionProvider" not in (
            session.get_providers()
        ):  # onnxruntime falls back to the CPU when CUDA cannot start: say so, never run slow
            raise InputError(f"--device {device}: onnxruntime could not start CUDA here")
        inputs = [_info(i) for i in session.get_inputs()]
        outputs = [_info(o) for o in session.get_outputs()]
        floats = [o.name for o in outputs if o.dtype in _DTYPES]
        declared = resolve_input(inputs, spec)
        if spec.task != "classification":
            roles = resolve_roles(outputs, floats, spec)
            runtime = cls(session, spec, declared.name, next(iter(roles.values())))
            runtime.roles = roles
        else:
            maps = [o.name for o in outputs if o.dtype.startswith("seq(map(")]
            if spec.output.name is None and not floats and len(maps) == 1:
                output_name = maps[0]
            else:
                output_name = resolve_scores(outputs, floats, spec)
            runtime = cls(session, spec, declared.name, output_name)
            runtime.embedding_name = resolve_embedding(outputs, floats, spec)
        runtime.fixed_batch = fixed_batch(declared, spec)
        if runtime.fixed_batch is not None:
            runtime.signature.extra["fixed_batch"] = runtime.fixed_batch
        declared_output = next(o for o in outputs if o.name == runtime.output_name)
        if declared_output.dtype.startswith("seq(map("):
            runtime.zipmap_order = runtime._zipmap_keys(path)
        smoke_test(runtime, spec, runtime.output_name, runtime.embedding_name)
        return runtime

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
        """A plain tensor, or the ZipMap's maps in the spec's label order."""
        if self.zipmap_order is None:
            return np.asarray(out)
        order = self.zipmap_order
        return np.array([[row[k] for k in order] for row in out], dtype=np.float64).reshape(
            -1, len(order)
        )

    def _run(self, names: list[str], inputs: npt.NDArray[np.float32]) -> list[Any]:
        """``session.run`` of ``names`` (in pieces for a model with a fixed batch size)."""
        return in_pieces(
            lambda x: list(self.session.run(names, {self.input_name: x})),
            inputs.astype(self._dtype, copy=False),
            self.fixed_batch,
        )


def check_label_output(runtime: OnnxRuntime, path: Path) -> None:
    """Refuse a spec whose label order the model's own class output contradicts. Converters
    (skl2onnx) give, beside the scores, the class each item is given; an MLP's graph keeps its
    classes in a constant, which ``check_class_order`` cannot read. On test items (random, at
    several scales, since the features' range is unknown here), the spec's label at the
    largest score is compared with that class. Refused only on proof of a swap: every clear
    item maps one way, two or more classes are seen and no two map onto one class, and some
    class maps onto another. A class output deciding by a rule of its own (a threshold) maps
    a class two ways, or two classes onto one, and is let be; so is a model whose test items
    all land in one class (nothing to tell: a swap is then missed)."""
    spec = runtime.spec
    if spec.task != "classification" or runtime.zipmap_order is not None:
        return
    named = [
        o
        for o in runtime.session.get_outputs()
        if o.name != runtime.output_name
        and o.type in ("tensor(int64)", "tensor(int32)", "tensor(string)")
        and len(o.shape) == 1
    ]
    if len(named) != 1:
        return
    labels = list(spec.labels)
    shape = expected_input_shape(spec)
    rng = np.random.default_rng(0)
    if len(shape) == 1:  # table rows: features may sit anywhere, scaled by the graph or not
        x = np.concatenate(
            [rng.normal(size=(32, *shape)) * scale for scale in (1.0, 10.0, 100.0, 1000.0)]
            + [rng.uniform(0, 1000, size=(32, *shape))]
        )
    else:  # a few images: a large network takes a second or more
        x = rng.normal(size=(8, *shape))
    try:
        given, scores = runtime._run([named[0].name, runtime.output_name], x.astype(np.float32))
    except Exception:  # the class output is not what the scores are: nothing to compare
        return
    scores = np.asarray(scores, np.float64)
    classes = [_class_name(v, labels) for v in np.asarray(given).ravel()]
    if scores.shape != (len(classes), len(labels)) or not set(classes) <= set(labels):
        return
    ranked = np.sort(scores, axis=1)
    clear = ranked[:, -1] > ranked[:, -2]
    read: dict[str, set[str]] = {}
    for top, cls in zip(np.argmax(scores, axis=1)[clear], np.asarray(classes)[clear], strict=True):
        read.setdefault(labels[top], set()).add(str(cls))
    if any(len(v) > 1 for v in read.values()):
        return
    mapping = {k: next(iter(v)) for k, v in read.items()}
    one_to_one = len(mapping) >= 2 and len(set(mapping.values())) == len(mapping)
    moved = {k: v for k, v in mapping.items() if v != k}
    if one_to_one and moved:
        spec_label, model_label = next(iter(moved.items()))
        raise InputError(
            f"{path.name}'s own class output {named[0].name!r} gives {model_label!r} where the "
            f"spec's label order reads {spec_label!r} from the scores: the spec lists {labels}, "
            f"not the model's order; every score would be read as another class's"
        )


def _class_name(value: object, labels: list[str]) -> str:
    """A class output's value as the spec names it: a model fitted on booleans gives 0 and 1
    where the spec says false and true."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    canon = {canonical_label(label): label for label in labels}
    if set(canon) == {"false", "true"} and text in ("0", "1"):
        return canon["true" if text == "1" else "false"]
    keys = {label_key(label): label for label in labels}
    if len(keys) == len(labels) and label_key(text) in keys:
        return keys[label_key(text)]  # 'Defect' where the spec says defect, 1.0 for 1
    return text


def check_class_order(path: Path, spec: ModelSpec, output_name: str | None = None) -> None:
    """Refuse a spec that lists a classifier's classes in another order than the model gives
    its scores. Converters (skl2onnx) write the classes into the graph's ONNX-ML classifier
    nodes; when they name exactly the spec's labels, they must be in the same order, or every
    score would be read as another class's. Nothing to check without such a node, when the
    classes are other names than the labels, or for a ZipMap output (read by name)."""
    import onnx

    if spec.task != "classification":
        return
    graph = onnx.load(str(path), load_external_data=False).graph
    name = output_name or spec.output.name  # the output the scores are read from
    maps = {o.name for o in graph.output if o.type.WhichOneof("value") == "sequence_type"}
    if name in maps or (name is None and len(maps) == 1):
        return
    read = [o for o in graph.output if o.name == name]
    if read and read[0].type.WhichOneof("value") == "tensor_type":
        dims = read[0].type.tensor_type.shape.dim
        if len(dims) < 2 or (dims[-1].HasField("dim_value") and dims[-1].dim_value == 1):
            return  # one score per item (the positive class's): there is no order to check
    declared = set()
    for node in graph.node:
        if node.domain != "ai.onnx.ml":
            continue
        for a in node.attribute:
            if a.name == "classlabels_strings":
                declared.add(tuple(s.decode("utf-8", "replace") for s in a.strings))
            elif a.name in ("classlabels_ints", "classlabels_int64s"):
                declared.add(tuple(str(i) for i in a.ints))
    if len(declared) != 1:
        return  # none, or several classifiers that disagree: nothing certain to say
    (classes,) = declared
    labels = tuple(spec.labels)
    # Compared as a spec and a model both mean them: ['Defect', 'Good'] against [good, defect]
    # was let through as 'other names', and every score read as the other class's (a review).
    # Where two share a key (A and a), as written: a key would hide their swap.
    theirs, ours = [label_key(c) for c in classes], [label_key(label) for label in labels]
    if len(set(theirs)) != len(theirs) or len(set(ours)) != len(ours):
        theirs, ours = list(classes), list(labels)
    if set(theirs) == set(ours) and theirs != ours:
        raise InputError(
            f"{path.name} gives its scores in the class order {list(classes)} (its classifier "
            f"node), but the spec lists {list(labels)}: every score would be read as another "
            f"class's; list the labels in the model's order"
        )


def single_file(path: Path, folder: Path) -> Path:
    """``path`` itself, or for a model whose weights lie in external data files beside it (as
    MLflow and large exports save them) one self-contained copy in ``folder``: the store keeps
    one file per model, digested whole. InputError when it cannot be made (missing data, 2 GiB)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's and onnx's own errors
        raise InputError(
            f"{path.name} is not a valid ONNX model: {describe_exception(exc)}"
        ) from None
    if not external_tensors(model):
        return path
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
        data = model.SerializeToString()
    except Exception as exc:
        raise InputError(
            f"{path.name} keeps its weights in external files that cannot be read or joined "
            f"into one file (2 GiB at most): {describe_exception(exc)}"
        ) from None
    left = external_tensors(model)
    if left:  # onnx joins initializers and node attributes, not sparse tensors or functions
        raise InputError(
            f"{path.name} keeps tensor {left[0]!r} in an external file that cannot be joined "
            "into the model: save the model with its data inside it"
        )
    out = folder / path.name
    out.write_bytes(data)
    return out


def load(
    path: Path,
    spec: ModelSpec,
    threads: int | None = None,
    spin: bool = True,
    device: str = "cpu",
) -> OnnxRuntime:
    """The runtime entry's loader (``assay.runtimes.RUNTIMES``)."""
    return OnnxRuntime.load(path, spec, threads=threads, spin=spin, device=device)
