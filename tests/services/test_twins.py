"""Twins: two model versions that answer the same on every item, whatever their spec's text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from assay.core.records import ModelVersion
from assay.services.twins import twin_reason


def _version(spec: dict[str, Any], n: int) -> ModelVersion:
    return ModelVersion(
        n, "m", n, f"v{n}", "onnx", "/store/abc.onnx", "m.onnx", 10, spec,
        {"file_sha256": "abc", "resolved": {"input": "x", "output": "p", "embedding": None,
                                            "roles": None}},
        datetime.now(UTC),
    )  # fmt: skip


BASE = {"task": "classification", "labels": ["defect", "ok"], "negative": "ok",
        "input": {"kind": "image", "size": [8, 8], "color": "rgb", "mean": [0.5], "std": [1.0]},
        "output": {"kind": "probabilities"}}  # fmt: skip


def test_specs_that_read_the_same_answers_are_twins() -> None:
    """A hostile review's two: a threshold of 0.5 on the first of two probabilities (the
    argmax, ties included), and one mean per channel spelled out."""
    halfway = BASE | {"threshold": 0.5}
    spelled = BASE | {"input": BASE["input"] | {"mean": [0.5] * 3, "std": [1.0] * 3}}
    for other in (halfway, spelled):
        assert twin_reason(_version(BASE, 1), _version(other, 2)) is not None, other


def test_specs_that_change_the_answers_are_not() -> None:
    for other in (
        BASE | {"threshold": 0.6},
        BASE | {"labels": ["ok", "defect"], "threshold": 0.5},  # 0.5 on the second: ties differ
        BASE | {"input": BASE["input"] | {"mean": [0.5, 0.4, 0.5]}},
        BASE | {"output": {"kind": "logits"}},
    ):
        assert twin_reason(_version(BASE, 1), _version(other, 2)) is None, other
    moved = dataclasses.replace(_version(BASE, 2), signature={"file_sha256": "def"})
    assert twin_reason(_version(BASE, 1), moved) is None  # another file
