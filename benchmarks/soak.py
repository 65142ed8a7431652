"""Soak: three validations on one store while the web app serves 50 clients and a worker dies.

On one store, at the same time:

- three ``assay validate`` processes (CLI, defaults on, checkpoints every ``--checkpoint-every``
  seconds) of three registrations of the same model on an N-row table; the first is killed with
  SIGKILL after its first checkpoint and resumed with ``assay validate --resume RUN_ID``;
- ``assay serve`` with its supervised worker, running one validation submitted through
  ``POST /api/runs``; the worker is killed with SIGKILL mid-job (its pid is the job's lease
  holder), the server restarts it, and the retried job resumes its run;
- ``--clients`` concurrent web clients browsing (run list, job status, datasets, models, pages)
  until every validation has ended.

Reported: runs finished, runs interrupted and resumed, runs left unfinished (goal 0), items per run
(goal N each: none lost), whether the resumed CLI run's confusion matrix equals the uninterrupted
ones' (same model), requests made, failed and 5xx (goal 0), latency percentiles against
``/api/health`` under the same load as the side-by-side reference, and wall times.

    .venv/bin/python benchmarks/soak.py [--rows 2000000] [--clients 50] [--checkpoint-every 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ASSAY = [sys.executable, "-m", "assay"]


def build_store(home: Path, n: int) -> tuple[str, str]:
    """A table of ``n`` rows, one ONNX model registered as m1, m2, m3 and w; two tokens."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.7, n) > 0, "defect", "ok")
    columns = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(x, columns=columns).assign(
        label=y, line=rng.choice(["L1", "L2", "L3"], n), speed=rng.uniform(1, 3, n)
    )
    table = home.parent / "parts.parquet"
    frame.to_parquet(table)
    clf = LogisticRegression().fit(x[:5000], y[:5000])
    onnx = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, 8]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    model = home.parent / "m.onnx"
    model.write_bytes(onnx.SerializeToString())
    spec = {
        "labels": [str(c) for c in clf.classes_],
        "negative": "ok",
        "input": {"kind": "tabular", "columns": columns},
        "output": {"name": "probabilities"},
    }
    ws = Workspace.open(home)
    register_dataset(ws, "parts", table)
    for name in ("m1", "m2", "m3", "w"):
        register_model(ws, name, model, spec)
    _, viewer = ws.access.create_token("soak-viewer", "viewer")
    _, validator = ws.access.create_token("soak-validator", "validator")
    ws.close()
    return viewer, validator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runs_of(home: Path) -> list[dict[str, object]]:
    from assay.services.workspace import Workspace

    ws = Workspace.open(home)
    try:
        models = {m.id: m.name for m in ws.catalog.list_models()}
        return [
            {
                "id": r.id,
                "model": models[r.model_id],
                "status": r.status,
                "n_items": r.n_items,
                "run_dir": r.run_dir,
            }
            for r in ws.catalog.list_runs(limit=None)
        ]
    finally:
        ws.close()


def job_of(home: Path, job_id: str) -> dict[str, object]:
    from assay.services.workspace import Workspace

    ws = Workspace.open(home)
    try:
        job = ws.jobs.get(job_id)
        return {
            "status": job.status,
            "holder": job.holder,
            "run_id": job.run_id,
            "attempts": job.attempts,
            "done": job.progress_done,
            "error": job.error,
        }
    finally:
        ws.close()


def wait_for(condition, what: str, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


async def browse(
    url: str,
    secret: str,
    job: str,
    stop: threading.Event,
    times: dict[str, list[float]],
    codes: Counter[str],
    errors: list[str],
) -> None:
    paths = {
        "GET /api/runs": "/api/runs",
        "GET /api/runs/{job}": f"/api/runs/{job}",
        "GET /api/datasets": "/api/datasets",
        "GET /api/models": "/api/models",
        "run page": f"/runs/{job}",
        "reference: GET /api/health": "/api/health",
    }
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        login = await http.post("/api/session", json={"token": secret})
        codes[str(login.status_code)] += 1
        http.cookies.set("assay_session", login.cookies["assay_session"])
        while not stop.is_set():
            for name, path in paths.items():
                t0 = time.perf_counter()
                try:
                    r = await http.get(path)
                except httpx.HTTPError as exc:
                    errors.append(f"{name}: {type(exc).__name__}")
                    continue
                times[name].append(time.perf_counter() - t0)
                codes[str(r.status_code)] += 1
                if r.status_code >= 400:
                    errors.append(f"{name}: HTTP {r.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=float, default=0.5)
    args = parser.parse_args()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        viewer, validator = build_store(home, args.rows)
        print(
            f"store: {args.rows:,}-row table, one model as m1 m2 m3 w ({time.perf_counter() - t0:.0f} s)"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*ASSAY, "serve", "--port", str(port), "--home", str(home), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stop = threading.Event()
        times: dict[str, list[float]] = defaultdict(list)
        codes: Counter[str] = Counter()
        errors: list[str] = []
        walls: dict[str, float] = {}
        try:
            wait_for(lambda: _healthy(url), "the server")
            r = httpx.post(
                f"{url}/api/runs",
                json={"model": "w", "datasets": ["parts"]},
                headers={"Authorization": f"Bearer {validator}"},
                timeout=60,
            )
            r.raise_for_status()
            job = r.json()[0]["id"]
            load = threading.Thread(
                target=lambda: asyncio.run(
                    _load(url, viewer, job, args.clients, stop, times, codes, errors)
                ),
                daemon=True,
            )
            load.start()
            t_start = time.perf_counter()
            flags = [
                "--dataset",
                "parts",
                "--home",
                str(home),
                "--checkpoint-every",
                str(args.checkpoint_every),
            ]
            cli = {
                name: subprocess.Popen(
                    [*ASSAY, "validate", "--model", name, *flags],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for name in ("m1", "m2", "m3")
            }

            # Kill the first CLI validation after its first checkpoint.
            def m1_checkpointed() -> bool:
                if cli["m1"].poll() is not None:
                    raise SystemExit("m1 ended before its first checkpoint: use more --rows")
                return any(
                    r["model"] == "m1" and (Path(str(r["run_dir"])) / "checkpoint.json").exists()
                    for r in runs_of(home)
                )

            wait_for(m1_checkpointed, "a checkpoint of m1")
            cli["m1"].send_signal(signal.SIGKILL)
            cli["m1"].wait()
            (killed,) = [r for r in runs_of(home) if r["model"] == "m1"]
            print(
                f"killed the m1 validation (SIGKILL) after its first checkpoint: run {str(killed['id'])[:12]}"
            )

            # Kill the web worker mid-job: its pid is the job's lease holder.
            wait_for(
                lambda: (
                    job_of(home, job)["status"] == "running"
                    and int(job_of(home, job)["done"] or 0) > 0
                ),
                "the web job to progress",
            )
            holder = str(job_of(home, job)["holder"])
            os.kill(int(holder.rpartition(":")[2]), signal.SIGKILL)
            print(
                f"killed the web worker {holder} mid-job (SIGKILL) at {job_of(home, job)['done']:,} items"
            )

            resumed = subprocess.Popen(
                [*ASSAY, "validate", "--resume", str(killed["id"]), "--home", str(home)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            codes_cli = {}
            for name, proc in [("m2", cli["m2"]), ("m3", cli["m3"]), ("m1 resumed", resumed)]:
                codes_cli[name] = proc.wait()
                walls[name] = time.perf_counter() - t_start
            wait_for(
                lambda: job_of(home, job)["status"] in ("finished", "failed", "cancelled"),
                "the web job to end",
                900,
            )
            walls["web job"] = time.perf_counter() - t_start
        finally:
            stop.set()  # the clients finish their current request, then the server stops
            if "load" in locals():
                load.join(timeout=300)
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        stderr = server.stderr.read().decode(errors="replace") if server.stderr else ""
        report(home, args.rows, job, killed, codes_cli, walls, times, codes, errors, stderr)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _load(url, secret, job, clients, stop, times, codes, errors):  # type: ignore[no-untyped-def]
    await asyncio.gather(
        *(browse(url, secret, job, stop, times, codes, errors) for _ in range(clients))
    )


def report(home, rows, job, killed, codes_cli, walls, times, codes, errors, server_stderr):  # type: ignore[no-untyped-def]
    runs = runs_of(home)
    statuses = Counter(str(r["status"]) for r in runs)
    web = job_of(home, job)
    print()
    print(
        f"validations: 3 CLI (exit codes {codes_cli}) + 1 web job ({web['status']}, {web['attempts']} attempts)"
    )
    print(f"runs: {len(runs)} in the catalog, {dict(statuses)}")
    unfinished = [r for r in runs if r["status"] != "finished"]
    print(
        f"runs interrupted and resumed: 2 (CLI m1 run {str(killed['id'])[:12]}, web job run {str(web['run_id'])[:12]})"
    )
    print(f"runs left unfinished: {len(unfinished)}")
    lost = [r for r in runs if r["n_items"] != rows]
    print(f"runs with other than {rows:,} items: {len(lost)}")
    matrices = {}
    for r in runs:
        result = Path(str(r["run_dir"])) / "result.json"
        if result.exists():
            matrices[str(r["model"])] = json.loads(result.read_text())["confusion_matrix"]
    same = len({json.dumps(m) for m in matrices.values()}) == 1 and len(matrices) == 4
    print(f"resumed runs' confusion matrices equal the uninterrupted ones': {same}")
    n = sum(len(v) for v in times.values())
    server_errors = sum(v for k, v in codes.items() if k.startswith("5"))
    print(
        f"web: {n:,} requests, {len(errors)} failed, {server_errors} answered 5xx, codes {dict(codes)}"
    )
    if errors:
        print("  failures:", Counter(errors).most_common(5))
    ref = np.percentile(times["reference: GET /api/health"], 95) * 1000
    print(f"{'endpoint':32s} {'n':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'ratio':>6s}")
    for name, values in sorted(times.items()):
        v = np.asarray(values) * 1000
        p95 = np.percentile(v, 95)
        print(
            f"{name:32s} {v.size:6d} {np.percentile(v, 50):8.1f} {p95:8.1f} {v.max():8.1f} {ref / p95:6.2f}"
        )
    print(
        "wall (s from the start of the three validations):",
        {k: round(v, 1) for k, v in walls.items()},
    )
    restarts = server_stderr.count("restarted")
    print(f"worker restarts by assay serve: {restarts}")
    ok = not unfinished and not lost and same and not errors and web["status"] == "finished"
    if not ok:
        print("SOAK FAILED")
        if server_stderr.strip():
            print(server_stderr[-2000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
