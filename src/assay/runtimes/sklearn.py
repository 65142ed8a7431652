"""SklearnRuntime: scikit-learn estimators saved with skops (never plain pickle)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError
from assay.core.spec import ModelSpec, TabularInput
from assay.runtimes.base import ModelSignature, TensorInfo, check_smoke_output

# Types from these packages are loaded without asking; anything else must be trusted explicitly.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class SklearnRuntime:
    """``predict_proba`` of a skops-loaded estimator on the spec's columns."""

    def __init__(self, estimator: Any, spec: ModelSpec) -> None:
        self.estimator = estimator
        self.spec = spec
        n = len(spec.input.columns) if isinstance(spec.input, TabularInput) else 0
        self.signature = ModelSignature(
            (TensorInfo("X", (None, n), "float32"),),
            (TensorInfo("predict_proba", (None, spec.n_classes), "float64"),),
            {"runtime": "sklearn", "estimator": type(estimator).__name__},
        )

    @classmethod
    def load(cls, path: Path, spec: ModelSpec, trusted: list[str] | None = None) -> SklearnRuntime:
        try:
            import skops.io as sio
        except ImportError:
            raise InputError(
                "scikit-learn models need the extra: pip install 'assay[sklearn]'"
            ) from None
        if not isinstance(spec.input, TabularInput):
            raise InputError("scikit-learn models take tabular input; the spec says image")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:
            raise InputError(
                f"{path.name} is not a valid skops file: {type(exc).__name__}"
            ) from None
        extra = set(trusted or [])
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES) and t not in extra]
        if refused:
            raise InputError(
                f"{path.name} contains types Assay does not trust by default: {refused[:3]}"
            )
        estimator = sio.load(path, trusted=untrusted)
        if not hasattr(estimator, "predict_proba"):
            raise InputError(
                f"{type(estimator).__name__} has no predict_proba; Assay needs class scores"
            )
        classes = [str(c) for c in getattr(estimator, "classes_", [])]
        if classes != list(spec.labels):
            raise InputError(
                f"model classes {classes} differ from the spec's labels {list(spec.labels)}"
            )
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None and [str(n) for n in names] != list(spec.input.columns):
            raise InputError(
                f"model was fitted on columns {list(names)[:5]}... but the spec lists {list(spec.input.columns)[:5]}..."
            )
        runtime = cls(estimator, spec)
        check_smoke_output(
            runtime.predict(np.zeros((2, len(spec.input.columns)), np.float32)),
            spec,
            "predict_proba",
        )
        return runtime

    def predict(self, inputs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        with warnings.catch_warnings():
            # Fitted on a DataFrame, fed an array in the same column order: the names were checked at load.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return np.asarray(self.estimator.predict_proba(inputs))
