"""No PASS without evidence: models that judge nothing, NaN outputs, exports Assay must read.

Each case goes through the CLI as a user would (dataset add, model add, validate) and checks the
exit code, the verdict in result.json and the red test case in junit.xml.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from tests.models import passthrough_onnx, write_spec, zipmap_onnx

N = 400


def cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def scores_table(path: Path, scores: np.ndarray, labels: np.ndarray) -> Path:
    """A table whose columns s0, s1 are the passthrough model's outputs."""
    lines = ["id,s0,s1,label"]
    lines += [
        f"i{i},{a!r},{b!r},{y}"
        for i, ((a, b), y) in enumerate(zip(scores.tolist(), labels, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def setup_passthrough(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scores: np.ndarray,
    labels: np.ndarray,
    plus: float = 0.0,
) -> Path:
    home = tmp_path / "home"
    csv = scores_table(tmp_path / "t.csv", scores, labels)
    onnx = passthrough_onnx(tmp_path / "p.onnx", 2, plus)
    spec = write_spec(
        tmp_path / "p.yaml",
        labels=["bad", "good"],
        input={"kind": "tabular", "columns": ["s0", "s1"], "missing": "allow"},
    )
    assert cli(capsys, home, "dataset", "add", "t", str(csv), "--id-column", "id")[0] == 0
    assert cli(capsys, home, "model", "add", "p", str(onnx), "--spec", str(spec))[0] == 0
    return home


def validate(
    capsys: pytest.CaptureFixture[str], home: Path, out: Path, *extra: str
) -> tuple[int, str, dict]:
    code, text, _ = cli(
        capsys,
        home,
        "validate",
        "--model",
        "p",
        "--dataset",
        "t",
        "--out",
        str(out),
        "--no-profile",
        *extra,
    )
    return code, text, json.loads((out / "result.json").read_text())


def red_in_junit(out: Path) -> bool:
    root = ET.parse(out / "junit.xml").getroot()
    verdict = next(c for c in root.iter("testcase") if c.get("name") == "verdict")
    return verdict.find("failure") is not None


def test_a_model_returning_nan_for_every_item_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.where(np.arange(N) % 3 == 0, "bad", "good")
    home = setup_passthrough(tmp_path, capsys, np.full((N, 2), 0.5), labels, plus=np.nan)
    code, text, result = validate(capsys, home, tmp_path / "out")
    assert code == 1
    assert result["n_failed"] == N and result["verdict"]["status"] == "fail"
    assert result["verdict"]["summary"].startswith("no item was judged")
    assert "PASS" not in text and red_in_junit(tmp_path / "out")
    assert "❌ FAIL" in (tmp_path / "out" / "verdict.md").read_text()


def test_a_spec_refusing_every_items_missing_value_says_what_to_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer's SECOM run (a missing value in every row, the spec's default refusing them)
    judged nothing: the verdict did not say how a model that handles them takes them, and the
    kappa check said the experts gave every item one class (they gave two)."""
    labels = np.where(np.arange(N) % 3 == 0, "bad", "good")
    scores = np.full((N, 2), 0.5)
    scores[0::2, 0] = scores[1::2, 1] = np.nan  # a missing value in every row
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    spec = write_spec(tmp_path / "strict.yaml", labels=["bad", "good"],
                      input={"kind": "tabular", "columns": ["s0", "s1"]})  # fmt: skip
    onnx = passthrough_onnx(tmp_path / "strict.onnx", 2)
    assert cli(capsys, home, "model", "add", "p", str(onnx), "--spec", str(spec))[0] == 0
    code, text, result = validate(capsys, home, tmp_path / "out", "--model", "p@2")
    assert code == 1 and result["verdict"]["summary"].startswith("no item was judged")
    assert "missing: allow under input:" in result["verdict"]["summary"]
    assert "experts gave every item one class" not in text
    assert result["metrics"]["cohen_kappa"]["note"] == "no item was judged"


def test_a_precision_that_cannot_fall_is_no_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: on a set of defects only, nothing can be called a defect wrongly, so the
    defect class's precision is 1 whatever the model does: a detector missing 70% of the boxes
    passed `precision[defect] >= 0.9`, confidently. The value stays; the check cannot tell."""
    labels = np.full(N, "bad")
    scores = np.where((np.arange(N) % 10 < 7)[:, None], [0.2, 0.8], [0.8, 0.2])  # 70% missed
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks:\n  - precision[bad] >= 0.9\n")
    code, _, result = validate(capsys, home, tmp_path / "out", "--policy", str(policy))
    assert code == 1 and result["verdict"]["status"] != "pass"
    bad = result["metrics"]["per_class"]["bad"]["precision"]
    assert bad["value"] == 1.0 and bad["ci_low"] is None and "cannot fall" in bad["note"]
    (check,) = [c for c in result["verdict"]["checks"] if c["metric"] == "precision[bad]"]
    assert check["status"] == "too_few" and "cannot fall" in check["reason"]


def test_a_useless_model_is_not_passed_by_the_default_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A constant model is 75% accurate on 75% good items; its kappa is exactly 0: FAIL."""
    labels = np.where(np.arange(N) % 4 == 0, "bad", "good")
    constant = np.tile([0.1, 0.9], (N, 1))
    home = setup_passthrough(tmp_path, capsys, constant, labels)
    code, _, result = validate(capsys, home, tmp_path / "out")
    assert code == 1 and result["verdict"]["status"] == "fail"
    kappa = next(c for c in result["verdict"]["checks"] if c["metric"] == "cohen_kappa")
    assert kappa["status"] == "fail" and kappa["value"] == 0.0


def test_a_useful_detector_on_imbalanced_data_passes_the_default_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Less accurate than always answering "good", yet it finds most defects: a useful gate."""
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(N) < 0.1, "bad", "good")
    bad = labels == "bad"
    flagged = np.where(bad, rng.random(N) < 0.8, rng.random(N) < 0.15)
    p_bad = np.where(flagged, 0.7, 0.2)
    home = setup_passthrough(tmp_path, capsys, np.stack([p_bad, 1 - p_bad], axis=1), labels)
    code, _, result = validate(capsys, home, tmp_path / "out")
    assert result["metrics"]["accuracy"]["value"] < (~bad).mean()
    assert (code, result["verdict"]["status"]) == (0, "pass")
    assert not red_in_junit(tmp_path / "out")


def test_float32_rounding_is_accepted_and_real_violations_are_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx forests give rows like [-3.58e-07, 1.0000004]: rounding, judged after clipping.
    A row with -0.2 or summing to 1.5 is no probability and is not judged, with its reason."""
    labels = np.where(np.arange(N) % 2 == 0, "bad", "good")
    scores = np.where((labels == "bad")[:, None], [0.9, 0.1], [0.1, 0.9]).astype(np.float64)
    scores[0] = [-3.58e-07, 1.0000004]
    scores[1] = [1.0000003, -2e-7]
    scores[2] = [-0.2, 1.2]
    scores[3] = [0.9, 0.6]
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    code, _, result = validate(capsys, home, tmp_path / "out", "--no-explore")
    preds = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pandas().set_index("item_id")
    assert preds.loc["i0", "predicted"] == "good" and preds.loc["i0", "score_bad"] == 0.0
    assert preds.loc["i1", "predicted"] == "bad" and preds.loc["i1", "score_good"] == 0.0
    assert preds.loc[["i0", "i1"], "error"].isna().all()
    for item in ("i2", "i3"):
        assert "not probabilities" in preds.loc[item, "error"]
    assert result["n_failed"] == 2
    # 2 of 400 not judged (0.5%) is within the default 1%; the rest is right.
    assert (code, result["verdict"]["status"]) == (0, "pass")


def test_too_many_unjudged_items_fail_even_when_the_rest_is_perfect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.where(np.arange(N) % 2 == 0, "bad", "good")
    scores = np.where((labels == "bad")[:, None], [0.9, 0.1], [0.1, 0.9]).astype(np.float64)
    scores[:12] = np.nan  # 3% of the items
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    code, _, result = validate(capsys, home, tmp_path / "out", "--no-explore")
    coverage = result["verdict"]["checks"][0]
    assert (code, result["verdict"]["status"], coverage["status"]) == (1, "fail", "fail")
    assert coverage["value"] == pytest.approx(12 / N)
    policy = tmp_path / "lenient.yaml"
    policy.write_text("max_unjudged: 5%\nchecks:\n  - cohen_kappa > 0.5\n")
    code, _, result = validate(
        capsys, home, tmp_path / "out2", "--no-explore", "--policy", str(policy)
    )
    assert (code, result["verdict"]["status"]) == (0, "pass")


def test_a_headline_check_that_cannot_tell_is_inconclusive_and_blocks_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.where(np.arange(60) % 2 == 0, "bad", "good")
    rng = np.random.default_rng(3)
    right = rng.random(60) < 0.8
    p_bad = np.where((labels == "bad") == right, 0.8, 0.2)
    home = setup_passthrough(tmp_path, capsys, np.stack([p_bad, 1 - p_bad], axis=1), labels)
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - accuracy >= 0.8\n")
    code, text, result = validate(
        capsys, home, tmp_path / "out", "--no-explore", "--policy", str(policy)
    )
    assert (code, result["verdict"]["status"], result["verdict"]["blocking"]) == (
        1,
        "inconclusive",
        True,
    )
    assert "INCONCLUSIVE" in text and red_in_junit(tmp_path / "out")
    policy.write_text("on_inconclusive: warn\nchecks:\n  - accuracy >= 0.8\n")
    code, _, result = validate(
        capsys, home, tmp_path / "out2", "--no-explore", "--policy", str(policy)
    )
    assert (code, result["verdict"]["status"], result["verdict"]["blocking"]) == (
        0,
        "inconclusive",
        False,
    )
    assert not red_in_junit(tmp_path / "out2")


def zipmap_setup(
    tmp_path: Path, classes: list[str] | list[int]
) -> tuple[Path, Path, np.ndarray, object]:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    y = np.array(classes)[(x[:, 0] + 0.3 * rng.normal(size=N) > 0).astype(int)]
    model = RandomForestClassifier(20, random_state=0).fit(x, y)
    onnx = zipmap_onnx(model, 3, tmp_path / "zm.onnx")
    csv = tmp_path / "z.csv"
    csv.write_text(
        "a,b,c,label\n"
        + "".join(f"{a!r},{b!r},{c!r},{v}\n" for (a, b, c), v in zip(x.tolist(), y, strict=True))
    )
    return onnx, csv, x, model


@pytest.mark.parametrize("classes", [["defect", "ok"], [0, 1]])
def test_skl2onnx_default_zipmap_output_is_read_in_the_spec_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], classes: list[str] | list[int]
) -> None:
    onnx, csv, x, model = zipmap_setup(tmp_path, classes)
    home = tmp_path / "home"
    labels = [str(c) for c in classes][::-1]  # the spec lists them in another order
    spec = write_spec(
        tmp_path / "s.yaml", labels=labels, input={"kind": "tabular", "columns": ["a", "b", "c"]}
    )
    assert cli(capsys, home, "dataset", "add", "z", str(csv))[0] == 0
    code, _, err = cli(capsys, home, "model", "add", "zm", str(onnx), "--spec", str(spec))
    assert code == 0, err
    out = tmp_path / "out"
    code, _, _ = cli(
        capsys,
        home,
        "validate",
        "--model",
        "zm",
        "--dataset",
        "z",
        "--out",
        str(out),
        "--no-profile",
    )
    result = json.loads((out / "result.json").read_text())
    assert result["n_failed"] == 0 and code == 0
    preds = pq.read_table(out / "predictions.parquet")
    expected = model.predict_proba(x)  # columns in classes_ order
    for label in labels:
        column = list(model.classes_).index(type(classes[0])(label))
        np.testing.assert_allclose(
            preds.column(f"score_{label}").to_numpy(), expected[:, column], atol=1e-5
        )


def test_a_zipmap_whose_classes_differ_from_the_spec_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx, _, _, _ = zipmap_setup(tmp_path, ["defect", "ok"])
    spec = write_spec(
        tmp_path / "s.yaml",
        labels=["bad", "good"],
        input={"kind": "tabular", "columns": ["a", "b", "c"]},
    )
    code, _, err = cli(
        capsys, tmp_path / "home", "model", "add", "zm", str(onnx), "--spec", str(spec)
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "ZipMap" in err and "zipmap" in err


def test_inference_failures_carry_the_exception_message(tmp_path: Path) -> None:
    from assay.core.ports import ModelBatch
    from assay.core.spec import parse_model_spec
    from assay.engines.job import ModelPass
    from assay.engines.local import LocalEngine

    class Broken:
        def predict(self, batch: ModelBatch) -> np.ndarray:
            raise TypeError("unsupported operand type(s) for +: 'dict' and 'float'\nsecond line")

    spec = parse_model_spec({"labels": ["a", "b"], "input": {"kind": "tabular", "columns": ["x"]}})
    errors: dict[int, str] = {}
    LocalEngine()._predict(  # the engine's own isolation of failing items
        ModelPass(Broken(), spec, [], None, None),  # type: ignore[arg-type]
        ModelBatch.of(np.zeros((3, 1), np.float32)),
        errors,
        np.arange(3),
    )
    assert set(errors.values()) == {
        "inference failed (TypeError: unsupported operand type(s) for +: 'dict' and 'float')"
    }


def test_one_column_outputs_outside_zero_to_one_are_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A binary model may return one column, P(positive); 15 or -14 there is no probability."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Slice", ["features", "start", "end", "axis"], ["probabilities"])],
        "first-column",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 1])],
        [
            helper.make_tensor("start", TensorProto.INT64, [1], [1]),
            helper.make_tensor("end", TensorProto.INT64, [1], [2]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx_path = tmp_path / "one.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    labels = np.where(np.arange(N) % 2 == 0, "bad", "good")
    p_good = np.where(labels == "good", 0.9, 0.1)
    p_good[:40] = np.where(np.arange(40) % 2 == 0, 15.0, -14.0)  # 10% far outside [0, 1]
    p_good[40] = 1.0000004  # rounding: judged
    home = tmp_path / "home"
    csv = scores_table(tmp_path / "t.csv", np.stack([1 - p_good, p_good], axis=1), labels)
    spec = write_spec(
        tmp_path / "s.yaml",
        labels=["bad", "good"],
        input={"kind": "tabular", "columns": ["s0", "s1"]},
    )
    assert cli(capsys, home, "dataset", "add", "t", str(csv), "--id-column", "id")[0] == 0
    assert cli(capsys, home, "model", "add", "p", str(onnx_path), "--spec", str(spec))[0] == 0
    code, _, result = validate(capsys, home, tmp_path / "out")  # exploration on: no crash
    assert result["n_failed"] == 40 and code == 1
    assert result["verdict"]["checks"][0]["status"] == "fail"
    assert result["metrics"]["ece"]["value"] <= 1.0


def test_a_model_returning_the_wrong_number_of_rows_is_not_judged(tmp_path: Path) -> None:
    from assay.core.ports import ModelBatch
    from assay.core.spec import parse_model_spec
    from assay.engines.job import ModelPass
    from assay.engines.local import LocalEngine

    class FirstTwo:
        def predict(self, batch: ModelBatch) -> np.ndarray:
            return np.tile([0.2, 0.8], (2, 1))  # two rows whatever the batch

    spec = parse_model_spec({"labels": ["a", "b"], "input": {"kind": "tabular", "columns": ["x"]}})
    errors: dict[int, str] = {}
    probs, _ = LocalEngine()._predict(
        ModelPass(FirstTwo(), spec, [], None, None),  # type: ignore[arg-type]
        ModelBatch.of(np.zeros((5, 1), np.float32)),
        errors,
        np.arange(5),
    )
    assert probs.shape == (5, 2) and np.isnan(probs).all()
    assert set(errors.values()) == {
        "inference failed (ValueError: the model returned 2 rows of scores for 1 items)"
    }


def perfect_scores(n_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Every item right, each class's scores spread: a perfect ranking and a perfect matrix."""
    labels = np.array(["bad", "good"] * n_per_class)
    p_bad = np.where(labels == "bad", 0.9, 0.1) + np.linspace(-0.05, 0.05, labels.size)
    return np.stack([p_bad, 1 - p_bad], axis=1), labels


@pytest.mark.parametrize(("n_per_class", "default"), [(2, "inconclusive"), (10, "pass")])
def test_a_handful_of_right_answers_is_no_evidence_of_a_high_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n_per_class: int, default: str
) -> None:
    """Every resample of a perfect handful is perfect: bootstrap intervals of [1, 1] passed
    ``roc_auc >= 0.9``, ``macro_f1 >= 0.9`` and the default policy's kappa on four items.
    Wilson's interval for the accuracy of 4/4 is [0.51, 1]; the others must be as honest.
    (Four right answers of four happen by chance once in sixteen: no evidence that kappa > 0;
    twenty of twenty are.)"""
    scores, labels = perfect_scores(n_per_class)
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    code, _, result = validate(capsys, home, tmp_path / "out", "--no-explore")
    assert (code, result["verdict"]["status"]) == (int(default != "pass"), default)
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - roc_auc >= 0.9\n  - macro_f1 >= 0.9\n  - pr_auc >= 0.9\n")
    code, _, result = validate(
        capsys, home, tmp_path / "out2", "--no-explore", "--policy", str(policy)
    )
    statuses = {c["metric"]: c["status"] for c in result["verdict"]["checks"][1:]}
    assert statuses == {"roc_auc": "too_few", "macro_f1": "too_few", "pr_auc": "too_few"}
    assert code == 1 and red_in_junit(tmp_path / "out2")


def test_many_right_answers_are_evidence_of_a_high_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same perfect model on 200 items of each class: every check passes."""
    scores, labels = perfect_scores(200)
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - roc_auc >= 0.97\n  - macro_f1 >= 0.97\n  - cohen_kappa > 0.9\n")
    code, _, result = validate(
        capsys, home, tmp_path / "out", "--no-explore", "--policy", str(policy)
    )
    assert (code, result["verdict"]["status"]) == (0, "pass"), result["verdict"]


def test_a_baseline_that_judged_a_quarter_fewer_items_leaves_no_change_proven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hostile review: the baseline answered NaN on every defect (a quarter of the items),
    the candidate judged all. The changes were measured on the good items alone, "no ECE
    regression" passed, and the verdict said nothing of the items left out. The comparison now
    needs as many items both judged as max_unjudged allows."""
    rng = np.random.default_rng(4)
    labels = np.where(np.arange(N) % 4 == 0, "bad", "good")
    p_bad = np.clip(np.where(labels == "bad", 0.8, 0.2) + rng.normal(0, 0.1, N), 0.01, 0.99)
    base = np.where((labels == "bad")[:, None], np.nan, np.c_[p_bad, 1 - p_bad])
    lines = ["id,s0,s1,b0,b1,label"]
    lines += [
        f"i{i},{a!r},{b!r},{c!r},{d!r},{y}"
        for i, (a, b, c, d, y) in enumerate(
            zip(
                p_bad.tolist(),
                (1 - p_bad).tolist(),
                base[:, 0].tolist(),
                base[:, 1].tolist(),
                labels,
                strict=True,
            )
        )
    ]
    csv = tmp_path / "t.csv"
    csv.write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    assert cli(capsys, home, "dataset", "add", "t", str(csv), "--id-column", "id")[0] == 0
    for name, columns in (("p", ["s0", "s1"]), ("prod", ["b0", "b1"])):
        onnx = passthrough_onnx(tmp_path / f"{name}.onnx", 2)
        spec = write_spec(
            tmp_path / f"{name}.yaml",
            labels=["bad", "good"],
            input={"kind": "tabular", "columns": columns, "missing": "allow"},
        )
        assert cli(capsys, home, "model", "add", name, str(onnx), "--spec", str(spec))[0] == 0
    policy = tmp_path / "p.yaml"
    policy.write_text("checks:\n  - metric: ece\n    change: {max_regression: 0.05}\n")
    code, _, err = cli(
        capsys, home, "validate", "--model", "p", "--dataset", "t", "--out",
        str(tmp_path / "out"), "--no-profile", "--baseline", "prod", "--no-explore",
        "--policy", str(policy),
    )  # fmt: skip
    assert code in (0, 1), err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["n_failed"] == 0  # the candidate judged every item
    compared = next(c for c in result["verdict"]["checks"] if "both models" in c["name"])
    assert compared["status"] == "fail" and compared["value"] == pytest.approx(0.25)
    assert (code, result["verdict"]["status"]) == (1, "fail")


def _capped_onnx(path: Path) -> Path:
    """The passthrough model, answering only the first two rows of any batch: it passes the
    two-item test at registration and gives too few answers for every larger batch."""
    from onnx import TensorProto, helper, numpy_helper

    ints = {"z": [0], "two": [2], "axis": [0]}
    graph = helper.make_graph(
        [helper.make_node("Slice", ["features", "z", "two", "axis"], ["probabilities"])],
        "capped",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_a_model_that_cannot_take_batches_says_so_and_gets_no_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review's model answered min(N, 2) rows: every batch failed and was run item by item
    without a word, and the profile measured 29 million items/s on two answers per call."""
    labels = np.where(np.arange(N) % 3 == 0, "bad", "good")
    scores = np.where(labels[:, None] == "bad", [0.8, 0.2], [0.2, 0.8])
    home = setup_passthrough(tmp_path, capsys, scores, labels)
    spec = tmp_path / "p.yaml"
    assert cli(capsys, home, "model", "add", "c", str(_capped_onnx(tmp_path / "c.onnx")),
               "--spec", str(spec))[0] == 0  # fmt: skip
    code, text, _ = cli(capsys, home, "validate", "--model", "c", "--dataset", "t", "--out",
                        str(tmp_path / "out"), "--batch-size", "64")  # fmt: skip
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert code == 0 and result["n_judged"] == N  # right answers, one item at a time
    assert result["n_split_batches"] == -(-N // 64) and result["n_split_items"] == N
    assert "failed whole and were run item by item" in text
    assert "answer(s) for a batch of 64" in result["profile"]["error"]
    assert "throughput_items_per_s" not in json.dumps(result["profile"])


def test_a_model_answering_one_class_for_every_item_is_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review's model ignored its input (0.8/0.2 for every item) and passed a policy asking
    accuracy >= 0.75 on a set 81% good, without a word. The policy decides; the CLI says it."""
    labels = np.where(np.arange(N) % 5 == 0, "bad", "good")
    home = setup_passthrough(tmp_path, capsys, np.tile([0.2, 0.8], (N, 1)), labels)
    policy = tmp_path / "acc.yaml"
    policy.write_text("checks:\n  - accuracy >= 0.75\n")
    code, text, _ = validate(capsys, home, tmp_path / "out", "--policy", str(policy))
    assert code == 0 and "the model answered good for every judged item" in text


def test_labels_in_sorted_order_take_the_defect_class_as_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a review: `labels: [defect, good]` (scikit-learn's sorted classes_) took `good` as
    the positive class by position, so a model missing half the defects reported a missed-defect
    rate of 0.009 and passed `missed_defect_rate <= 0.1`. The good class is named at
    registration when the labels say which it is."""
    rng = np.random.default_rng(0)
    labels = np.where(rng.uniform(size=N) < 0.3, "defect", "good")
    p_defect = np.where(labels == "defect", 0.9, 0.1)
    p_defect[(labels == "defect") & (rng.uniform(size=N) < 0.5)] = 0.2  # half the defects missed
    home = tmp_path / "home"
    csv = scores_table(tmp_path / "t.csv", np.c_[p_defect, 1 - p_defect], labels)
    spec = write_spec(
        tmp_path / "p.yaml",
        labels=["defect", "good"],
        input={"kind": "tabular", "columns": ["s0", "s1"]},
    )
    assert cli(capsys, home, "dataset", "add", "t", str(csv), "--id-column", "id")[0] == 0
    code, out, _ = cli(
        capsys, home, "model", "add", "p", str(passthrough_onnx(tmp_path / "p.onnx", 2)),
        "--spec", str(spec),
    )  # fmt: skip
    assert code == 0 and "positive (defect) class: defect, good class: good" in out
    # (labels without a good-class name: the second is positive, and the line says so)
    spec01 = write_spec(tmp_path / "01.yaml", labels=["0", "1"],
                        input={"kind": "tabular", "columns": ["s0", "s1"]})  # fmt: skip
    code, out, _ = cli(capsys, home, "model", "add", "q", str(tmp_path / "p.onnx"),
                       "--spec", str(spec01))  # fmt: skip
    assert code == 0 and "positive (defect) class: 1, good class: 0 (by position" in out
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks:\n  - missed_defect_rate <= 0.1\n")
    code, _, _ = cli(capsys, home, "validate", "--model", "p", "--dataset", "t", "--no-profile",
                     "--no-explore", "--policy", str(policy), "--out", str(tmp_path / "out"))  # fmt: skip
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    missed = result["metrics"]["missed_defect_rate"]["value"]
    truth = ((labels == "defect") & (p_defect < 0.5)).sum() / (labels == "defect").sum()
    assert missed == pytest.approx(truth) and missed > 0.3
    assert code == 1 and result["verdict"]["status"] == "fail"
