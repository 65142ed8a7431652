"""Spark local[2] against the local engine on the same table (default 1M rows), side by side.

Both validations run in this process on the same registered dataset and model, without the
exploratory analyses and the profile (they are the same code on both engines and would only
dilute the comparison). The ratio printed is local time / Spark time (above 1: Spark is faster).
On one machine Spark pays for its JVM, task scheduling and pickling; it is there for data that
outgrows one machine, and this shows what it costs where it is not needed.

    .venv/bin/python benchmarks/spark_vs_local.py [--rows 1000000] [--master local[2]]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.memory import model, table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--rows-per-task", type=int, default=200_000)
    args = parser.parse_args()
    from assay.core.config import ValidationConfig
    from assay.engines.spark import spark_session
    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.validation import validate
    from assay.services.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table(root / "t.parquet", args.rows)
        spec = model(root / "m.onnx")
        ws = Workspace.open(root / "home")
        register_dataset(ws, "t", root / "t.parquet")
        register_model(ws, "m", root / "m.onnx", spec)
        t0 = time.perf_counter()
        spark_session(args.master)  # started once, as a service would keep it
        start_s = time.perf_counter() - t0
        common = {"explore": False, "profile": False}
        times: dict[str, list[float]] = {"local": [], "spark": []}
        for _ in range(2):  # alternate, so that drift on a shared machine hits both
            for engine in ("local", "spark"):
                config = ValidationConfig(
                    engine=engine,  # type: ignore[arg-type]
                    spark_master=args.master,
                    spark_rows_per_task=args.rows_per_task,
                    **common,  # type: ignore[arg-type]
                )
                t0 = time.perf_counter()
                validate(ws, "m", "t", config=config)
                times[engine].append(time.perf_counter() - t0)
        local, spark = min(times["local"]), min(times["spark"])
        print(f"{args.rows:,} rows; Spark session start {start_s:.1f} s (not counted below)")
        print(f"local engine      {local:7.2f} s")
        print(f"Spark {args.master:10s}  {spark:7.2f} s   local/spark = {local / spark:.2f}")


if __name__ == "__main__":
    main()
