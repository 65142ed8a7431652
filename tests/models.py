"""Small real models built in the tests (scikit-learn -> ONNX or skops), never downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml


def tabular_onnx(pipeline: Any, n_features: int, path: Path) -> Path:
    """Export a fitted scikit-learn classifier pipeline to ONNX with a probabilities output."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    classifier = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    model = convert_sklearn(
        pipeline,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(model.SerializeToString())
    return path


def write_spec(path: Path, **spec: Any) -> Path:
    path.write_text(yaml.safe_dump({"task": "classification", **spec}, sort_keys=False))
    return path


def image_spec(
    labels: list[str], size: tuple[int, int], color: str = "grayscale", **extra: Any
) -> dict[str, Any]:
    return {
        "labels": labels,
        "input": {
            "kind": "image",
            "size": list(size),
            "color": color,
            "layout": "NCHW",
            "scale": 1 / 255,
            "mean": [0.0],
            "std": [1.0],
        },
        "output": {"name": "probabilities", "kind": "probabilities"},
        **extra,
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, **kw: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, **kw)).fit(x, y)


def brightness_onnx(path: Path, size: tuple[int, int]) -> Path:
    """A tiny real ONNX image model: mean brightness -> logistic -> P(defect), P(ok)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[-8.0, 8.0]], np.float32), "w")
    b = numpy_helper.from_array(np.array([2.0, -2.0], np.float32), "b")
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax"], ["m2"]),
        helper.make_node("Gemm", ["m2", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, *size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        [w, b, ax],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def embedding_onnx(path: Path, weights: np.ndarray, projection: np.ndarray) -> Path:
    """A linear ONNX classifier with a second output: ``embedding = x @ projection``,
    ``probabilities = softmax(x @ weights)``; what a network's penultimate layer gives."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d, k = weights.shape
    nodes = [
        helper.make_node("MatMul", ["features", "p"], ["embedding"]),
        helper.make_node("MatMul", ["features", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k]),
            helper.make_tensor_value_info(
                "embedding", TensorProto.FLOAT, ["N", projection.shape[1]]
            ),
        ],
        [
            numpy_helper.from_array(weights.astype(np.float32), "w"),
            numpy_helper.from_array(projection.astype(np.float32), "p"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def heavy_onnx(path: Path, weights: np.ndarray, extra_floats: int) -> Path:
    """``probabilities = softmax(x @ weights + 0 * sum(ballast))``: a linear classifier that also
    holds ``extra_floats`` float32 weights in memory, as a large network would."""
    from onnx import TensorProto, helper, numpy_helper

    d, k = weights.shape
    ballast = np.full(extra_floats, 1e-9, np.float32)
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["linear"]),
        helper.make_node("ReduceSum", ["ballast"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["linear", "nothing"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "w"),
            numpy_helper.from_array(ballast, "ballast"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path.write_bytes(model.SerializeToString())
    return path


def passthrough_onnx(path: Path, n_outputs: int, plus: float = 0.0) -> Path:
    """``probabilities = features + plus``: the table's columns are the model's scores, so a test
    can feed any output it likes (rounding-sized negatives, rows that are not probabilities, and
    with ``plus=nan`` NaN for every item)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["features", "plus"], ["probabilities"])],
        "passthrough",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_outputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_outputs])],
        [helper.make_tensor("plus", TensorProto.FLOAT, [1], [plus])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def zipmap_onnx(pipeline: Any, n_features: int, path: Path) -> Path:
    """skl2onnx's default export: a label tensor and a ZipMap (one {class: p} map per item)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = convert_sklearn(
        pipeline,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(model.SerializeToString())
    return path


def registered_table_model(tmp: Path, rows: int = 300) -> dict[str, Path]:
    """A store at ``tmp/home`` holding dataset ``t`` (columns a, b and a bad/good label, as CSV)
    and model ``m`` (a logistic regression on them, as ONNX): the smallest real validation."""
    from assay.cli.main import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    y = np.where(x.sum(axis=1) > 0, "bad", "good")
    csv = tmp / "t.csv"
    csv.write_text(
        "a,b,label\n" + "".join(f"{a},{b},{v}\n" for (a, b), v in zip(x, y, strict=True))
    )
    onnx = tabular_onnx(fit_logistic(x, y), 2, tmp / "m.onnx")
    spec = write_spec(
        tmp / "m.yaml", labels=["bad", "good"], input={"kind": "tabular", "columns": ["a", "b"]}
    )
    home = tmp / "home"
    assert main(["dataset", "add", "t", str(csv), "--home", str(home)]) == 0
    assert main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", str(home)]) == 0
    return {"home": home, "onnx": onnx, "spec": spec, "csv": csv, "tmp": tmp}
