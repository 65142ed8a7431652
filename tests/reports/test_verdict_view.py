"""One VerdictView for the CLI, verdict.md and junit.xml: the three show the same checks in the
same order, agree on which block a release, and read titles and directions from the metric
catalog; results written before checks recorded ``blocks`` are read the same way by all three."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.output import console, print_verdict
from assay.core.config import ValidationConfig
from assay.core.results import ValidationResult
from assay.core.verdict import Verdict
from assay.reports.junit import render_junit
from assay.reports.markdown import render_verdict_markdown
from assay.reports.views.verdict import VerdictView
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import tabular_onnx

POLICY = {
    "on_too_few": "fail",
    "slices": ["line"],
    "min_slice_size": 100000,  # every slice is too small to tell: too_few, blocking
    "checks": [
        "accuracy >= 0.5",  # pass
        "accuracy >= 0.999",  # fail
        {"metric": "macro_f1", "min": 0.999, "severity": "warn"},  # warn
        {"metric": "accuracy", "scope": "every_slice", "min": 0.5},  # too_few
        {"metric": "log_loss", "change": {"max_regression": 0.5}},  # a change: pass
    ],
}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ValidationResult:
    from sklearn.linear_model import LogisticRegression

    tmp = tmp_path_factory.mktemp("view")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    y = np.where(x[:, 0] + rng.normal(scale=0.7, size=600) > 0, "bad", "good")
    table = {"a": x[:, 0], "b": x[:, 1], "line": rng.choice(["L1", "L2"], 600), "label": y}
    pq.write_table(pa.table(table), tmp / "t.parquet")
    ws = Workspace.open(tmp / "home")
    register_dataset(ws, "cable", tmp / "t.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b"]}}
    for k, cols in enumerate(([1], [0, 1])):  # the baseline sees only the noise column
        xs = np.zeros_like(x[:400]).astype(np.float32)
        xs[:, cols] = x[:400, cols]
        model = LogisticRegression().fit(xs, y[:400])
        register_model(ws, "scanner", tabular_onnx(model, 2, tmp / f"m{k}.onnx"), spec)
    config = ValidationConfig(profile=False, explore=False)
    return validate(
        ws, "scanner@2", "cable", baseline="scanner@1", policy=POLICY, config=config
    ).result


def _legacy(result: ValidationResult) -> ValidationResult:
    """The same result as written before checks recorded ``blocks``."""
    assert result.verdict is not None
    written = result.verdict.to_dict()
    written["checks"] = [{k: v for k, v in c.items() if k != "blocks"} for c in written["checks"]]
    return dataclasses.replace(result, verdict=Verdict.from_dict(written))


@pytest.mark.parametrize("legacy", [False, True])
def test_cli_markdown_and_junit_show_the_same_checks_and_blocks(
    result: ValidationResult, legacy: bool
) -> None:
    r = _legacy(result) if legacy else result
    view = VerdictView.of(r)
    assert {c.status for c in view.checks} == {"pass", "fail", "warn", "too_few"}
    blocking = [c for c in view.checks if c.blocks]
    assert {c.status for c in blocking} == {"fail", "too_few"} and view.blocking

    suite = ET.fromstring(render_junit(r))
    cases = suite.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["verdict", *(c.name for c in view.checks)]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["verdict", *(c.name for c in blocking)]
    assert suite.get("failures") == str(len(blocking) + 1)

    md = render_verdict_markdown(r)
    rows = [line for line in md.splitlines() if line.startswith("| ") and " check " not in line]
    for check in view.checks:
        assert any(check.name in row and check.status in row for row in rows), check.name

    with console.capture() as captured:
        print_verdict(r)
    printed = captured.get()
    for check in view.checks:
        assert (check.reason.split("\n")[0][:40] in printed) == (check.status != "pass")
    assert f"verdict: {view.status.upper()}" in printed


def test_the_paired_changes_read_the_catalog(result: ValidationResult) -> None:
    view = VerdictView.of(result)
    assert view.paired is not None and view.paired.deltas
    md = render_verdict_markdown(result)
    for d in view.paired.deltas:
        confident = (
            d.ci_low is not None and d.ci_high is not None and not (d.ci_low <= 0 <= d.ci_high)
        )
        assert (d.improved is not None) == confident, d.metric
        line = next(row for row in md.splitlines() if row.startswith(f"| {d.title}"))
        assert ("lower is better" in line) == (d.better == "lower")
        change = line.split("|")[4]
        assert ("better" in change, "worse" in change) == (d.improved is True, d.improved is False)
    loss = next(d for d in view.paired.deltas if d.metric == "log_loss")
    assert loss.better == "lower" and loss.title == "Log loss"
    assert loss.improved is True  # the baseline saw only noise: its log loss is confidently worse
    # A confident fall in log loss is better; a confident rise in accuracy too; noise is neither.
    fall = dataclasses.replace(loss, delta=-0.1, ci_low=-0.2, ci_high=-0.05)
    rise = dataclasses.replace(fall, better="higher", delta=0.1, ci_low=0.05, ci_high=0.2)
    noise = dataclasses.replace(rise, ci_low=-0.01)
    assert fall.improved is True and rise.improved is True and noise.improved is None
    assert dataclasses.replace(rise, better="lower").improved is False


def test_a_result_without_a_verdict_blocks_everywhere(result: ValidationResult) -> None:
    bare: Any = dataclasses.replace(result, verdict=None)
    view = VerdictView.of(bare)
    assert view.blocking and view.status == "fail" and not view.checks
    assert ET.fromstring(render_junit(bare)).get("failures") == "1"
    assert "❌ FAIL" in render_verdict_markdown(bare)


def test_the_cli_prints_nothing_of_a_verdict_it_does_not_have(
    result: ValidationResult, tmp_path: Path
) -> None:
    bare: Any = dataclasses.replace(result, verdict=None)
    with console.capture() as captured:
        print_verdict(bare)
    assert "verdict:" not in captured.get()


def test_control_characters_in_data_keep_junit_valid_and_show_escaped(
    result: ValidationResult,
) -> None:
    """A slice value holding a control character (GS1 barcodes carry \\x1d; a value \\x0b was
    found): junit.xml was not well-formed XML, and verdict.md held the raw byte. They are shown
    escaped, the same in all three renderers."""
    assert result.verdict is not None
    checks = [dataclasses.replace(c) for c in result.verdict.checks]
    checks[0].name = "accuracy >= 0.5 on line = L\x0b3\x1d\ufffe"
    checks[0].reason = "why: L\x0b3"
    odd = dataclasses.replace(result, verdict=dataclasses.replace(result.verdict, checks=checks))
    junit = render_junit(odd)
    root = ET.fromstring(junit)  # raised "not well-formed (invalid token)"
    names = [c.get("name") for c in root.iter("testcase")]
    assert "accuracy >= 0.5 on line = L\\x0b3\\x1d\\ufffe" in names
    md = render_verdict_markdown(odd)
    assert "\x0b" not in md and "L\\x0b3" in md
