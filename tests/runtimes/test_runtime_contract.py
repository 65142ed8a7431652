"""The runtime contract, for every runtime that runs a model file (STYLE-CODE B7): the reference's
scores for every item in batches of any size, the spec checked at load with one clear line, a
file that is not a model refused, and the device asked for honoured or refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.core.errors import InputError
from assay.core.ports import ModelBatch, Runtime
from assay.core.spec import parse_model_spec
from assay.runtimes import RUNTIMES, load_model, runtime_kind
from assay.runtimes.fake import FakeRuntime
from tests.models import fit_logistic, tabular_onnx

torch_models = pytest.importorskip("tests.torch_models")
COLUMNS = ["a", "b", "c"]
KINDS = ["onnx", "sklearn", "fake", "torchscript", "openvino", "openvino-onnx"]


def spec(labels: list[str] | None = None, columns: list[str] | None = None) -> Any:
    return parse_model_spec(
        {
            "labels": labels or ["defect", "ok"],
            "input": {"kind": "tabular", "columns": columns or COLUMNS},
        }
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, 0, 1)
    return x, y


@pytest.fixture(scope="module")
def files(
    data: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A scikit-learn model (ONNX, skops) and a PyTorch one (TorchScript, ONNX, OpenVINO IR)."""
    import skops.io as sio

    x, y = data
    folder = tmp_path_factory.mktemp("contract")
    names = np.array(["defect", "ok"])[y]
    sk = fit_logistic(x, names)
    sio.dump(sk, folder / "model.skops")
    module = torch_models.fit(
        torch_models.Tabular(x.mean(axis=0), x.std(axis=0), 2), x, y, steps=50
    )
    exported = torch_models.export_all(module, x[:4], folder, "mlp")
    return {
        "sklearn": sk,
        "torch": module,
        "onnx": tabular_onnx(sk, 3, folder / "model.onnx"),
        "skops": folder / "model.skops",
        **{f"torch-{k}": v for k, v in exported.items()},
    }


def runtime_and_reference(
    kind: str, files: dict[str, Any]
) -> tuple[Runtime, Callable[[np.ndarray], np.ndarray]]:
    import torch

    def sklearn_reference(x: np.ndarray) -> np.ndarray:
        return np.asarray(files["sklearn"].predict_proba(x))

    def torch_reference(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(files["torch"](torch.tensor(x)).numpy())

    if kind == "fake":
        return FakeRuntime(sklearn_reference), sklearn_reference
    if kind in ("onnx", "sklearn"):
        return load_model(files["onnx" if kind == "onnx" else "skops"], spec()), sklearn_reference
    if kind == "openvino-onnx":  # OpenVINO's own reading of the ONNX file
        return load_model(files["torch-onnx"], spec(), "openvino"), torch_reference
    return load_model(files[f"torch-{kind}"], spec()), torch_reference


@pytest.mark.parametrize("kind", KINDS)
def test_scores_match_the_reference_for_every_item_in_batches_of_any_size(
    kind: str, files: dict[str, Any], data: tuple[np.ndarray, np.ndarray]
) -> None:
    runtime, reference = runtime_and_reference(kind, files)
    x = data[0]
    for size in (1, 7, 300):
        np.testing.assert_allclose(
            runtime.predict(ModelBatch.of(x[:size])), reference(x[:size]), atol=1e-5
        )
    assert len(runtime.signature.inputs) == 1
    assert runtime.signature.to_dict()["outputs"]


@pytest.mark.parametrize("kind", ["onnx", "sklearn", "torchscript", "openvino", "openvino-onnx"])
def test_a_spec_that_does_not_fit_is_refused_at_load_with_one_line(
    kind: str, files: dict[str, Any]
) -> None:
    path = {
        "onnx": files["onnx"],
        "sklearn": files["skops"],
        "torchscript": files["torch-torchscript"],
        "openvino": files["torch-openvino"],
        "openvino-onnx": files["torch-onnx"],
    }[kind]
    runtime = "openvino" if kind == "openvino-onnx" else None
    with pytest.raises(InputError) as wrong_labels:
        load_model(path, spec(labels=["a", "b", "c"]), runtime)
    assert "'c'" in str(wrong_labels.value) or "3 labels" in str(wrong_labels.value)
    assert "\n" not in str(wrong_labels.value)
    with pytest.raises(InputError) as wrong_columns:
        load_model(path, spec(columns=["a", "b"]), runtime)
    assert "\n" not in str(wrong_columns.value)


@pytest.mark.parametrize("suffix", [".pt", ".xml", ".onnx"])
def test_a_file_that_is_not_a_model_is_refused_naming_it(suffix: str, tmp_path: Path) -> None:
    bad = tmp_path / f"junk{suffix}"
    bad.write_bytes(b"<net>definitely not a model</net>" if suffix == ".xml" else b"\x00junk")
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(InputError, match=f"junk{suffix}"):
        load_model(bad, spec())


def test_a_pickled_module_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    """``torch.save`` of a module is a pickle, which runs code when loaded: refused unread."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    path = tmp_path / "module.pt"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InputError, match="not a TorchScript file"):
        load_model(path, spec())
    assert not marker.exists()


def test_an_ir_without_its_weights_is_refused(files: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    lonely = tmp_path / "lonely.xml"
    shutil.copy(files["torch-openvino"], lonely)
    with pytest.raises(InputError, match=r"lonely\.bin"):
        RUNTIMES["openvino"].companion_files(lonely)


def test_an_ir_with_a_fixed_batch_of_one_is_fed_in_pieces(
    files: dict[str, Any], data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(files["torch-onnx"]))
    model.reshape({"input": [1, 3]})
    ov.save_model(model, str(tmp_path / "one.xml"), compress_to_fp16=False)
    runtime = load_model(tmp_path / "one.xml", spec())
    assert runtime.signature.extra["fixed_batch"] == 1
    x = data[0][:9]
    reference = load_model(files["torch-openvino"], spec())
    np.testing.assert_allclose(
        runtime.predict(ModelBatch.of(x)), reference.predict(ModelBatch.of(x)), atol=1e-6
    )


@pytest.mark.parametrize(
    ("kind", "device", "message"),
    [
        ("onnx", "cuda", "no CUDA execution provider"),
        ("torchscript", "cuda:0", "no CUDA"),
        ("openvino", "cuda", "does not run on NVIDIA GPUs"),
        ("sklearn", "cuda", "runs on the CPU only"),
        ("onnx", "tpu", "cpu or cuda"),
    ],
)
def test_a_device_the_runtime_cannot_use_is_refused(
    kind: str, device: str, message: str, files: dict[str, Any]
) -> None:
    """No GPU here: each runtime says so in one line (on a GPU machine the first two run)."""
    import onnxruntime as ort
    import torch

    if (
        kind == "onnx"
        and device == "cuda"
        and "CUDAExecutionProvider" in ort.get_available_providers()
    ) or (kind == "torchscript" and torch.cuda.is_available()):
        pytest.skip("this machine has the GPU: see benchmarks/gpu_check.py")
    path = {
        "onnx": files["onnx"],
        "sklearn": files["skops"],
        "torchscript": files["torch-torchscript"],
        "openvino": files["torch-openvino"],
    }[kind]
    with pytest.raises(InputError, match=message):
        load_model(path, spec(), device=device)


def test_suffixes_name_their_runtime() -> None:
    assert runtime_kind(Path("m.xml")) == "openvino"
    assert runtime_kind(Path("m.pt")) == "torchscript"
    assert runtime_kind(Path("m.onnx")) == "onnx"
    assert RUNTIMES["recorded"].suffixes == ()  # chosen only with --predictions


def test_openvino_computes_in_the_precision_the_model_was_saved_in(files: dict[str, Any]) -> None:
    """On a CPU with bfloat16 units OpenVINO computes in bf16 unless told otherwise, which moved
    scores by 1e-3 (caught by the reference comparison above on such a machine). Asserted on the
    compiled model, so it holds on machines without those units too."""
    import openvino as ov

    runtime = load_model(files["torch-openvino"], spec())
    hint = runtime.compiled.get_property("INFERENCE_PRECISION_HINT")  # type: ignore[attr-defined]
    assert hint == ov.Type.f32
