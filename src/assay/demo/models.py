"""The demo's two small image classifiers, trained with scikit-learn and exported to ONNX.

Both take a [N, 1, 64, 64] float tensor (pixels scaled to 0..1): a Reshape node is put in front of
the converted scikit-learn pipeline, so the ONNX file is an ordinary image model to Assay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from assay.demo.cable import SIZE


def to_onnx_image_model(pipeline: object, size: tuple[int, int], channels: int, path: Path) -> Path:
    """Export a fitted pipeline on flattened pixels as an ONNX image model [N, C, H, W]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    n_values = channels * size[0] * size[1]
    classifier = pipeline.steps[-1][1]  # type: ignore[attr-defined]
    model = convert_sklearn(
        pipeline,
        initial_types=[("flat", FloatTensorType([None, n_values]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    graph = model.graph
    graph.initializer.append(
        numpy_helper.from_array(np.array([-1, n_values], np.int64), "flat_shape")
    )
    graph.node.insert(
        0, helper.make_node("Reshape", ["image", "flat_shape"], ["flat"], name="flatten")
    )
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, *size])
    )
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def train_models(
    pixels: npt.NDArray[np.uint8], labels: list[str], out: Path
) -> tuple[Path, Path, list[str]]:
    """Fit the 'production' (PCA + logistic regression) and 'candidate' (PCA + MLP) models.

    Returns both ONNX paths and the class names in the models' output order.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0
    y = np.asarray(labels)
    production = make_pipeline(PCA(24, random_state=0), LogisticRegression(max_iter=300, C=0.5))
    candidate = make_pipeline(
        PCA(64, random_state=0),
        StandardScaler(),
        MLPClassifier((96,), max_iter=400, alpha=1e-3, early_stopping=True, random_state=0),
    )
    production.fit(x, y)
    candidate.fit(x, y)
    paths = out / "scanner-production.onnx", out / "scanner-candidate.onnx"
    to_onnx_image_model(production, (SIZE, SIZE), 1, paths[0])
    to_onnx_image_model(candidate, (SIZE, SIZE), 1, paths[1])
    return paths[0], paths[1], [str(c) for c in production.classes_]
