"""Start-up and fixed costs, whole process: what a user waits for before any item is judged.

- ``assay --help`` against ``python -c pass`` (the interpreter's own start, the floor);
- ``assay validate`` of a small ONNX model on a 1,000-row table, defaults on and with
  ``--no-profile`` / ``--no-explore``, against a bare script that starts Python, reads the same
  Parquet file and runs the model with onnxruntime (the least any tool must do).

Runs alternate and medians are printed with the ratio reference / measured.

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def build(tmp: Path) -> tuple[Path, Path]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    y = np.where(x[:, 0] + rng.normal(0, 0.5, 1000) > 0, "defect", "ok")
    columns = [f"f{i}" for i in range(8)]
    table = tmp / "small.parquet"
    pd.DataFrame(x, columns=columns).assign(label=y).to_parquet(table)
    clf = LogisticRegression().fit(x, y)
    onnx = convert_sklearn(
        clf,
        initial_types=[("features", FloatTensorType([None, 8]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    model = tmp / "m.onnx"
    model.write_bytes(onnx.SerializeToString())
    home = tmp / "home"
    ws = Workspace.open(home)
    register_dataset(ws, "small", table)
    register_model(
        ws,
        "m",
        model,
        {
            "labels": ["defect", "ok"],
            "input": {"kind": "tabular", "columns": columns},
            "output": {"name": "probabilities"},
        },
    )
    ws.close()
    bare = tmp / "bare.py"
    bare.write_text(
        textwrap.dedent(
            f"""
            import numpy as np, onnxruntime as ort, pyarrow.parquet as pq
            t = pq.read_table({str(table)!r})
            x = np.column_stack([t.column(c).to_numpy() for c in {columns!r}]).astype(np.float32)
            s = ort.InferenceSession({str(model)!r}, providers=["CPUExecutionProvider"])
            p = s.run(["probabilities"], {{"features": x}})[0]
            print(int((np.array(["defect", "ok"])[p.argmax(1)] == t.column("label").to_numpy()).sum()))
            """
        )
    )
    return home, bare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home, bare = build(tmp)
        validate = [str(BIN / "assay"), "validate", "--model", "m", "--dataset", "small"]
        validate += ["--home", str(home)]
        cases = {
            "python -c pass (reference)": [sys.executable, "-c", "pass"],
            "assay --help": [str(BIN / "assay"), "--help"],
            "bare onnxruntime script, 1,000 rows (reference)": [sys.executable, str(bare)],
            "assay validate, defaults": validate,
            "assay validate --no-profile": [*validate, "--no-profile"],
            "assay validate --no-profile --no-explore": [*validate, "--no-profile", "--no-explore"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, command in cases.items():
                times[name].append(timed(command))
    median = {name: statistics.median(v) for name, v in times.items()}
    print(f"medians of {args.repeats} alternating runs, whole process")
    print(f"{'command':52s} {'median s':>9s} {'ratio':>7s}")
    for name, value in median.items():
        if "reference" in name:
            ref = value
            print(f"{name:52s} {value:9.3f}")
        else:
            print(f"{name:52s} {value:9.3f} {ref / value:7.2f}")


if __name__ == "__main__":
    main()
