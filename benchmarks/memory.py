"""Peak memory of ``assay validate`` on a table as its row count grows (goal: flat).

For each row count, a Parquet table (4 features, a label, 2 metadata columns) is registered, and
``assay validate`` runs in a process of its own; the resident memory of that process and its
children together (the sidecar that runs confident learning) is sampled every 100 ms, and the
peak printed. With ``--no-explore`` the pass streams in bounded memory. With the defaults the
exploratory analyses stream too (the slice search holds at most 32 MiB of codes; confident
learning holds counts and its candidates), so what still grows is the list of doubtful-label
candidates, which every run writes whole to doubtful_labels.parquet: the table's labels are noisy
(the best model errs on about 18% of the items), so about 15% of the items are candidates, and the
run prints how many. The ratio printed is peak(smallest) / peak(row count): 1.0 is flat.

    .venv/bin/python benchmarks/memory.py [--rows 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from measure import run_measured


def table(path: Path, n: int, noise: float = 0.7, flip: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, n, 1_000_000):
        m = min(1_000_000, n - start)
        x = rng.normal(size=(m, 4)).astype(np.float32)
        positive = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, noise, m) > 0
        positive ^= rng.random(m) < flip  # an expert's slips: labels flipped at random
        label = np.where(positive, "defect", "ok")
        batch = pa.table(
            {
                **{f"f{j}": x[:, j] for j in range(4)},
                "label": label,
                "line": rng.choice(["L1", "L2", "L3"], m),
                "camera": rng.integers(1, 5, m),
            }
        )
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()


def model(path: Path) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 4)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "defect", "ok")
    clf = LogisticRegression().fit(x, y)
    onnx = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(onnx.SerializeToString())
    spec = path.with_suffix(".yaml")
    spec.write_text(
        "labels: [defect, ok]\ninput: {kind: tabular, columns: [f0, f1, f2, f3]}\n"
        "output: {name: probabilities}\n"
    )
    return spec


def peak_mb(args: list[str]) -> tuple[float, float]:
    """Peak memory (MiB) of ``assay`` and its children together, and the wall time."""
    secs, mb = run_measured([sys.executable, "-m", "assay", *args])
    return mb, secs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--noise",
        type=float,
        default=0.7,
        help="spread of the labels around the boundary (0.7: the best model errs on ~18%%)",
    )
    parser.add_argument("--flip", type=float, default=0.0, help="share of labels flipped")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = str(root / "home")
        spec = model(root / "m.onnx")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "assay",
                "model",
                "add",
                "m",
                str(root / "m.onnx"),
                "--spec",
                str(spec),
                "--home",
                home,
            ],
            check=True,
            capture_output=True,
        )
        rows: dict[str, dict[int, float]] = {"--no-explore": {}, "default": {}}
        for n in args.rows:
            path = root / f"t{n}.parquet"
            table(path, n, args.noise, args.flip)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "assay",
                    "dataset",
                    "add",
                    f"t{n}",
                    str(path),
                    "--home",
                    home,
                ],
                check=True,
                capture_output=True,
            )
            for mode, extra in (("--no-explore", ["--no-explore"]), ("default", [])):
                mb, secs = peak_mb(
                    [
                        "validate",
                        "--model",
                        "m",
                        "--dataset",
                        f"t{n}",
                        "--no-profile",
                        *extra,
                        "--home",
                        home,
                    ]
                )
                rows[mode][n] = mb
                newest = max((Path(home) / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
                result = json.loads((newest / "result.json").read_text())
                doubtful = (result.get("doubtful_labels") or {}).get("n_candidates")
                note = f", {doubtful:,} doubtful-label candidates" if doubtful is not None else ""
                print(
                    f"{n:>12,} rows  {mode:13s} peak {mb:8.0f} MiB  ({secs:.0f} s{note})",
                    flush=True,
                )
        for mode, peaks in rows.items():
            first = peaks[min(peaks)]
            ratios = ", ".join(f"{n:,}: {first / mb:.2f}" for n, mb in sorted(peaks.items()))
            print(f"{mode}: peak({min(peaks):,}) / peak(n) = {ratios}")


if __name__ == "__main__":
    main()
