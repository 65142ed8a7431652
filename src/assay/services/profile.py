"""profile_model: a model's latency, throughput and memory, measured in a process of its own;
recorded_profile: one an earlier run took of the same model version on the same machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from assay.core.errors import InputError
from assay.core.records import ModelVersion, RunRecord
from assay.services.environment import describe_environment
from assay.services.integrity import verify_run_files

DEFAULT_BUDGET_S = 2.0


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def profile_model(
    model: ModelVersion, batch_size: int, budget_s: float = DEFAULT_BUDGET_S, device: str = "cpu"
) -> dict[str, Any]:
    """``profile`` for result.json: every setting measured, the summary a policy reads, and the
    machine it was measured on."""
    request = {
        "path": model.file_path,
        "spec": model.spec,
        "runtime": model.runtime,
        "batch_size": batch_size,
        "budget_s": budget_s,
        "device": device,
    }
    done = subprocess.run(
        [sys.executable, "-m", "assay.runtimes.profile"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120 + 20 * budget_s,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"profiling {model.ref} failed: {last[:300]}")
    raw = json.loads(done.stdout)
    by = {(s["threads"], s["batch_size"]): s for s in raw["settings"]}
    edge, bulk = by[(1, 1)], by[("all", max(1, batch_size))]
    summary = {
        "latency_p50_ms": edge["p50_ms"],
        "latency_p95_ms": edge["p95_ms"],
        "latency_p99_ms": edge["p99_ms"],
        "throughput_items_per_s": bulk["items_per_s"],
        "peak_memory_mb": raw["peak_memory_mb"],
        "load_time_s": raw["load_time_s"],
        "model_size_mb": model.size_bytes / (1 << 20),
    }
    return {
        "summary": summary,
        "settings": raw["settings"],
        "process_baseline_mb": raw["process_baseline_mb"],
        "batch_size": batch_size,
        "budget_s": budget_s,
        "device": device,
        "machine": machine(),
        "note": "latency: batch 1 on one thread (edge-like); throughput: all cores at the batch "
        "size; peak memory: resident set of a process that only runs the model",
    }


def machine() -> dict[str, Any]:
    """What a profile's numbers depend on besides the model: the processor, the system, and the
    versions of the runtimes and of Assay's measuring code."""
    env = describe_environment()
    packages = env["packages"]
    return {
        "cpu": _cpu_model() or env.get("processor"),
        "cpu_count": env["cpu_count"],
        "platform": env["platform"],
        "onnxruntime": packages.get("onnxruntime"),
        "runtimes": {k: packages.get(k) for k in ("openvino", "torch", "scikit-learn")},
        "assay": packages.get("assay"),
    }


def recorded_profile(
    runs: list[RunRecord], batch_size: int, budget_s: float, device: str
) -> dict[str, Any] | None:
    """The newest profile one of ``runs`` (finished runs of one model version, newest first)
    took with the same settings on this machine, marked ``reused_from``; None when none did.

    A profile measures the model file on a machine, not the dataset: validating the same version
    again on this machine (a grown dataset, another dataset) takes it instead of measuring for
    ``budget_s`` seconds more. The run's result.json is checked against its digest first."""
    here = machine()
    for run in runs:
        if str(run.config.get("device", "cpu")) != device:
            continue
        path = Path(run.run_dir) / "result.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        profile = doc.get("profile")
        if (
            not isinstance(profile, dict)
            or "summary" not in profile
            or profile.get("reused_from") is not None  # only first-hand measurements
            or profile.get("batch_size") != batch_size
            or profile.get("budget_s") != budget_s
            or profile.get("device", "cpu") != device
            or profile.get("machine") != here
        ):
            continue
        verify_run_files(run)  # a result edited since: stop, never use it
        at = run.finished_at
        measured = {"run_id": run.id, "measured_at": None if at is None else at.isoformat()}
        return {**profile, "reused_from": measured}
    return None
