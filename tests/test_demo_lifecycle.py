"""The demo's second act, end to end through the CLI: two dataset versions (the second validated
incrementally), three model versions, a leaked scan found, a faster production line found, and
the item history of the three versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay.cli.main import main
from assay.services.workspace import Workspace


def test_the_demo_shows_the_life_of_a_model(tmp_path: Path, capsys: Any) -> None:
    home = tmp_path / "home"
    assert (
        main(["demo", "--n-items", "400", "--out", str(tmp_path / "demo"), "--home", str(home)])
        == 0
    )
    printed = " ".join(capsys.readouterr().out.split())
    assert "holds the 400 scans of version 1 and 40 new ones" in printed
    assert "40 went through the model (incremental validation)" in printed
    assert "1 leaked scan(s) found" in printed
    assert "item history of cable-scans over 3 model versions" in printed
    # The words are the store's: scanner@production is an alias, moved when the gate passed.
    assert "scanner@2 passed the release gate: scanner@production now points at it" in printed
    assert "against scanner@production (scanner@2)" in printed
    result = json.loads((tmp_path / "demo" / "report-v3" / "result.json").read_text())
    assert result["leakage"]["n_leaked_items"] == 1
    cov = result["coverage"]
    assert cov["domain"]["shifted"] and "line_speed" in {r["column"] for r in cov["regions"]}
    assert result["reuse_budget"]["n_decisions_before"] >= 2
    ws = Workspace.open(home)
    roles = {d.name: d.role for d in ws.catalog.list_datasets()}
    assert roles == {
        "cable-scans": "validation",
        "cable-train": "training",
        "line-sample": "production",
    }
    assert [m.ref for m in ws.catalog.list_models()][-1] == "scanner@3"
    (alias,) = ws.catalog.aliases("scanner")
    assert (alias.alias, alias.number) == ("production", 2)
    assert result["comparison"]["baseline"]["number"] == 2
    ws.close()
