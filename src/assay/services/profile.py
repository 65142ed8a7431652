"""profile_model: a model's latency, throughput and memory, measured in a process of its own;
recorded_profile: one an earlier run took of the same model version on the same machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from assay.core.errors import InputError
from assay.core.records import ModelVersion, RunRecord
from assay.services.environment import describe_environment, numerics
from assay.services.integrity import check_bytes

DEFAULT_BUDGET_S = 2.0


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


# Bumped whenever the measuring code changes (assay.runtimes.profile): profiles taken by an
# earlier revision are measured anew.
PROFILE_REVISION = 2
# Settings that change how many threads the runtimes use, hence a profile's numbers.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def machine() -> dict[str, Any]:
    """What a profile's numbers depend on besides the model: the processor and the cores this
    process may use, the system, the thread settings, and what the outputs depend on (runtime
    versions, Assay's numerics revision)."""
    env = describe_environment()
    return {
        "cpu": env["cpu"],
        "cpu_count": env["cpu_count"],
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": env["platform"],
        "python": env["python"],
        "onnxruntime": env["packages"].get("onnxruntime"),
        "threads": {k: os.environ.get(k) for k in THREAD_VARIABLES},
        "numerics": numerics(env),
        "assay": env["packages"].get("assay"),
        "profile_revision": PROFILE_REVISION,
    }


def recorded_profile(
    runs: list[RunRecord], batch_size: int, budget_s: float, device: str
) -> dict[str, Any] | None:
    """The newest profile one of ``runs`` (finished runs of one model version, newest first)
    took with the same settings on this machine, marked ``reused_from``; None when none did.

    A profile measures the model file on a machine, not the dataset: validating the same version
    again on this machine (a grown dataset, another dataset) takes it instead of measuring for
    ``budget_s`` seconds more. On the CPU only (nothing here describes a GPU). Only a result.json
    whose digest the run kept is read, checked in the same read (IntegrityError when changed)."""
    if device != "cpu":
        return None
    here = machine()
    for run in runs:
        expected = (run.artifact_sha256 or {}).get("result.json")
        if str(run.config.get("device", "cpu")) != device or expected is None:
            continue  # another device, or a run that kept no digest: nothing checked to take
        path = Path(run.run_dir) / "result.json"
        try:
            data = path.read_bytes()
            profile = json.loads(data).get("profile")
        except (OSError, ValueError, AttributeError):
            continue  # an old run's folder cleared away: it stops nothing, it gives nothing
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
        # The one about to be used: the bytes just read must be the ones the run wrote.
        check_bytes(f"run {run.id[:12]} result.json", path, data, expected)
        at = run.finished_at
        measured = {"run_id": run.id, "measured_at": None if at is None else at.isoformat()}
        return {**profile, "reused_from": measured}
    return None
