"""The model profile: what it measures, that memory follows the model's size, and policies on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.cli.main import main
from tests.models import embedding_onnx, heavy_onnx, write_spec

COLUMNS = ["f0", "f1", "f2", "f3"]


def setup(tmp_path: Path, width: int = 8) -> str:
    """A table and two linear ONNX models; ``big`` carries a 48 MiB weight it multiplies by."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    frame = pd.DataFrame(x, columns=COLUMNS).assign(label=np.where(x[:, 0] > 0, "defect", "ok"))
    frame.to_csv(tmp_path / "parts.csv", index=False)
    weights = np.zeros((4, 2))
    weights[0] = [8.0, -8.0]
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": COLUMNS},
        output={"name": "probabilities"},
    )
    home = str(tmp_path / "home")
    small = embedding_onnx(tmp_path / "small.onnx", weights, np.eye(4)[:, :width])
    big = heavy_onnx(tmp_path / "big.onnx", weights, 12_000_000)
    main(["dataset", "add", "parts", str(tmp_path / "parts.csv"), "--home", home])
    assert main(["model", "add", "small", str(small), "--spec", str(spec), "--home", home]) == 0
    assert main(["model", "add", "big", str(big), "--spec", str(spec), "--home", home]) == 0
    return home


def profile(home: str, model: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    args = ["profile", model, "--batch-size", "16", "--seconds", "0.5", "--json", "--home", home]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_profile_settings_and_memory_follow_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = setup(tmp_path)
    small, big = profile(home, "small", capsys), profile(home, "big", capsys)
    settings = {(s["threads"], s["batch_size"]) for s in small["settings"]}
    assert settings == {(1, 1), (1, 16), ("all", 1), ("all", 16)}
    for s in small["settings"]:
        assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] and s["n_calls"] >= 5
        assert s["warmup_calls"] >= 1 and s["items_per_s"] > 0
    summary = small["summary"]
    assert 0 < summary["latency_p50_ms"] <= summary["latency_p95_ms"] <= summary["latency_p99_ms"]
    assert summary["model_size_mb"] == pytest.approx(
        (tmp_path / "small.onnx").stat().st_size / 2**20
    )
    assert summary["peak_memory_mb"] >= small["process_baseline_mb"] > 0
    # The big model holds 48 MiB of weights: its process peaks at least that much higher.
    assert big["summary"]["peak_memory_mb"] - summary["peak_memory_mb"] > 40
    assert small["machine"]["cpu_count"] >= 1
    assert main(["profile", "small", "--seconds", "0", "--home", home]) == 2
    assert main(["profile", "nope", "--home", home]) == 2


def test_policies_bound_the_profile_and_compare_it_with_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = setup(tmp_path)
    policy = tmp_path / "p.yaml"
    run = ["validate", "--model", "big", "--dataset", "parts", "--profile-seconds", "0.5"]
    run += ["--home", home, "--policy", str(policy)]

    policy.write_text("checks:\n  - latency_p99_ms <= 100000\n  - peak_memory_mb <= 100000\n")
    # Cost checks alone say nothing of what the model judged: no PASS on them.
    assert main([*run, "--out", str(tmp_path / "cost-only")]) == 1
    verdict = json.loads((tmp_path / "cost-only" / "result.json").read_text())["verdict"]
    assert verdict["status"] == "inconclusive" and "quality" in verdict["summary"]
    policy.write_text(
        "checks:\n  - latency_p99_ms <= 100000\n  - peak_memory_mb <= 100000\n  - cohen_kappa > 0\n"
    )
    assert main([*run, "--out", str(tmp_path / "ok")]) == 0
    result = json.loads((tmp_path / "ok" / "result.json").read_text())
    assert result["profile"]["summary"]["peak_memory_mb"] > 40
    assert {c["status"] for c in result["verdict"]["checks"]} == {"pass"}

    policy.write_text("checks:\n  - peak_memory_mb <= 1\n")
    assert main([*run, "--out", str(tmp_path / "fat")]) == 1  # no process runs in 1 MiB

    # Against the small model as baseline: the big one uses far more memory than +10%.
    policy.write_text("checks:\n  - metric: peak_memory_mb\n    change: {max_regression: 10%}\n")
    assert main([*run, "--baseline", "small", "--out", str(tmp_path / "vs")]) == 1
    result = json.loads((tmp_path / "vs" / "result.json").read_text())
    coverage, check = result["verdict"]["checks"]
    assert (coverage["metric"], coverage["status"]) == ("unjudged_share", "pass")
    assert check["status"] == "fail" and check["metric"] == "peak_memory_mb"

    capsys.readouterr()
    policy.write_text("checks:\n  - metric: latency_p99_ms\n    max: 5\n    evidence: confident\n")
    assert main(run) == 2
    assert "evidence: point" in capsys.readouterr().err
    policy.write_text("checks:\n  - latency_p99_ms <= 5\n")
    assert main([*run, "--no-profile"]) == 2
    assert "drop --no-profile" in capsys.readouterr().err
