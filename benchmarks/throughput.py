"""End-to-end throughput of ``assay validate`` against a bare onnxruntime loop on the same data.

Two workloads:

- a table of N rows (default 1,000,000) x 32 features, a 6-class MLP exported to ONNX;
- the NEU-DET images in ../shared/data (1,800 JPEGs), a PCA + logistic-regression image model.

The bare loop is the least a person would write by hand: stream the same rows (Parquet batches)
or decode the same images (Pillow), and call ``session.run`` batch by batch with the same batch
size and threads. Assay does that plus label checks, failure accounting, every metric with
intervals, predictions.parquet, result.json and report.html. Runs alternate (bare, assay, bare,
assay, ...) and the medians are compared, because this machine is shared and noisy. The printed
ratio is bare time / assay time (1.0 = no overhead).

    .venv/bin/python benchmarks/throughput.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from assay.core.config import ValidationConfig
from assay.datasets.images import decode_image
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "data" / "neu-det"
LABELS = [f"c{i}" for i in range(6)]


def build_table(path: Path, rows: int, features: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(features, 6))
    writer = None
    for start in range(0, rows, 250_000):
        n = min(250_000, rows - start)
        x = rng.normal(size=(n, features)).astype(np.float32)
        y = np.array(LABELS)[np.argmax(x @ w + rng.normal(0, 2, (n, 6)), axis=1)]
        table = pa.table({**{f"x{j}": x[:, j] for j in range(features)}, "label": y})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    x = rng.normal(size=(20_000, features)).astype(np.float32)
    return x, np.array(LABELS)[np.argmax(x @ w, axis=1)]


def tabular_model(x: np.ndarray, y: np.ndarray, path: Path, hidden: tuple[int, ...]) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden, max_iter=5, random_state=0).fit(x, y)
    onx = convert_sklearn(
        clf,
        initial_types=[("x", FloatTensorType([None, x.shape[1]]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(onx.SerializeToString())


def bare_table(model: Path, data: Path, columns: list[str], batch: int) -> float:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    for b in pq.ParquetFile(data).iter_batches(batch_size=batch, columns=columns):
        x = np.column_stack([b.column(c).to_numpy() for c in columns]).astype(np.float32)
        session.run(["probabilities"], {"x": x})
    return time.perf_counter() - t0


def bare_images(model: Path, paths: list[str], size: tuple[int, int], batch: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            pixels = np.stack(
                list(pool.map(lambda p: decode_image(p, None, size, "grayscale"), chunk))
            )
            x = pixels.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
            session.run(["probabilities"], {"image": x})
    return time.perf_counter() - t0


def timed_validate(
    ws: Workspace, model: str, dataset: str, batch: int, explore: bool = True
) -> float:
    t0 = time.perf_counter()
    # The model profile is a separate measurement (a fixed few seconds per model): left out here.
    config = ValidationConfig(batch_size=batch, explore=explore, profile=False)
    validate(ws, model, dataset, config=config)
    return time.perf_counter() - t0


def compare(name: str, n_items: int, bare, assay, repeats: int) -> None:  # type: ignore[no-untyped-def]
    bare_t, assay_t = [], []
    bare()  # warm caches (page cache, onnxruntime arenas) before measuring either side
    for _ in range(repeats):
        bare_t.append(bare())
        assay_t.append(assay())
    b, a = statistics.median(bare_t), statistics.median(assay_t)
    print(
        f"{name}: {n_items:,} items | bare onnxruntime {b:.2f} s ({n_items / b:,.0f}/s) | "
        f"assay validate {a:.2f} s ({n_items / a:,.0f}/s) | ratio {b / a:.2f}"
    )


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)  # scikit-learn convergence chatter
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = Workspace.open(tmp / "home")
        data = tmp / "table.parquet"
        x, y = build_table(data, args.rows)
        columns = [f"x{j}" for j in range(x.shape[1])]
        register_dataset(ws, "table", data)
        batch = 8192
        # A small model shows Assay's fixed per-item cost; a larger one, a more typical share.
        for hidden in ((64, 64), (512, 512, 256)):
            name = "mlp-" + "x".join(map(str, hidden))
            tabular_model(x, y, tmp / f"{name}.onnx", hidden)
            (tmp / f"{name}.yaml").write_text(
                yaml.safe_dump(
                    {
                        "labels": LABELS,
                        "input": {"kind": "tabular", "columns": columns},
                        "output": {"name": "probabilities"},
                    }
                )
            )
            register_model(ws, name, tmp / f"{name}.onnx", tmp / f"{name}.yaml")
            for explore in (True, False):
                compare(
                    f"table, {name}, {'default' if explore else '--no-explore'}",
                    args.rows,
                    lambda n=name: bare_table(tmp / f"{n}.onnx", data, columns, batch),
                    lambda n=name, e=explore: timed_validate(ws, n, "table", batch, e),
                    args.repeats,
                )

        if args.skip_images or not NEU.exists():
            print(
                "images: skipped (../shared/data/neu-det not present)"
                if not args.skip_images
                else "images: skipped"
            )
            return
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        from assay.demo.models import to_onnx_image_model

        paths = sorted(str(p) for p in (NEU / "IMAGES").glob("*.jpg"))
        size = (64, 64)
        pixels = np.stack([decode_image(p, None, size, "grayscale") for p in paths[::4]])
        labels = [Path(p).stem.rsplit("_", 1)[0] for p in paths[::4]]
        model = make_pipeline(PCA(40, random_state=0), LogisticRegression(max_iter=2000)).fit(
            pixels.reshape(len(pixels), -1) / 255.0, labels
        )
        to_onnx_image_model(model, size, 1, tmp / "neu.onnx")
        spec = {
            "labels": [str(c) for c in model.classes_],
            "input": {"kind": "image", "size": list(size), "color": "grayscale"},
            "output": {"name": "probabilities"},
        }
        (tmp / "neu.yaml").write_text(yaml.safe_dump(spec))
        register_dataset(ws, "neu", NEU)
        register_model(ws, "neu", tmp / "neu.onnx", tmp / "neu.yaml")
        compare(
            "neu-det images",
            len(paths),
            lambda: bare_images(tmp / "neu.onnx", paths, size, 64),
            lambda: timed_validate(ws, "neu", "neu", 64),
            args.repeats,
        )


if __name__ == "__main__":
    main()
