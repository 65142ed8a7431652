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


def test_throughput_script_compares_every_mode_with_the_bare_loop() -> None:
    out = run("throughput.py", "--rows", "20000", "--repeats", "1", "--skip-images")
    assert "RandomForest" in out and "MLP 64x64" in out
    measured = re.findall(
        r"assay validate (defaults|--no-explore(?: --no-profile)?)\s+(\S+)\s+(\S+)\s+(\S+)", out
    )
    assert len(measured) == 6  # three modes, two models
    for _, seconds, peak_mib, ratio in measured:
        assert float(seconds) > 0 and float(peak_mib) > 50 and 0 < float(ratio) < 5


def test_memory_script_counts_the_sidecar_too() -> None:
    out = run("memory.py", "--rows", "20000", "40000")
    peaks = {
        (int(n.replace(",", "")), mode): float(mb)
        for n, mode, mb in re.findall(r"([\d,]+) rows\s+(\S+)\s+peak\s+(\d+) MiB", out)
    }
    assert len(peaks) == 4
    # With exploration, the sidecar's imports (scikit-learn, cleanlab) are counted as well.
    assert peaks[(20000, "default")] > peaks[(20000, "--no-explore")] + 100
    assert re.search(r"[\d,]+ doubtful-label candidates", out)


def test_coco_evaluation_benchmark_agrees_with_pycocotools() -> None:
    out = run("coco_eval.py", "--images", "40", "--intervals")
    assert re.search(r"largest difference from pycocotools: Assay 0\.00e\+00", out), out
    assert len(re.findall(r"(pycocotools|faster|assay)\s+[\d.]+ s\s+peak\s+\d+ MiB", out)) == 3
    low, high = (
        float(v)
        for v in re.findall(r"mAP \(1,000 resamples of the images\): \[(\S+), (\S+)\]", out)[0]
    )
    assert 0 <= low <= high <= 1


def test_segmentation_benchmark_agrees_with_its_numpy_reference() -> None:
    out = run("segmentation_metrics.py", "--images", "12", "--boundary", "--intervals")
    assert "largest per-class IoU difference: 0.00e+00; pixel accuracy difference: 0.00e+00" in out
    assert len(re.findall(r"(numpy|assay)\s+[\d.]+ s\s+peak\s+\d+ MiB", out)) == 2
    assert "of which Assay's boundary F1" in out


def test_endpoint_benchmark_compares_with_the_reference_client_on_the_same_scores() -> None:
    from tests.mlserver import mlserver_binary

    mlserver_binary()  # skips (or fails under CI) without MLServer
    out = run("endpoint_throughput.py", "--items", "2000", "--batch", "128", "--repeats", "1")
    assert "tritonclient.http (reference)" in out and "assay endpoint runtime" in out
    gap = float(re.search(r"scores equal within (\S+)", out)[1])  # type: ignore[index]
    assert gap < 1e-6


def test_gpu_check_runs_its_code_on_the_cpu() -> None:
    """The GPU check is run where a GPU is lent; here its code runs on the CPU, so that it works
    when that day comes (the CPU against itself: equal, ratio about 1)."""
    out = run("gpu_check.py", "--device", "cpu", "--images", "64", "--repeats", "1")
    assert "onnx: max |Δ| vs CPU 0.00e+00" in out
    assert "ONNX on cpu: assay" in out


def test_incremental_benchmark_runs_both_ways() -> None:
    # The PCA image workload shares every step with the CNN one but the model: skipped here.
    out = run("incremental.py", "--rows", "20000", "--scans", "60", "--repeats", "1",
              "--skip-images")  # fmt: skip
    assert out.count("incr/full") == 2 and "a CNN at 224x224" in out
    for kind in ("full defaults", "incremental defaults", "incremental --no-explore --no-profile"):
        assert kind in out


def test_sequential_simulation_prints_both_error_rates() -> None:
    out = run("sequential_simulation.py", "--runs", "50", "--looks", "500")
    cs = float(re.search(r"confidence sequence ever excludes the truth: (\S+)", out)[1])  # type: ignore[index]
    naive = float(re.search(r"recomputed at every look ever excludes it: (\S+)", out)[1])  # type: ignore[index]
    assert cs <= 0.1 < naive


def test_reweighting_simulation_prints_the_bias_and_the_coverage() -> None:
    out = run("reweighting_bias.py", "--draws", "2", "--validation", "300", "--production", "150")
    truth = float(re.search(r"true production accuracy (\S+);", out)[1])  # type: ignore[index]
    estimate = float(re.search(r"; estimate (\S+) ", out)[1])  # type: ignore[index]
    assert 0 < truth < 1 and abs(estimate - truth) < 0.2
    assert "interval held the truth in" in out
