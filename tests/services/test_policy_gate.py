"""The release gate against policies written to pass what they should not (a hostile review):
a confidence the checks ignored, a duplicated key, a check on a slice that does not exist, a
suspicious-gain check taken for quality, a regression diluted by easy checks, numbers too large,
HTML in a class name. Each case runs the CLI end to end on recorded predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import assay
from assay.cli.main import main
from tests.models import write_spec

N = 400


def _cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """400 items, 30% defect; 'good' (accuracy about 0.81), 'const' (answers good for every
    item) and 'worse' ('good' with 13 of its right answers turned wrong)."""
    tmp = tmp_path_factory.mktemp("gate")
    rng = np.random.default_rng(0)
    y = rng.random(N) < 0.3
    x = rng.normal(size=N) + 2 * y
    ids = [f"it{i}" for i in range(N)]
    pacsv.write_csv(
        pa.table(
            {
                "item_id": ids,
                "a": x,
                "label": np.where(y, "defect", "good"),
                "camera": rng.choice(["c1", "c2"], N),
            }
        ),
        tmp / "data.csv",
    )
    p = 1 / (1 + np.exp(-(2 * x - 2)))
    right = (p >= 0.5) == y
    worse = p.copy()
    flip = np.flatnonzero(right)[:13]
    worse[flip] = 1 - worse[flip]
    for name, score in (("good", p), ("const", np.full(N, 0.1)), ("worse", worse)):
        pacsv.write_csv(
            pa.table({"item_id": ids, "score_good": 1 - score, "score_defect": score}),
            tmp / f"{name}.csv",
        )
    spec = write_spec(tmp / "spec.yaml", labels=["good", "defect"])
    home = tmp / "home"
    main(["dataset", "add", "d", str(tmp / "data.csv"), "--label-column", "label",
          "--id-column", "item_id", "--home", str(home)])  # fmt: skip
    for name in ("good", "const", "worse"):
        main(["model", "add", name, "--predictions", str(tmp / f"{name}.csv"), "--spec",
              str(spec), "--home", str(home)])  # fmt: skip
    return {"tmp": tmp, "home": home}


def _validate(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any], policy: str, *args: str
) -> tuple[int, str, dict[str, Any] | None]:
    tmp = store["tmp"]
    (tmp / "policy.yaml").write_text(policy)
    out = tmp / "out"
    code, _, err = _cli(capsys, store["home"], "validate", "--dataset", "d", "--no-explore",
                        "--no-profile", "--overwrite", "--out", str(out), "--policy",
                        str(tmp / "policy.yaml"), *args)  # fmt: skip
    doc = json.loads((out / "result.json").read_text()) if code in (0, 1) else None
    return code, err, doc


def test_the_checks_are_judged_at_the_policy_s_confidence(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    """The overall and per-class checks read the run's intervals, computed at --confidence:
    a policy of confidence 0.95 passed on 50% intervals, and one of 0.999 on 95% ones."""
    _, _, doc = _validate(capsys, store, "checks:\n  - accuracy >= 0.5\n", "--model", "good")
    assert doc is not None
    accuracy = doc["metrics"]["accuracy"]
    limit = round((accuracy["ci_low"] + accuracy["value"]) / 2, 4)  # inside the 95% interval
    policy = f"confidence: 0.95\nchecks:\n  - accuracy >= {limit}\n"
    code, _, doc = _validate(capsys, store, policy, "--model", "good")
    assert doc is not None and code == 1 and doc["verdict"]["status"] == "inconclusive"
    code, err, _ = _validate(capsys, store, policy, "--model", "good", "--confidence", "0.5")
    assert code == 2 and "--confidence 0.5 and policy.yaml's confidence 0.95 differ" in err
    code, _, doc = _validate(capsys, store, "confidence: 0.999\nchecks:\n  - accuracy >= 0.6\n",
                             "--model", "good")  # fmt: skip
    assert doc is not None and doc["config"]["confidence"] == 0.999
    wide = doc["metrics"]["accuracy"]
    assert wide["ci_high"] - wide["ci_low"] > accuracy["ci_high"] - accuracy["ci_low"]
    # A policy that names no level takes the run's.
    code, _, doc = _validate(capsys, store, "checks:\n  - accuracy >= 0.6\n", "--model", "good",
                             "--confidence", "0.9")  # fmt: skip
    assert doc is not None and doc["verdict"]["policy"]["confidence"] == 0.9


def test_a_compare_refuses_a_policy_of_another_level_than_the_run_s(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    _validate(capsys, store, "checks:\n  - accuracy >= 0.6\n", "--model", "good")
    _, _, first = _validate(capsys, store, "checks:\n  - accuracy >= 0.6\n", "--model", "worse")
    good = assay.list_runs(model="good", limit=1, home=store["home"])[0]["id"]
    assert first is not None
    policy = store["tmp"] / "p999.yaml"
    policy.write_text("confidence: 0.999\nchecks:\n  - accuracy >= 0.6\n")
    code, _, err = _cli(capsys, store["home"], "compare", first["run_id"], good, "--policy",
                        str(policy), "--out", str(store["tmp"] / "cmp"))  # fmt: skip
    assert code == 2 and "computed its intervals at 0.95" in err


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        ("checks:\n  - accuracy >= 0.99\nmax_unjudged: 1%\nchecks:\n  - accuracy >= 0.5\n", 4),
        ("checks:\n  - metric: accuracy\n    min: 0.99\n    min: 0.5\n", 4),
    ],
)
def test_a_key_given_twice_is_refused(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any], policy: str, line: int
) -> None:
    """YAML keeps the last of two keys: a reader saw 0.99, the gate applied 0.5 and passed."""
    code, err, _ = _validate(capsys, store, policy, "--model", "good")
    assert code == 2 and f"line {line}: duplicate key" in err and len(err.strip().splitlines()) == 1


def test_a_check_on_a_slice_the_dataset_does_not_have_is_refused(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    """camera: C1 for c1 made an empty slice, 'too few items' a warning, and the run passed."""
    policy = (
        "checks:\n  - cohen_kappa > 0\n  - {metric: accuracy, min: 0.99, slice: {camera: C1}}\n"
    )
    code, err, _ = _validate(capsys, store, policy, "--model", "good")
    assert code == 2 and "slice {camera: C1} is not in the dataset" in err
    assert "did you mean 'c1'" in err.lower()
    code, _, doc = _validate(capsys, store, policy.replace("C1", "c1"), "--model", "good")
    assert code == 1 and doc is not None and doc["verdict"]["status"] == "fail"


def test_a_suspicious_gain_check_is_no_evidence_of_quality(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    """A policy of one max_improvement check passed a constant model confidently worse than
    its baseline: no gain was suspicious, and that was taken for quality."""
    policy = (
        "checks:\n  - metric: accuracy\n    change: {max_improvement: 0.05}\n    severity: fail\n"
    )
    code, _, doc = _validate(capsys, store, policy, "--model", "const", "--baseline", "good")
    assert doc is not None and code == 1
    assert doc["verdict"]["status"] == "inconclusive"
    assert "no check of the model's quality passed" in doc["verdict"]["summary"]


def test_a_regression_beyond_its_limit_is_not_diluted_by_easy_checks(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    """Benjamini-Hochberg over every headline change check: four checks that passed lifted the
    q of an accuracy regression wholly beyond its limit (p = 0.006) to 0.03, 'cannot tell',
    and with on_inconclusive: warn the gate was green."""
    policy = (
        "on_inconclusive: warn\nchecks:\n  - cohen_kappa > 0\n"
        "  - metric: accuracy\n    change: {max_regression: 0.01}\n"
        + "".join(
            f"  - {{metric: {m}, change: {{max_regression: 0.5}}}}\n"
            for m in ("log_loss", "brier_score", "ece", "roc_auc")
        )
    )
    code, _, doc = _validate(capsys, store, policy, "--model", "worse", "--baseline", "good")
    assert doc is not None
    check = next(c for c in doc["verdict"]["checks"] if c["name"].startswith("accuracy"))
    assert check["ci_high"] < -0.01  # the whole interval lies beyond the limit
    assert (code, check["status"], doc["verdict"]["status"]) == (1, "fail", "fail")


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ("confidence: 0.9999999999999999\nchecks:\n  - accuracy >= 0.5\n", "confidence must lie"),
        ("checks:\n  - metric: log_loss\n    max: " + "9" * 400 + "\n", "too large a number"),
    ],
)
def test_numbers_out_of_reach_are_bad_input_before_the_run(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any], policy: str, words: str
) -> None:
    """Both ran the whole pass and ended in an internal error (exit 3), a failed run kept."""
    before = len(assay.list_runs(limit=500, home=store["home"]))
    code, err, _ = _validate(capsys, store, policy, "--model", "good")
    assert code == 2 and words in err
    assert len(assay.list_runs(limit=500, home=store["home"])) == before


def test_a_folder_given_as_the_policy_is_named_as_one(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any]
) -> None:
    code, _, err = _cli(capsys, store["home"], "validate", "--model", "good", "--dataset", "d",
                        "--policy", str(store["tmp"]))  # fmt: skip
    assert code == 2 and "policy file is a folder, not a file" in err


def test_verdict_markdown_escapes_html_from_the_data() -> None:
    from assay.reports.markdown import _cell

    assert _cell("recall[<img src=x>&lt;] | a\nb") == r"recall[&lt;img src=x>&amp;lt;] \| a b"
    assert _cell("accuracy <= 1% & more") == "accuracy <= 1% & more"
    assert _cell("a\\|b") == "a\\\\\\|b"  # a\|b: the backslash and the pipe both escaped


class _Killed(BaseException):
    """Stands for kill -9 at one instant: nothing after it runs."""


def test_a_run_stopped_as_it_finishes_never_leaves_an_uncounted_decision_or_a_lone_result(
    tmp_path: Path, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash review: the run was committed finished, then its decision in another
    transaction (killed between the two: a finished PASS the budget never counted); its files
    were written result.json first (killed after it: 'finished, pass' beside a truncated
    report), and copied to --out result.json first (a PASS result.json alone in the folder)."""
    from assay.services import validation
    from assay.services.datasets import get_dataset
    from assay.services.workspace import Workspace
    from assay.store.catalog import SqlCatalog

    home = store["home"]

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise _Killed()

    monkeypatch.setattr(SqlCatalog, "record_decision", killed)
    policy = {"checks": ["accuracy >= 0.6"]}
    done = assay.validate(model="good", dataset="d", policy=policy, home=home,
                          config={"profile": False, "explore": False})  # fmt: skip
    ws = Workspace.open(home, create=False)
    counted = {d.run_id for d in ws.catalog.decisions([get_dataset(ws, "d").id])}
    assert done.result.run_id in counted
    monkeypatch.undo()

    # Killed while the report is written: no result.json in the run's folder.
    monkeypatch.setattr(validation, "render_html", killed)
    with pytest.raises(_Killed):
        assay.validate(model="good", dataset="d", policy=policy, home=home,
                       config={"profile": False, "explore": False})  # fmt: skip
    newest = assay.list_runs(limit=1, home=home)[0]
    assert newest["status"] != "finished"
    assert not (ws.files.run_dir(newest["id"]) / "result.json").exists()
    monkeypatch.undo()

    # Copied to --out: result.json last.
    copied: list[str] = []
    real = validation._copy_out
    monkeypatch.setattr(
        validation, "_copy_out", lambda src, dst: (copied.append(dst.name), real(src, dst))
    )
    assay.validate(model="good", dataset="d", policy=policy, home=home, out=tmp_path / "o",
                   config={"profile": False, "explore": False})  # fmt: skip
    assert copied[-1] == "result.json" and "report.html" in copied


@pytest.mark.parametrize(
    "check",
    ["log_loss <= 1e300", "{metric: log_loss, change: {max_regression: 1e300}}",
     "{metric: log_loss, change: {max_regression: 37}}"],
)  # fmt: skip
def test_a_log_loss_limit_past_its_largest_value_is_refused(
    capsys: pytest.CaptureFixture[str], store: dict[str, Any], check: str
) -> None:
    """A review: log loss had no upper bound in the catalog, so a limit no model can cross
    passed a constant model. It never exceeds -log(eps) = 36.04 (probabilities clipped)."""
    code, err, _ = _validate(capsys, store, f"checks:\n  - {check}\n", "--model", "const")
    assert code == 2 and ("out of range" in err or "can never fail" in err), err


def test_named_slices_are_matched_as_yaml_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review of fixes: `flag: true`, `gain: 1.0` and `day: 2026-01-01` were refused as slices
    the dataset does not have (the keys are 'true', '1' and days since 1970), and before that
    were empty slices. Each names its slice, and its check sees the slice's items."""
    import datetime as dt

    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 300
    y = rng.random(n) < 0.3
    ids = [f"i{k}" for k in range(n)]
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 2, n)]
    pq.write_table(pa.table({"item_id": ids, "label": np.where(y, "defect", "good"),
                             "flag": rng.random(n) < 0.5, "gain": rng.choice([0.5, 1.0, 2.0], n),
                             "day": pa.array(days, pa.date32())}), tmp_path / "d.parquet")  # fmt: skip
    score = np.clip(y * 0.6 + rng.random(n) * 0.5, 0, 1)
    pacsv.write_csv(pa.table({"item_id": ids, "score_good": 1 - score, "score_defect": score}),
                    tmp_path / "p.csv")  # fmt: skip
    spec = write_spec(tmp_path / "s.yaml", labels=["good", "defect"])
    home = tmp_path / "home"
    _cli(capsys, home, "dataset", "add", "d", str(tmp_path / "d.parquet"), "--label-column",
         "label", "--id-column", "item_id")  # fmt: skip
    _cli(capsys, home, "model", "add", "m", "--predictions", str(tmp_path / "p.csv"), "--spec",
         str(spec))  # fmt: skip
    for column, value in (("flag", "true"), ("gain", "1.0"), ("day", "2026-01-01")):
        (tmp_path / "pol.yaml").write_text(
            f"checks:\n  - cohen_kappa > 0\n  - {{metric: accuracy, min: 0.5, slice: {{{column}: {value}}}}}\n"
        )
        code, _, err = _cli(capsys, home, "validate", "--model", "m", "--dataset", "d",
                            "--policy", str(tmp_path / "pol.yaml"), "--no-profile",
                            "--no-explore", "--overwrite", "--out", str(tmp_path / "o"))  # fmt: skip
        assert code in (0, 1), err
        doc = json.loads((tmp_path / "o" / "result.json").read_text())
        check = next(c for c in doc["verdict"]["checks"] if c["name"].startswith("accuracy"))
        assert "0 items" not in check["reason"] and check["status"] in ("pass", "fail"), check


def test_named_slices_match_no_look_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review of fixes: a date matched an integer column's key (days since 1970), a number
    took the first of several spellings ('1.0' and '1.00'), and an empty value was refused."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(4)
    n = 240
    y = rng.random(n) < 0.3
    ids = [f"i{k}" for k in range(n)]
    pq.write_table(pa.table({"item_id": ids, "label": np.where(y, "defect", "good"),
                             "intc": rng.choice([20454, 20455], n),
                             "txt": rng.choice(["1.0", "1.00", "y"], n),
                             "emp": rng.choice(["", "z"], n)}), tmp_path / "d.parquet")  # fmt: skip
    score = np.clip(y * 0.6 + rng.random(n) * 0.5, 0, 1)
    pacsv.write_csv(pa.table({"item_id": ids, "score_good": 1 - score, "score_defect": score}),
                    tmp_path / "p.csv")  # fmt: skip
    home = tmp_path / "home"
    _cli(capsys, home, "dataset", "add", "d", str(tmp_path / "d.parquet"), "--label-column",
         "label", "--id-column", "item_id")  # fmt: skip
    _cli(capsys, home, "model", "add", "m", "--predictions", str(tmp_path / "p.csv"), "--spec",
         str(write_spec(tmp_path / "s.yaml", labels=["good", "defect"])))  # fmt: skip

    def run(column: str, value: str) -> tuple[int, str]:
        (tmp_path / "pol.yaml").write_text(
            f"checks:\n  - cohen_kappa > 0\n  - {{metric: accuracy, min: 0.5, slice: {{{column}: {value}}}}}\n"
        )
        code, _, err = _cli(capsys, home, "validate", "--model", "m", "--dataset", "d",
                            "--policy", str(tmp_path / "pol.yaml"), "--no-profile",
                            "--no-explore", "--overwrite", "--out", str(tmp_path / "o"))  # fmt: skip
        return code, err

    code, err = run("intc", "2026-01-01")
    assert code == 2 and "not in the dataset" in err
    code, err = run("txt", "1")
    assert code == 2 and "could be any of" in err and "'1.00'" in err and "'1.0'" in err
    code, err = run("emp", "''")
    assert code in (0, 1), err
