"""FakeRuntime: a model made of a function, for tests of everything around a runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.ports import ModelBatch, ModelSignature, TensorInfo


class FakeRuntime:
    """Returns ``fn(inputs)``; counts calls so tests can see batching."""

    def __init__(self, fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[Any]]) -> None:
        self.fn = fn
        self.calls = 0
        self.signature = ModelSignature(
            (TensorInfo("x", (None,), "float32"),), (TensorInfo("y", (None,), "float64"),)
        )

    def close(self) -> None:
        pass

    def predict(self, batch: ModelBatch) -> npt.NDArray[Any]:
        self.calls += 1
        return np.asarray(self.fn(batch.inputs))
