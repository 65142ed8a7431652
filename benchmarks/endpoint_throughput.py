"""Throughput of Assay's endpoint runtime against the server's reference client, on the same items
and the same real MLServer: items per second, side by side, alternating runs.

The reference is NVIDIA's ``tritonclient.http``, the Open Inference Protocol's own client, as a
performance engineer would use it: one ``InferenceServerClient`` with ``concurrency`` connections
and ``async_infer`` for every request of ``batch`` items, all in flight at once, JSON tensors
(MLServer offers no binary extension). Assay's side is what ``assay validate`` calls: the
runtime's ``predict`` on the whole set, cut into requests of the same size, the same number in
flight. The scores of both are compared (they should be equal). Both clients share the machine
with the server, as on a validation box next to its inference server.

    .venv/bin/python benchmarks/endpoint_throughput.py [--items 20000] [--batch 256] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mlserver import fit_served_model, mlserver_binary, running_mlserver  # noqa: E402

REFERENCE = """
import json, sys, time
import numpy as np
import tritonclient.http as http
url, batch, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.load(sys.argv[4]).astype(np.float32)
client = http.InferenceServerClient(url, concurrency=concurrency)
out = http.InferRequestedOutput("predict_proba", binary_data=False)
t0 = time.perf_counter()
pending = []
for s in range(0, len(x), batch):
    part = x[s : s + batch]
    tensor = http.InferInput("input-0", list(part.shape), "FP32")
    tensor.set_data_from_numpy(part, binary_data=False)
    pending.append(client.async_infer("bench", [tensor], outputs=[out]))
scores = np.concatenate([p.get_result().as_numpy("predict_proba") for p in pending])
elapsed = time.perf_counter() - t0
np.save(sys.argv[5], scores)
client.close()
print(json.dumps({"seconds": elapsed}))
"""


def reference(url: str, x_path: Path, out: Path, batch: int, concurrency: int) -> float:
    python = mlserver_binary().parent / "python"
    done = subprocess.run(
        [
            str(python),
            "-c",
            REFERENCE,
            url.removeprefix("http://"),
            str(batch),
            str(concurrency),
            str(x_path),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def assay_side(url: str, x: np.ndarray, batch: int, concurrency: int) -> tuple[float, np.ndarray]:
    from assay.core.ports import ModelBatch
    from assay.core.spec import parse_model_spec
    from assay.runtimes.endpoint import EndpointRuntime, describe

    spec = parse_model_spec(
        {
            "labels": ["defect", "ok"],
            "input": {"kind": "tabular", "columns": [f"f{j}" for j in range(x.shape[1])]},
            "output": {"name": "predict_proba"},
            "endpoint": {"max_batch": batch, "concurrency": concurrency},
        }
    )
    description = describe(f"{url}/v2/models/bench", spec) | {"served_version": "v1"}
    runtime = EndpointRuntime(description, spec)
    try:
        t0 = time.perf_counter()
        out = runtime.predict(ModelBatch.of(x))
        elapsed = time.perf_counter() - t0
    finally:
        runtime.close()
    assert not out.errors, list(out.errors.values())[:1]
    return elapsed, np.asarray(out.outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.items, args.features)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "defect", "ok")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fit_served_model(folder / "models", "bench", x[:2000], y[:2000])
        np.save(folder / "x.npy", x)
        with running_mlserver(folder / "models") as url:
            reference(url, folder / "x.npy", folder / "ref.npy", args.batch, 1)  # warm-up
            assay_side(url, x[: args.batch * 4], args.batch, args.concurrency)
            ref_s, ours_s = [], []
            for _ in range(args.repeats):
                ref_s.append(
                    reference(
                        url, folder / "x.npy", folder / "ref.npy", args.batch, args.concurrency
                    )
                )
                seconds, ours = assay_side(url, x, args.batch, args.concurrency)
                ours_s.append(seconds)
            gap = float(np.abs(ours - np.load(folder / "ref.npy")).max())
    ref_rate = args.items / statistics.median(ref_s)
    our_rate = args.items / statistics.median(ours_s)
    print(
        f"{args.items:,} items, {args.features} features, requests of {args.batch}, {args.concurrency} in flight, MLServer 1.7.1 (scikit-learn)"
    )
    print(
        f"tritonclient.http (reference)  {ref_rate:10,.0f} items/s   runs: {', '.join(f'{s:.2f}s' for s in ref_s)}"
    )
    print(
        f"assay endpoint runtime         {our_rate:10,.0f} items/s   runs: {', '.join(f'{s:.2f}s' for s in ours_s)}"
    )
    print(f"ratio (assay / reference): {our_rate / ref_rate:.2f}   scores equal within {gap:.1e}")


if __name__ == "__main__":
    main()
