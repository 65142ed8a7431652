"""The load-test script runs end to end (small and bounded here; figures come from benchmarks/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "web_load.py"


def test_load_script_serves_every_request() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--items", "3000", "--clients", "5", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 clients x 2 rounds: 100 requests" in out.stdout and ", 0 failed" in out.stdout
    assert "explorer: one item in full" in out.stdout and "GET /api/compare" in out.stdout
