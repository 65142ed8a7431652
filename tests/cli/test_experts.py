"""Several experts per item: consensus reference, disputed items, kappas, long annotation tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from assay.cli.main import main
from tests.models import fit_logistic, tabular_onnx, write_spec

EXPERTS = ("anna", "ben", "chen")


def experts_frame(seed: int = 0, n: int = 1500) -> pd.DataFrame:
    """Three experts who copy a hidden truth with their own error rates; some skip items."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    truth = np.where(x[:, 0] + 0.5 * x[:, 1] > 0.3, "defect", "ok")
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "a": x[:, 0], "b": x[:, 1]})
    for name, flip in zip(EXPERTS, (0.05, 0.1, 0.2), strict=True):
        other = np.where(truth == "ok", "defect", "ok")
        labels = np.where(rng.random(n) < flip, other, truth).astype(object)
        labels[rng.random(n) < 0.1] = None  # not every expert sees every item
        frame[f"label_{name}"] = labels
    return frame


def majority(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Consensus label (None when no strict majority) and the disputed flag, by plain counting."""
    votes = frame[[f"label_{e}" for e in EXPERTS]].to_numpy()
    out, disputed = [], []
    for row in votes:
        given = [v for v in row if not pd.isna(v)]
        top = max(set(given), key=given.count) if given else None
        ok = bool(given) and given.count(top) * 2 > len(given)
        out.append(top if ok else None)
        disputed.append(bool(given) and not ok)
    return np.array(out, dtype=object), np.array(disputed)


def setup(tmp_path: Path, frame: pd.DataFrame) -> tuple[str, Path]:
    consensus, _ = majority(frame)
    known = consensus != None  # noqa: E711 - object array
    x = frame[["a", "b"]].to_numpy(np.float32)
    onnx = tabular_onnx(
        fit_logistic(x[known], consensus[known].astype(str)), 2, tmp_path / "m.onnx"
    )
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = str(tmp_path / "home")
    assert main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", home]) == 0
    return home, onnx


def test_wide_expert_columns_give_consensus_disputes_and_kappas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = experts_frame()
    csv = tmp_path / "scans.csv"
    frame.to_csv(csv, index=False)
    home, _ = setup(tmp_path, frame)
    assert main(["dataset", "add", "scans", str(csv), "--id-column", "id", "--home", home]) == 0
    consensus, disputed = majority(frame)
    assert f"3 experts (anna, ben, chen); {disputed.sum()} item(s)" in capsys.readouterr().out
    out = tmp_path / "run"
    args = ["validate", "--model", "m", "--dataset", "scans", "--out", str(out), "--home", home]
    assert main(args) == 0
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    ea = result["expert_agreement"]
    assert ea["n_disputed"] == disputed.sum() > 0 and not ea["disputed_judged"]
    assert "consensus" in ea["reference"]
    # Disputed items are reported as such, never as model errors.
    preds = pd.read_parquet(out / "predictions.parquet")
    reasons = preds["error"].fillna("")
    assert (reasons.str.startswith("disputed")).sum() == disputed.sum()
    judged = preds["error"].isna().to_numpy()
    assert result["n_judged"] == judged.sum()
    assert (consensus[judged] != None).all()  # noqa: E711
    expected = (preds["predicted"].to_numpy()[judged] == consensus[judged]).mean()
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(expected)
    # Kappas equal scikit-learn's on the raw columns.
    for pair in ea["expert_pairs"]:
        a, b = frame[f"label_{pair['a']}"], frame[f"label_{pair['b']}"]
        both = a.notna() & b.notna()
        assert pair["kappa"] == pytest.approx(cohen_kappa_score(a[both], b[both]))
    for row in ea["model_vs_expert"]:
        e = frame[f"label_{row['expert']}"]
        seen = e.notna().to_numpy()
        assert row["kappa"] == pytest.approx(
            cohen_kappa_score(e[seen], preds["predicted"].to_numpy()[seen])
        )
    comp = ea["comparison"]
    low, high = comp["difference_ci"]
    assert comp["difference"] == pytest.approx(comp["model_mean_kappa"] - comp["expert_mean_kappa"])
    assert low <= comp["difference"] <= high
    expected = "more than" if low > 0 else "less than" if high < 0 else "as well as"
    assert comp["statement"].startswith(f"the model agrees with the experts {expected}")
    assert {d["item_id"] for d in ea["disputed"]} <= set(frame["id"][disputed])
    assert (out / "disputed_items.parquet").exists()
    assert len(pd.read_parquet(out / "disputed_items.parquet")) == disputed.sum()


def test_long_annotation_table_equals_wide_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = experts_frame(1, 600)
    wide = tmp_path / "wide.csv"
    frame.to_csv(wide, index=False)
    narrow = tmp_path / "items.csv"
    frame[["id", "a", "b"]].to_csv(narrow, index=False)
    long = frame.melt(id_vars="id", value_vars=[f"label_{e}" for e in EXPERTS]).dropna()
    long = long.rename(columns={"id": "item_id", "value": "label"})
    long["annotator"] = long.pop("variable").str.removeprefix("label_")
    long_csv = tmp_path / "annotations.csv"
    long.sample(frac=1.0, random_state=0).to_csv(long_csv, index=False)  # any row order
    home, _ = setup(tmp_path, frame)
    main(["dataset", "add", "wide", str(wide), "--id-column", "id", "--home", home])
    add = ["dataset", "add", "long", str(narrow), "--id-column", "id", "--home", home]
    assert main([*add, "--annotations", str(long_csv)]) == 0
    results = []
    for name in ("wide", "long"):
        out = tmp_path / name
        main(["validate", "--model", "m", "--dataset", name, "--out", str(out), "--home", home])
        results.append(json.loads((out / "result.json").read_text()))
    capsys.readouterr()
    w, n = (r["expert_agreement"] for r in results)
    assert w["expert_pairs"] == n["expert_pairs"] and w["fleiss_kappa"] == n["fleiss_kappa"]
    assert results[0]["metrics"]["accuracy"] == results[1]["metrics"]["accuracy"]

    # Wrong annotation tables: one line, exit 2, nothing registered.
    bad = tmp_path / "bad.csv"
    for text, message in (
        ("item_id,label\ns1,ok\n", "'annotator' is missing"),
        ("item_id,annotator,label\ns1,anna,ok\ns1,anna,defect\n", "labels item 's1' 2 times"),
        ("item_id,annotator,label\nzz,anna,ok\n", "no annotated item_id matches"),
    ):
        bad.write_text(text)
        assert main([*add[:2], "bad", *add[3:], "--annotations", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    main(["dataset", "list", "--home", home])
    assert "bad" not in capsys.readouterr().out


def test_adjudicated_label_stays_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = experts_frame(2, 500)
    consensus, disputed = majority(frame)
    frame["label"] = np.where(consensus == None, "ok", consensus)  # noqa: E711 - adjudicated
    csv = tmp_path / "adjudicated.csv"
    frame.to_csv(csv, index=False)
    home, _ = setup(tmp_path, frame)
    main(["dataset", "add", "adj", str(csv), "--id-column", "id", "--home", home])
    out = tmp_path / "run"
    main(["validate", "--model", "m", "--dataset", "adj", "--out", str(out), "--home", home])
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    assert result["n_judged"] == len(frame)  # the adjudicated label judges disputed items too
    ea = result["expert_agreement"]
    assert ea["disputed_judged"] and ea["n_disputed"] == disputed.sum()
    assert "adjudicated" in ea["reference"]
