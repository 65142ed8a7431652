"""The benchmark scripts run end to end on small inputs (figures come from full runs; see the
README), and what they compare agrees: Assay's exact ROC/PR values equal the exact numpy pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_metric_engine_compares_exact_with_exact_and_binned_with_binned() -> None:
    out = run("metric_engine.py", "--items", "30000", "--classes", "4", "--skip-sklearn")
    assert "numpy, one exact pass" in out and "numpy, one binned pass" in out
    gaps = {
        mode: (float(roc), float(ap))
        for mode, roc, ap in re.findall(
            r"assay (\w+) vs exact: ROC-AUC within (\S+), average precision within (\S+)", out
        )
    }
    assert set(gaps) == {"exact", "binned"}
    assert max(gaps["exact"]) < 1e-9  # the same numbers, not an approximation
    assert max(gaps["binned"]) < 1e-3


def test_startup_script_measures_every_command() -> None:
    out = run("startup.py", "--repeats", "1")
    for name in ("assay --help", "assay validate, defaults", "--no-profile --no-explore"):
        assert name in out
