"""Small detection, segmentation and anomaly models, written directly as ONNX graphs (no torch).

All three rest on one idea, the simplest inspector there is: compare each scan with a reference
image of a good part. Per pixel, the deviation is |grey - reference|:

- the **anomaly** model outputs that deviation, smoothed over 3x3 pixels, as its anomaly map, and
  the map's maximum as the image's score;
- the **segmentation** model outputs two logits per pixel, background 0 and defect
  ``gain * (deviation - offset)``;
- the **grid detector** averages the deviation over the cells of a grid and outputs one box per
  cell (xyxy, model-input pixels), scored ``sigmoid(gain * (mean deviation - offset))``, of class 0.

They are real models in the sense that matters here: ONNX files whose outputs depend on the
pixels, judged by Assay like any exported network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

OPSET = 17


def _deviation_nodes(
    reference: npt.NDArray[np.float32] | None, size: tuple[int, int] | None = None, margin: int = 0
) -> tuple[list[Any], list[Any]]:
    """Nodes from ``image`` [N, C, H, W] to ``deviation`` [N, 1, H, W]: the distance to the
    reference image, or (None) to the mean of the pixel's own row, which suits a product that
    runs along the image's width, as a cable does (its profile, lighting and position are
    constant along a row; a defect is local)."""
    from onnx import helper, numpy_helper

    inits = []
    nodes = [helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1)]
    if reference is None:
        nodes.append(helper.make_node("ReduceMean", ["grey"], ["reference"], axes=[3], keepdims=1))
    else:
        h, w = reference.shape
        inits.append(
            numpy_helper.from_array(reference.reshape(1, 1, h, w).astype(np.float32), "reference")
        )
    nodes += [
        helper.make_node("Sub", ["grey", "reference"], ["signed"]),
        helper.make_node("Abs", ["signed"], ["raw_deviation"]),
    ]
    # The outer ``margin`` columns are not looked at (a line camera's borders are blurred).
    h, w = _size(reference, size)
    valid = np.zeros((1, 1, h, w), np.float32)
    valid[..., margin : w - margin] = 1.0
    inits.append(numpy_helper.from_array(valid, "valid"))
    nodes.append(helper.make_node("Mul", ["raw_deviation", "valid"], ["deviation"]))
    return nodes, inits


def _smoothing(source: str, target: str) -> Any:
    """The mean over each pixel's 3 x 3 neighbourhood (inside the image), same size."""
    from onnx import helper

    return helper.make_node(
        "AveragePool",
        [source],
        [target],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        count_include_pad=0,
    )


def _size(
    reference: npt.NDArray[np.float32] | None, size: tuple[int, int] | None
) -> tuple[int, int]:
    if reference is not None:
        return int(reference.shape[0]), int(reference.shape[1])
    if size is None:
        raise ValueError("a model without a reference image needs its input size")
    return size


def _save(
    nodes: list[Any],
    inits: list[Any],
    outputs: list[Any],
    size: tuple[int, int],
    channels: int,
    path: Path,
    name: str,
) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, *size])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def grid_detector_onnx(
    path: Path,
    reference: npt.NDArray[np.float32],
    cell: int,
    gain: float = 40.0,
    offset: float = 0.08,
    channels: int = 1,
) -> Path:
    """A detector: outputs ``boxes`` [N, D, 4] (xyxy, input pixels), ``scores`` [N, D] and
    ``classes`` [N, D] (all 0), one box per ``cell`` x ``cell`` square of the input."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = reference.shape
    gh, gw = h // cell, w // cell
    ys, xs = np.mgrid[0:gh, 0:gw]
    grid = np.stack([xs * cell, ys * cell, xs * cell + cell, ys * cell + cell], -1)
    nodes, inits = _deviation_nodes(reference)
    inits += [
        numpy_helper.from_array(grid.reshape(1, gh * gw, 4).astype(np.float32), "grid"),
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        numpy_helper.from_array(np.array([2], np.int64), "last"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes += [
        helper.make_node(
            "AveragePool", ["deviation"], ["cells"], kernel_shape=[cell, cell], strides=[cell, cell]
        ),
        helper.make_node("Flatten", ["cells"], ["flat"], axis=1),
        helper.make_node("Sub", ["flat", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["scores"]),
        helper.make_node("Mul", ["scores", "zero"], ["classes"]),
        helper.make_node("Unsqueeze", ["classes", "last"], ["column"]),
        helper.make_node("Add", ["column", "grid"], ["boxes"]),
    ]
    outputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", gh * gw, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", gh * gw]),
        helper.make_tensor_value_info("classes", TensorProto.FLOAT, ["N", gh * gw]),
    ]
    return _save(nodes, inits, outputs, (h, w), channels, path, "grid-detector")


def blob_detector_onnx(
    path: Path,
    reference: npt.NDArray[np.float32] | None,
    size: tuple[int, int],
    gain: float = 40.0,
    offset: float = 0.08,
    channels: int = 1,
    margin: int = 0,
) -> Path:
    """A detector of one box per image: around every pixel whose smoothed deviation exceeds
    ``offset``, scored ``sigmoid(gain * (highest deviation - offset))``, of class 0. Outputs
    ``boxes`` [N, 1, 4] (xyxy, input pixels), ``scores`` [N, 1], ``classes`` [N, 1]."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = size
    nodes, inits = _deviation_nodes(reference, size, margin)
    inits += [
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        numpy_helper.from_array(np.arange(w, dtype=np.float32).reshape(1, w), "xs"),
        numpy_helper.from_array(np.arange(h, dtype=np.float32).reshape(1, h), "ys"),
        numpy_helper.from_array(np.array(1e6, np.float32), "far"),
        numpy_helper.from_array(np.array(-1e6, np.float32), "near"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes += [
        _smoothing("deviation", "smooth"),
        helper.make_node("Greater", ["smooth", "offset"], ["hot"]),
        helper.make_node("Cast", ["hot"], ["hot_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["hot_f"], ["cols"], axes=[1, 2], keepdims=0),  # [N, W]
        helper.make_node("ReduceMax", ["hot_f"], ["rows"], axes=[1, 3], keepdims=0),  # [N, H]
        helper.make_node("Cast", ["cols"], ["cols_b"], to=TensorProto.BOOL),
        helper.make_node("Cast", ["rows"], ["rows_b"], to=TensorProto.BOOL),
        helper.make_node("Where", ["cols_b", "xs", "far"], ["x_lo"]),
        helper.make_node("Where", ["cols_b", "xs", "near"], ["x_hi"]),
        helper.make_node("Where", ["rows_b", "ys", "far"], ["y_lo"]),
        helper.make_node("Where", ["rows_b", "ys", "near"], ["y_hi"]),
        helper.make_node("ReduceMin", ["x_lo"], ["x1"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["x_hi"], ["x2m"], axes=[1], keepdims=1),
        helper.make_node("ReduceMin", ["y_lo"], ["y1"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["y_hi"], ["y2m"], axes=[1], keepdims=1),
        helper.make_node("Add", ["x2m", "one"], ["x2"]),
        helper.make_node("Add", ["y2m", "one"], ["y2"]),
        helper.make_node("Concat", ["x1", "y1", "x2", "y2"], ["box"], axis=1),  # [N, 4]
        helper.make_node("Unsqueeze", ["box", "axis1"], ["raw_boxes"]),  # [N, 1, 4]
        # No pixel above the offset: an empty box at 0 (its score is below one half anyway).
        helper.make_node("ReduceMax", ["smooth"], ["peak"], axes=[2, 3], keepdims=0),  # [N, 1]
        helper.make_node("Sub", ["peak", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["scores"]),
        helper.make_node("Greater", ["peak", "offset"], ["found"]),
        helper.make_node("Unsqueeze", ["found", "axis1"], ["found3"]),
        helper.make_node("Where", ["found3", "raw_boxes", "zero"], ["boxes"]),
        helper.make_node("Mul", ["scores", "zero"], ["classes"]),
    ]
    outputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 1, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1]),
        helper.make_tensor_value_info("classes", TensorProto.FLOAT, ["N", 1]),
    ]
    return _save(nodes, inits, outputs, (h, w), channels, path, "blob-detector")


def segmenter_onnx(
    path: Path,
    reference: npt.NDArray[np.float32] | None,
    gain: float = 40.0,
    offset: float = 0.08,
    channels: int = 1,
    size: tuple[int, int] | None = None,
    margin: int = 0,
) -> Path:
    """A two-class segmenter: ``logits`` [N, 2, H, W] (background, defect)."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = _size(reference, size)
    nodes, inits = _deviation_nodes(reference, size, margin)
    inits += [
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes += [
        _smoothing("deviation", "smooth"),
        helper.make_node("Sub", ["smooth", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["defect"]),
        helper.make_node("Mul", ["defect", "zero"], ["background"]),
        helper.make_node("Concat", ["background", "defect"], ["logits"], axis=1),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2, h, w])]
    return _save(nodes, inits, outputs, (h, w), channels, path, "segmenter")


def anomaly_onnx(
    path: Path,
    reference: npt.NDArray[np.float32] | None,
    channels: int = 1,
    size: tuple[int, int] | None = None,
    margin: int = 0,
) -> Path:
    """An anomaly model: ``anomaly_map`` [N, 1, H, W] and ``score`` [N] (the map's maximum)."""
    from onnx import TensorProto, helper

    h, w = _size(reference, size)
    nodes, inits = _deviation_nodes(reference, size, margin)
    nodes += [
        _smoothing("deviation", "anomaly_map"),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2, 3], keepdims=0),
    ]
    outputs = [
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, h, w]),
        helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
    ]
    return _save(nodes, inits, outputs, (h, w), channels, path, "anomaly")
