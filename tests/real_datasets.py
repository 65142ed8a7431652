"""The real datasets as arrays for training test models, loaded once per test session."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from assay.datasets.images import decode_image
from tests.conftest import shared_dataset


@lru_cache(maxsize=2)
def _neu(size: tuple[int, int]) -> tuple[list[Path], np.ndarray, np.ndarray]:
    images = sorted((shared_dataset("neu-det") / "IMAGES").glob("*.jpg"))
    labels = np.array([p.stem.rsplit("_", 1)[0] for p in images])
    pixels = np.stack([decode_image(str(p), None, size, "grayscale") for p in images])
    return images, pixels.reshape(len(images), -1).astype(np.float32) / 255, labels


def neu_det(size: tuple[int, int] = (32, 32)) -> tuple[Path, list[Path], np.ndarray, np.ndarray]:
    """Root, image paths, flattened pixels scaled to 0..1 (decoded as Assay does) and classes."""
    root = shared_dataset("neu-det")  # skips or fails as the environment requires, every time
    images, x, y = _neu(size)
    return root, images, x, y


@lru_cache(maxsize=1)
def _secom() -> tuple[np.ndarray, np.ndarray]:
    root = shared_dataset("secom")
    x = np.loadtxt(root / "secom.data")
    lines = (root / "secom_labels.data").read_text().splitlines()
    return x, np.array(["fail" if line.split()[0] == "1" else "pass" for line in lines])


def secom() -> tuple[Path, np.ndarray, np.ndarray]:
    """Root, the 590 sensor values (nan: missing) and pass/fail per entity."""
    root = shared_dataset("secom")
    x, y = _secom()
    return root, x, y


def neu_onnx_model(folder: Path, size: tuple[int, int] = (32, 32)) -> tuple[Path, Path, list[str]]:
    """A weak but real NEU-DET classifier (PCA 20 + logistic regression on a third of the images)
    exported to ONNX, with its spec: (model file, spec file, labels)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from assay.demo.models import to_onnx_image_model
    from tests.models import image_spec, write_spec

    _, _, x, y = neu_det(size)
    model = make_pipeline(PCA(20, random_state=0), LogisticRegression(max_iter=3000)).fit(
        x[::3], y[::3]
    )
    labels = [str(c) for c in model.classes_]
    onnx = to_onnx_image_model(model, size, 1, folder / "neu-scanner.onnx")
    spec = write_spec(folder / "neu-scanner.yaml", **image_spec(labels, size))
    return onnx, spec, labels
