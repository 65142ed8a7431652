"""Verdicts through the CLI: policies, baselines, exit codes, verdict.md and junit.xml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.services.workspace import Workspace
from tests.models import fit_logistic, image_spec, tabular_onnx, write_spec
from tests.real_datasets import neu_det


@pytest.fixture
def press(tmp_path: Path) -> dict[str, Path]:
    """A table with metadata, a good model and a degraded one, registered in a fresh home."""
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=(n, 2))
    y = np.where(x[:, 0] + 0.3 * rng.normal(size=n) > 0, "defect", "ok")
    camera = rng.integers(1, 4, n)
    csv = tmp_path / "press.csv"
    csv.write_text(
        "a,b,camera,label\n"
        + "".join(f"{p:.5f},{q:.5f},{c},{v}\n" for (p, q), c, v in zip(x, camera, y, strict=True))
    )
    good = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "good.onnx")
    # Trained with its two features swapped and one of them blurred: clearly weaker, not useless.
    mixed = np.column_stack([x[:, 1], x[:, 0] + rng.normal(0, 2.0, n)])
    weak = tabular_onnx(fit_logistic(mixed.astype(np.float32), y), 2, tmp_path / "weak.onnx")
    spec = write_spec(
        tmp_path / "spec.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    assert main(["dataset", "add", "press", str(csv), "--home", str(home)]) == 0
    assert main(["model", "add", "good", str(good), "--spec", str(spec), "--home", str(home)]) == 0
    assert main(["model", "add", "weak", str(weak), "--spec", str(spec), "--home", str(home)]) == 0
    return {"home": home, "tmp": tmp_path}


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


POLICIES = {
    "unknown_metric": ("checks:\n  - acuracy >= 0.9\n", "line 2: unknown metric 'acuracy'"),
    "unknown_class": (
        "checks:\n  - metric: recall[viod]\n    min: 0.9\n",
        "line 2: unknown class 'viod' in recall[viod]",
    ),
    "malformed": ("checks:\n  - metric: accuracy\n    min: [0.9\n", "not valid YAML at line"),
    "out_of_range": (
        "checks:\n  - metric: accuracy\n    min: 1.5\n",
        "line 2: threshold 1.5 is out of range for accuracy",
    ),
    "bad_change": (
        "checks:\n  - metric: accuracy\n    change: {max_regression: 150%}\n",
        "line 2: relative change 150% must lie in",
    ),
    "unknown_field": (
        "checks:\n  - metric: accuracy\n    minimum: 0.9\n",
        "line 3: unknown field 'minimum'",  # the field's own line
    ),
    "unknown_top_level": (
        "checks:\n  - accuracy >= 0.5\n\n\nevidnce: point\n",
        "line 5: unknown field 'evidnce'",  # not the mapping's first line
    ),
    "unjudged_count_all": (  # a count at least the dataset's size: 100% in another form
        "max_unjudged: 5000\nchecks:\n  - accuracy >= 0.5\n",
        "lets every one of press@1's 3000 items go unjudged",
    ),
    "unknown_slice": (
        "slices: [shift]\nchecks:\n  - accuracy >= 0.5\n",
        "slice column 'shift' is not in the dataset",
    ),
    "needs_baseline": (
        "checks:\n  - metric: accuracy\n    change: {max_regression: 0.01}\n",
        "compares with a baseline; pass --baseline",
    ),
}


@pytest.mark.parametrize("case", sorted(POLICIES))
def test_bad_policy_exits_2_naming_the_problem_and_records_no_run(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path], case: str
) -> None:
    text, message = POLICIES[case]
    policy = press["tmp"] / f"{case}.yaml"
    policy.write_text(text)
    code, _, err = run(
        capsys,
        press["home"],
        "validate",
        "--model",
        "good",
        "--dataset",
        "press",
        "--policy",
        str(policy),
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    ws = Workspace.open(press["home"])
    assert ws.catalog.list_runs() == []


def test_weaker_candidate_fails_and_identical_passes_with_policy_and_slices(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path]
) -> None:
    home, tmp = press["home"], press["tmp"]
    policy = tmp / "release.yaml"
    policy.write_text(
        "slices: [camera]\nchecks:\n  - metric: accuracy\n    change: {max_regression: 0.01}\n"
        "  - metric: accuracy\n    scope: every_slice\n    change: {max_regression: 0.02}\n"
        "  - false_alarm_rate <= 0.5\n"
        "  - metric: accuracy\n    slice: {camera: 2}\n    min: 0.3\n"
    )
    code, out, _ = run(
        capsys,
        home,
        "validate",
        "--model",
        "weak",
        "--dataset",
        "press",
        "--baseline",
        "good",
        "--policy",
        str(policy),
        "--out",
        str(tmp / "weak"),
    )
    assert code == 1, out
    result = json.loads((tmp / "weak" / "result.json").read_text())
    comp = result["comparison"]
    ledger = pq.read_table(tmp / "weak" / "comparison.parquet").to_pandas()
    assert comp["n_broken"] == int((ledger["outcome"] == "broken").sum()) > comp["n_fixed"]
    assert comp["n_broken"] + comp["n_fixed"] + comp["n_both_right"] + comp["n_both_wrong"] == 3000
    assert comp["baseline"]["reused"] is False
    statuses = {c["name"]: c["status"] for c in result["verdict"]["checks"]}
    assert statuses["accuracy: no regression beyond 0.01 vs baseline"] == "fail"
    assert {c["slice"] for c in result["verdict"]["checks"]} >= {
        "camera = 1",
        "camera = 2",
        "camera = 3",
    }
    assert statuses["accuracy >= 0.3 on camera = 2"] == "pass"
    # The baseline was judged in the same pass and recorded as its own finished run.
    ws = Workspace.open(home)
    assert sorted(r.status for r in ws.catalog.list_runs()) == ["finished", "finished"]
    junit = ET.parse(tmp / "weak" / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    # One case per check plus the verdict's own, which fails because the verdict blocks.
    assert len(cases) == len(result["verdict"]["checks"]) + 1
    assert cases[0].get("name") == "verdict" and cases[0].find("failure") is not None
    assert int(junit.find("testsuite").get("failures")) == 1 + sum(  # type: ignore[union-attr]
        c["status"] == "fail" for c in result["verdict"]["checks"]
    )
    md = (tmp / "weak" / "verdict.md").read_text()
    assert "❌ FAIL" in md
    # The limit in the change's own terms next to a signed change, and the coverage check's
    # value as the share its limit is (it showed 3000.0000 under 'at most 1% not judged').
    row = next(
        line for line in md.splitlines() if "no regression beyond 0.01 vs baseline |" in line
    )
    assert "| -0.4413 | Δ >= -0.01 |" in row, row
    assert "| 0.00% | <= 1% |" in md
    # The report's table of changes marks them as verdict.md does (it carried the sign only).
    html = (tmp / "weak" / "report.html").read_text()
    assert '<span class="status fail">worse</span>' in html
    # What the q beside a change check's interval measures is said (a review read 'q 1.000'
    # beside a clearly good interval as a bad sign).
    assert "q-value, across the policy's change checks, of the change lying beyond" in html

    # A model is never its own baseline: nothing could change, and PASS would read as evidence.
    code, _, err = run(capsys, home, "validate", "--model", "good", "--dataset", "press",
                       "--baseline", "good@1")  # fmt: skip
    assert code == 2 and "the baseline is the candidate itself, good@1" in err
    # The same file and spec under another name is the same model: refused too (a retrained
    # model that came out byte-identical has nothing to release; it passed as "no change").
    assert main(["model", "add", "twin", str(tmp / "good.onnx"), "--spec", str(tmp / "spec.yaml"),
                 "--home", str(home)]) == 0  # fmt: skip
    code, _, err = run(capsys, home, "validate", "--model", "good", "--dataset", "press",
                       "--baseline", "twin", "--policy", str(policy))  # fmt: skip
    assert code == 2 and "the baseline twin@1 is the same model as the candidate good@1" in err
    # So is the same file read the same way with only a judging field changed: a hostile
    # review named the good class (negative: ok, already the case) and got a PASS on Δ = 0.
    judged = tmp / "judged.yaml"
    judged.write_text((tmp / "spec.yaml").read_text().replace("negative: ok", "negative: defect"))
    assert main(["model", "add", "rejudged", str(tmp / "good.onnx"), "--spec", str(judged),
                 "--home", str(home)]) == 0  # fmt: skip
    code, _, err = run(capsys, home, "validate", "--model", "rejudged", "--dataset", "press",
                       "--baseline", "good")  # fmt: skip
    assert code == 2 and "only negative differs in the spec" in err
    run(capsys, home, "validate", "--model", "good", "--dataset", "press", "--out",
        str(tmp / "g"))  # fmt: skip
    run(capsys, home, "validate", "--model", "rejudged", "--dataset", "press", "--out",
        str(tmp / "r"))  # fmt: skip
    ids = [json.loads((tmp / d / "result.json").read_text())["run_id"] for d in ("r", "g")]
    code, _, err = run(capsys, home, "compare", *ids)
    assert code == 2 and "the same file, read the same way" in err
    # So is one that names the tensors the runtime picks by default (the spec text differs,
    # the tensors read do not).
    named = tmp / "named.yaml"
    named.write_text((tmp / "spec.yaml").read_text().replace(
        "input:\n", "output:\n  name: probabilities\ninput:\n  name: features\n"))  # fmt: skip
    assert main(["model", "add", "named", str(tmp / "good.onnx"), "--spec", str(named),
                 "--home", str(home)]) == 0, named.read_text()  # fmt: skip
    code, _, err = run(capsys, home, "validate", "--model", "named", "--dataset", "press",
                       "--baseline", "good")  # fmt: skip
    assert code == 2 and "the same file, read the same way" in err, err
    # Another decision threshold changes the answers: a comparison worth making.
    moved = tmp / "moved.yaml"
    moved.write_text((tmp / "spec.yaml").read_text() + "threshold: 0.7\n")
    assert main(["model", "add", "moved", str(tmp / "good.onnx"), "--spec", str(moved),
                 "--home", str(home)]) == 0  # fmt: skip
    code, _, err = run(capsys, home, "validate", "--model", "moved", "--dataset", "press",
                       "--baseline", "good", "--no-profile")  # fmt: skip
    assert code in (0, 1), err


def test_compare_two_finished_runs(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path]
) -> None:
    home, tmp = press["home"], press["tmp"]
    run(capsys, home, "validate", "--model", "good", "--dataset", "press", "--out", str(tmp / "a"))
    run(capsys, home, "validate", "--model", "weak", "--dataset", "press", "--out", str(tmp / "b"))
    a = json.loads((tmp / "a" / "result.json").read_text())["run_id"]
    b = json.loads((tmp / "b" / "result.json").read_text())["run_id"]
    code, out, _ = run(capsys, home, "compare", b[:10], a[:10], "--out", str(tmp / "cmp"))
    assert code == 1 and "broken" in out
    assert {p.name for p in (tmp / "cmp").iterdir()} >= {
        "result.json",
        "report.html",
        "verdict.md",
        "junit.xml",
        "comparison.parquet",
    }
    code, _, err = run(capsys, home, "compare", a, a)
    assert code == 2 and "two different runs" in err


@pytest.mark.real_data
def test_neu_det_weaker_candidate_fails_with_the_right_number_of_broken_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from assay.demo.models import to_onnx_image_model

    size = (32, 32)
    root, images, x, y = neu_det(size)
    train = np.arange(len(images)) % 3 == 0
    good = make_pipeline(PCA(30, random_state=0), LogisticRegression(max_iter=3000, C=0.5)).fit(
        x[train], y[train]
    )
    weak = make_pipeline(PCA(3, random_state=0), LogisticRegression(max_iter=3000)).fit(
        x[train], y[train]
    )
    labels = [str(c) for c in good.classes_]
    spec = write_spec(tmp_path / "neu.yaml", **image_spec(labels, size))
    home = str(tmp_path / "home")
    main(["dataset", "add", "neu", str(root), "--home", home])
    for name, model in (("good", good), ("weak", weak), ("copy", good)):
        main(
            [
                "model",
                "add",
                name,
                str(to_onnx_image_model(model, size, 1, tmp_path / f"{name}.onnx")),
                "--spec",
                str(spec),
                "--home",
                home,
            ]
        )
    out = tmp_path / "weak"
    assert (
        main(
            [
                "validate",
                "--model",
                "weak",
                "--dataset",
                "neu",
                "--baseline",
                "good",
                "--out",
                str(out),
                "--home",
                home,
            ]
        )
        == 1
    )
    capsys.readouterr()
    comp = json.loads((out / "result.json").read_text())["comparison"]
    # Recount broken items independently from the models themselves, outside Assay.
    base_pred, cand_pred = good.predict(x), weak.predict(x)
    expected_broken = int(((base_pred == y) & (cand_pred != y)).sum())
    expected_fixed = int(((base_pred != y) & (cand_pred == y)).sum())
    assert abs(comp["n_broken"] - expected_broken) <= 2  # float32 ONNX vs float64 near-ties
    assert abs(comp["n_fixed"] - expected_fixed) <= 2
    ledger = pq.read_table(out / "comparison.parquet").to_pandas()
    assert comp["n_broken"] == int((ledger["outcome"] == "broken").sum())
    same = tmp_path / "same"
    assert (
        main(
            [
                "validate",
                "--model",
                "copy",
                "--dataset",
                "neu",
                "--baseline",
                "good",
                "--out",
                str(same),
                "--home",
                home,
            ]
        )
        == 0
    )
    capsys.readouterr()
    result = json.loads((same / "result.json").read_text())
    assert (result["comparison"]["n_broken"], result["comparison"]["n_fixed"]) == (0, 0)
    assert result["verdict"]["status"] == "pass"


@pytest.mark.parametrize(("metric", "method"), [("roc_auc", "DeLong (normal)"), ("pr_auc", None)])
def test_ranking_changes_are_decided_on_paired_intervals(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path], metric: str, method: str | None
) -> None:
    """A confident 'no ROC-AUC regression' or 'no PR-AUC regression' check was refused (no
    paired interval). The ROC-AUC change now comes with DeLong's interval, the PR-AUC change with
    a paired bootstrap's (no ``method``: a bootstrap's percentiles), over the items both models
    judged: the weaker model fails it, and the better one, judged against the weaker, passes."""
    home, tmp = press["home"], press["tmp"]
    policy = tmp / f"{metric}.yaml"
    policy.write_text(f"checks:\n  - metric: {metric}\n    change: {{max_regression: 0.01}}\n")
    outcomes = {}
    for cand, base in (("weak", "good"), ("good", "weak")):
        out = tmp / f"{metric}-{cand}"
        code, _, _ = run(capsys, home, "validate", "--model", cand, "--dataset", "press",
                         "--baseline", base, "--policy", str(policy), "--out", str(out))  # fmt: skip
        result = json.loads((out / "result.json").read_text())
        d = result["comparison"]["deltas"][metric]
        assert d.get("method") == method
        assert d["candidate"] == pytest.approx(result["metrics"][metric]["value"], abs=1e-12)
        assert d["ci_low"] < d["delta"] < d["ci_high"]
        check = next(c for c in result["verdict"]["checks"] if c.get("metric") == metric)
        outcomes[cand] = (code, d["delta"], check["status"])
    assert outcomes["weak"][0] == 1 and outcomes["weak"][2] == "fail"
    assert outcomes["good"][0] == 0 and outcomes["good"][2] == "pass"
    assert outcomes["weak"][1] == pytest.approx(-outcomes["good"][1], abs=1e-12)


def test_outputs_are_readable_by_others_as_the_umask_allows(
    capsys: pytest.CaptureFixture[str], press: dict[str, Path]
) -> None:
    """result.json, history.json and history.parquet were written 0600 (mkstemp's mode kept
    through the rename): a CI step or web server running as another user could not read them,
    while every other output was 0644. Every output takes the umask's mode now."""
    import os
    import stat

    home, tmp = press["home"], press["tmp"]
    old = os.umask(0o022)
    try:
        run(capsys, home, "validate", "--model", "good", "--dataset", "press", "--no-profile",
            "--out", str(tmp / "v"))  # fmt: skip
        run(capsys, home, "validate", "--model", "weak", "--dataset", "press", "--no-profile",
            "--baseline", "good", "--out", str(tmp / "w"))  # fmt: skip
        code, _, err = run(capsys, home, "history", "press", "--out", str(tmp / "h"))
        assert code == 0, err
    finally:
        os.umask(old)
    files = [p for d in ("v", "w", "h") for p in (tmp / d).iterdir() if p.is_file()]
    assert {"result.json", "history.json", "history.parquet"} <= {p.name for p in files}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
