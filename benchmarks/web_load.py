"""Load test on loopback: concurrent clients exploring a finished 1M-item run in the web app.

Builds a store with a 1,000,000-row table and two models, runs the validation (candidate against
baseline, with the explorations on, the defaults) through the same queue path as the web (a job
executed by the worker code), then starts ``assay serve`` (uvicorn, one process) and lets
``--clients`` concurrent clients each make ``--rounds`` rounds of what a person exploring the run
does: the run list, the run page and its sections, result.json, a confusion cell in the item
explorer, a filtered and sorted explorer page, one item in full, and the comparison of the two
runs. Bounded in count and in time (``--time-limit``). Prints p50/p95/max latency per endpoint
and, as the side-by-side reference, the same percentiles of ``/api/health`` requests interleaved
with them (the server's floor under the same load); the ratio is p95(endpoint) / p95(health).

    .venv/bin/python benchmarks/web_load.py [--items 1000000] [--clients 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
import pandas as pd


def build_store(home: Path, n: int) -> tuple[str, str, str]:
    """A finished web run over ``n`` table rows, with its baseline's run; returns (run id,
    baseline run id, token)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    from assay.services.datasets import register_dataset
    from assay.services.jobs import execute_job, submit
    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.7, n) > 0, "defect", "ok")
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(
        label=y, line=rng.choice(["L1", "L2", "L3"], n), camera=rng.integers(1, 5, n)
    )
    table = home.parent / "parts.parquet"
    frame.to_parquet(table)
    ws = Workspace.open(home)
    register_dataset(ws, "parts", table)
    for name, rows in (("m-old", 300), ("m", 5000)):  # the baseline learnt from fewer parts
        clf = LogisticRegression().fit(x[:rows], y[:rows])
        onnx = convert_sklearn(
            clf,
            initial_types=[("features", FloatTensorType([None, 4]))],
            options={id(clf): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        model = home.parent / f"{name}.onnx"
        model.write_bytes(onnx.SerializeToString())
        spec = {
            "labels": [str(c) for c in clf.classes_],
            "input": {"kind": "tabular", "columns": ["a", "b", "c", "d"]},
            "output": {"name": "probabilities"},
        }
        register_model(ws, name, model, spec)
    request = {"model": "m", "datasets": ["parts"], "baseline": "m-old", "slices": ["line"]}
    (job,) = submit(ws, request, "bench", lambda _: None)
    execute_job(ws, job.id)
    done = ws.jobs.get(job.id)
    assert done.status == "finished" and done.run_id is not None, done.error
    base = next(r.id for r in ws.catalog.list_runs() if r.id != done.run_id)
    _, secret = ws.access.create_token("bench", "viewer")
    ws.close()
    return done.run_id, base, secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def client(
    url: str,
    run: str,
    base: str,
    secret: str,
    rounds: int,
    deadline: float,
    times: dict[str, list[float]],
    failures: list[str],
    n: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    paths = {
        "GET /api/runs (the list)": lambda: "/api/runs",
        "run page (/runs/{id})": lambda: f"/runs/{run}",
        "GET /api/runs/{id}": lambda: f"/api/runs/{run}",
        "GET /api/runs/{id}/view (sections)": lambda: f"/api/runs/{run}/view",
        "GET /api/runs/{id}/result": lambda: f"/api/runs/{run}/result",
        "explorer: a confusion cell": lambda: f"/api/runs/{run}/items?label=defect&predicted=ok",
        "explorer: where + wrong + by confidence": lambda: (
            f"/api/runs/{run}/items?where=camera%3D2%3Bline%3DL1&correct=false&sort=confidence"
        ),
        "explorer: one item in full": lambda: f"/api/runs/{run}/items/{int(rng.integers(n))}",
        "GET /api/compare (two runs)": lambda: f"/api/compare?runs={base},{run}",
        "reference: GET /api/health": lambda: "/api/health",
    }
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        login = await http.post("/api/session", json={"token": secret})
        login.raise_for_status()
        http.cookies.set("assay_session", login.cookies["assay_session"])
        for _ in range(rounds):
            for name, path in paths.items():
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                r = await http.get(path())
                times[name].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    failures.append(f"{name}: HTTP {r.status_code}")


async def load(
    url: str,
    run: str,
    base: str,
    secret: str,
    clients: int,
    rounds: int,
    limit_s: float,
    n: int,
) -> tuple[dict[str, list[float]], list[str], float]:
    times: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    deadline = time.monotonic() + limit_s
    t0 = time.perf_counter()
    await asyncio.gather(
        *(
            client(url, run, base, secret, rounds, deadline, times, failures, n, seed)
            for seed in range(clients)
        )
    )
    return times, failures, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        run, base, secret = build_store(home, args.items)
        print(
            f"store with a finished {args.items:,}-item run built in {time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assay",
                "serve",
                "--port",
                str(port),
                "--home",
                str(home),
                "--workers",
                "0",
            ],
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            times, failures, wall = asyncio.run(
                load(url, run, base, secret, args.clients, args.rounds, args.time_limit, args.items)
            )
        finally:
            server.terminate()
            server.wait(timeout=60)
    n = sum(len(v) for v in times.values())
    print(
        f"{args.clients} clients x {args.rounds} rounds: {n:,} requests in {wall:.1f} s ({n / wall:.0f} req/s), {len(failures)} failed"
    )
    ref = np.percentile(times["reference: GET /api/health"], 95) * 1000
    print(
        f"{'endpoint':42s} {'n':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'x health':>8s}"
    )
    for name, values in times.items():
        v = np.asarray(values) * 1000
        p95 = np.percentile(v, 95)
        print(
            f"{name:42s} {v.size:6d} {np.percentile(v, 50):8.1f} {p95:8.1f} {v.max():8.1f} {p95 / ref:8.2f}"
        )
    if failures:
        print("failures:", sorted(set(failures))[:10])
        sys.exit(1)


if __name__ == "__main__":
    main()
