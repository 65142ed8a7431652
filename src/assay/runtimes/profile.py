"""The model's own cost: load time, latency percentiles, throughput and peak memory.

Runs in a process of its own (``python -m assay.runtimes.profile``, JSON in on stdin, JSON out on
stdout), so the peak resident memory is that of a process that only loads the runtime and the model,
as on an edge box, and not Assay's. Inputs are random tensors of the spec's shape: latency depends
on shapes, not on pixel values, for the models Assay runs.

Each setting (threads x batch size) is warmed up until the median of the last ten calls moves by
less than 5% (or a time limit), then measured for a fixed count or a time window, whichever ends
first.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.ports import ModelBatch, PartialOutput
from assay.core.spec import parse_model_spec
from assay.runtimes import load_model
from assay.runtimes.base import expected_input_shape

WARMUP_MIN_CALLS = 10
STABLE_WITHIN = 0.05


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux from ``VmHWM``: ``ru_maxrss`` survives ``execve`` and would report the parent's peak
    (say, a test runner's) for a freshly started measuring process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1 << 20)


def _warm_up(call: Any, limit_s: float) -> int:
    times: list[float] = []
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2 * WARMUP_MIN_CALLS:
            before = np.median(times[-2 * WARMUP_MIN_CALLS : -WARMUP_MIN_CALLS])
            after = np.median(times[-WARMUP_MIN_CALLS:])
            if abs(after - before) <= STABLE_WITHIN * before:
                break
    return len(times)


def _measure(call: Any, max_calls: int, window_s: float) -> list[float]:
    times: list[float] = []
    deadline = time.perf_counter() + window_s
    while len(times) < max_calls and (len(times) < 5 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _rows(answer: Any) -> int | None:
    """How many items a runtime's answer holds: rows of an array, entries of a list, or of a
    task's first named output (None: a shape this cannot read)."""
    if isinstance(answer, dict):
        answer = next(iter(answer.values()), None)
    if isinstance(answer, np.ndarray):
        return int(answer.shape[0]) if answer.ndim else None
    if isinstance(answer, (list, tuple)):
        return len(answer)
    return None


def profile(request: dict[str, Any]) -> dict[str, Any]:
    """Measure one model; ``request``: path, spec (mapping), runtime, batch_size, budget_s."""
    path, kind = Path(request["path"]), request["runtime"]
    spec = parse_model_spec(request["spec"])
    batch = max(1, int(request["batch_size"]))
    budget = float(request.get("budget_s", 2.0))
    device = str(request.get("device", "cpu"))
    baseline_mb = _rss_mb()
    rng = np.random.default_rng(0)
    shape = expected_input_shape(spec)
    inputs = {b: rng.random((b, *shape), dtype=np.float32) for b in sorted({1, batch})}
    settings = []
    load_s = None
    for threads in (1, None):
        t0 = time.perf_counter()
        runtime = load_model(path, spec, kind, threads=threads, device=device)
        if load_s is None:
            load_s = time.perf_counter() - t0
        for b, x in inputs.items():
            answer = runtime.predict(ModelBatch.of(x))
            if isinstance(answer, PartialOutput) and answer.errors:
                # Fast failures (a 4xx from an endpoint) would pass for low latency.
                raise RuntimeError(next(iter(answer.errors.values())))
            given = _rows(answer.outputs if isinstance(answer, PartialOutput) else answer)
            if given is not None and given != b:
                # A model answering 2 rows whatever the batch measured 29 million items/s.
                raise RuntimeError(
                    f"the model gave {given} answer(s) for a batch of {b}: its speed at that "
                    "batch size cannot be measured (validate with a --batch-size it answers)"
                )
            call = partial(runtime.predict, ModelBatch.of(x))
            warm = _warm_up(call, budget * 0.1)
            times = np.asarray(_measure(call, 1000, budget * 0.15)) * 1000.0
            settings.append(
                {
                    "threads": threads or "all",
                    "batch_size": b,
                    "n_calls": int(times.size),
                    "warmup_calls": warm,
                    "p50_ms": float(np.percentile(times, 50)),
                    "p95_ms": float(np.percentile(times, 95)),
                    "p99_ms": float(np.percentile(times, 99)),
                    "items_per_s": float(b * times.size / (times.sum() / 1000.0)),
                }
            )
        runtime.close()
        del call, runtime  # free the session before the next one loads
    return {
        "load_time_s": load_s,
        "settings": settings,
        "peak_memory_mb": _rss_mb(),
        "process_baseline_mb": baseline_mb,
    }


def main() -> None:
    print(json.dumps(profile(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
