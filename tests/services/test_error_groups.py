"""Misclassified items grouped by similarity on the model's embedding output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay import api
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from tests.models import embedding_onnx, write_spec


def planted(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Two far-apart regions where the expert label disagrees with the rule the model learned."""
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=(n, 4))
    kind = np.zeros(n, dtype=int)
    kind[:150], kind[150:300] = 1, 2
    x[kind == 1, 2:] += 6.0  # region A
    x[kind == 2, 2:] -= 6.0  # region B
    rule = np.where(x[:, 0] > 0, "defect", "ok")
    label = np.where(kind > 0, np.where(rule == "ok", "defect", "ok"), rule)
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).assign(label=label)
    csv = tmp_path / "parts.csv"
    frame.to_csv(csv, index=False)
    return csv, kind


def rule_model(tmp_path: Path) -> tuple[Path, Path]:
    """The model and spec of ``planted``'s rule (defect when f0 > 0), embedding = the inputs."""
    weights = np.zeros((4, 2))
    weights[0] = [8.0, -8.0]  # labels [defect, ok]: defect when f0 > 0
    onnx = embedding_onnx(tmp_path / "m.onnx", weights, np.eye(4))
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["f0", "f1", "f2", "f3"]},
        output={"name": "probabilities", "embedding": "embedding"},
    )
    return onnx, spec


def test_errors_are_grouped_on_the_embedding_and_planted_regions_separate(tmp_path: Path) -> None:
    csv, kind = planted(tmp_path)
    onnx, spec = rule_model(tmp_path)
    home = tmp_path / "home"
    api.add_dataset("parts", csv, home=home)
    api.add_model("m", onnx, spec=spec, home=home)
    v = api.validate(model="m", dataset="parts", out=tmp_path / "run", home=home)
    eg = v.result.error_groups
    assert eg is not None and "embedding output 'embedding' (4-d)" in eg["method"]
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    wrong = (preds["correct"] == False).to_numpy()  # noqa: E712 - nullable column
    assert eg["n_errors"] == wrong.sum() == sum(g["n_items"] for g in eg["groups"])
    groups = pd.read_parquet(tmp_path / "run" / "error_groups.parquet")
    assert sorted(groups["row"]) == np.flatnonzero(wrong).tolist()  # every error, none twice
    # Each planted region lands (almost) whole in one group, and the two groups differ.
    by_row = dict(zip(groups["row"], groups["group"], strict=True))
    major = []
    for region in (1, 2):
        members = [by_row[r] for r in np.flatnonzero(kind == region) if r in by_row]
        top = max(set(members), key=members.count)
        assert members.count(top) >= 0.9 * len(members)
        major.append(top)
    assert major[0] != major[1]
    assert all(len(g["examples"]) <= 8 and g["description"] for g in eg["groups"])


def test_embedding_output_must_exist(tmp_path: Path) -> None:
    onnx = embedding_onnx(tmp_path / "m.onnx", np.ones((4, 2)), np.eye(4))
    spec = {
        "labels": ["a", "b"],
        "input": {"kind": "tabular", "columns": ["f0", "f1", "f2", "f3"]},
        "output": {"name": "probabilities", "embedding": "penultimate"},
    }
    with pytest.raises(InputError, match=r"output\.embedding 'penultimate' is not a model output"):
        api.add_model("m", onnx, spec=spec, home=tmp_path / "home")


def test_no_groups_without_exploration(tmp_path: Path) -> None:
    csv, _ = planted(tmp_path)
    onnx = embedding_onnx(tmp_path / "m.onnx", np.eye(4)[:, :2] * 8, np.eye(4))
    spec = {
        "labels": ["defect", "ok"],
        "input": {"kind": "tabular", "columns": ["f0", "f1", "f2", "f3"]},
        "output": {"name": "probabilities", "embedding": "embedding"},
    }
    home = tmp_path / "home"
    api.add_dataset("parts", csv, home=home)
    api.add_model("m", onnx, spec=spec, home=home)
    v = api.validate(
        model="m",
        dataset="parts",
        out=tmp_path / "run",
        home=home,
        config=ValidationConfig(explore=False),
    )
    assert v.result.error_groups is None
    assert not (tmp_path / "run" / "error_embeddings.parquet").exists()


@pytest.mark.parametrize("n", [10, 21, 31])
def test_fewer_errors_than_components_are_still_grouped(n: int) -> None:
    """Bug: with fewer errors than PCA components (21 of a demo's anomalies), the reducer's
    basis never fitted and ``group`` asked PCA for 32 components of 21 rows: the run crashed."""
    from assay.analysis.error_groups import COMPONENTS, group

    rng = np.random.default_rng(n)
    x = np.r_[rng.normal(0, 1, (n // 2, 100)), rng.normal(6, 1, (n - n // 2, 100))]
    found = group(x)
    assert found is not None and found.n_components <= min(COMPONENTS, n)
    assert found.groups.shape == (n,)


def test_identical_errors_form_no_groups_and_warn_nothing() -> None:
    """From a review: every misclassified image the same (a 16-bit set read white) printed
    scikit-learn's 'invalid value encountered in divide' on the terminal. Identical items
    form no groups, silently; a first chunk of them does not stop later chunks shaping the
    basis."""
    import warnings

    from assay.analysis.error_groups import Reducer, group

    same = np.tile(np.arange(147.0), (40, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reducer = Reducer(lambda c: c)
        reducer.fit([same], 147)
        assert group(reducer.transform(same)) is None
        rng = np.random.default_rng(0)
        varied = np.r_[rng.normal(0, 1, (40, 147)), rng.normal(5, 1, (40, 147))]
        reducer = Reducer(lambda c: c)
        reducer.fit([same, varied], 147)
        found = group(reducer.transform(varied))
        assert found is not None and found.k >= 2
