"""Runtimes come from one table of entries, loaded lazily; plugins add theirs."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from assay.core.errors import InputError
from assay.core.spec import parse_model_spec
from assay.runtimes import (
    RUNTIMES,
    RuntimeEntry,
    load_model,
    model_suffixes,
    register_runtime,
    runtime_kind,
)

SPEC = parse_model_spec({"labels": ["a", "b"], "input": {"kind": "tabular", "columns": ["x"]}})


def test_suffixes_pick_the_runtime() -> None:
    assert runtime_kind(Path("m.ONNX")) == "onnx"
    assert runtime_kind(Path("m.skops")) == "sklearn"
    assert {".onnx", ".skops"} <= set(model_suffixes())
    with pytest.raises(InputError, match=r"unsupported model format \.pkl \(use .*\.onnx"):
        runtime_kind(Path("m.pkl"))


def test_a_registered_runtime_is_loaded_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[Any] = []
    module = ModuleType("fake_runtime_plugin")

    class Fixed:
        def predict(self, batch: Any) -> np.ndarray:
            return np.tile([0.25, 0.75], (len(batch), 1))

    def load(path: Path, spec: Any, threads: Any, spin: bool) -> Fixed:
        loaded.append(path)
        return Fixed()

    module.load = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_runtime_plugin", module)
    monkeypatch.setitem(
        RUNTIMES,
        "fake",
        RuntimeEntry("fake", (".fake",), "fake_runtime_plugin:load", tasks=("classification",)),
    )
    assert runtime_kind(Path("x.fake")) == "fake" and loaded == []
    model = load_model(Path("x.fake"), SPEC)
    assert loaded == [Path("x.fake")] and model.predict(np.zeros((2, 1))).shape == (2, 2)
    det = parse_model_spec(
        {
            "task": "detection",
            "labels": ["pit"],
            "input": {"kind": "image", "size": [8, 8]},
            "output": {"boxes": "b", "scores": "s", "classes": "c"},
        }
    )
    with pytest.raises(InputError, match="task detection is not supported by the fake runtime"):
        load_model(Path("x.fake"), det)


def test_a_runtime_whose_package_is_missing_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = RuntimeEntry("vino", (".vino",), "no_such_package_here:load", extra="vino")
    monkeypatch.setitem(RUNTIMES, "vino", entry)
    with pytest.raises(
        InputError, match=r"the vino runtime is not installed \(pip install 'assay\[vino\]'\)"
    ):
        load_model(Path("m.vino"), SPEC)
    assert register_runtime(entry) is entry
