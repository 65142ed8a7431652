"""Whole-process throughput of ``assay validate`` against a bare loop a performance engineer would
write, on the same data, with the defaults on.

Workloads (each states its model cost as the bare loop's rows or images per second):

- a table of ``--rows`` rows (default 4,000,000), 5 features and a metadata column, a scikit-learn
  RandomForest (30 trees, depth 8) exported with skl2onnx: a cheap plant model;
- the same rows' first 32-feature sibling with a 6-class 64x64 MLP;
- NEU-DET (1,800 JPEGs, 200x200, in ../shared/data) and ``--scans`` generated 512x512 grayscale
  PNG scans, with a PCA + logistic-regression image model at 64x64.

The bare loops: a Python process that streams the Parquet file in 65,536-row batches and calls
``session.run``; for images, one that decodes with Pillow on all cores (a thread pool: Pillow
releases the GIL in decode and resize) and runs the model batch by batch. ``assay validate`` runs
as a process too (the CLI), with its defaults (profile and exploration on), then without
exploration, then without either. Runs alternate (bare, assay, ...) because this machine is shared
and noisy; medians are printed with the ratio bare / Assay (1.0 = no overhead) and each process's
peak resident memory (sampled, the sidecar and the profile's process included).

    .venv/bin/python benchmarks/throughput.py [--rows 4000000] [--scans 2000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from measure import run_measured

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "data" / "neu-det"
BIN = Path(sys.executable).parent
MODES = {
    "defaults": [],
    "--no-explore": ["--no-explore"],
    "--no-explore --no-profile": ["--no-explore", "--no-profile"],
}

BARE_TABLE = """
import sys, numpy as np, onnxruntime as ort, pyarrow.parquet as pq
model, data, name, columns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
for b in pq.ParquetFile(data).iter_batches(batch_size=65536, columns=columns):
    x = np.column_stack([b.column(c).to_numpy() for c in columns]).astype(np.float32)
    session.run(None, {name: x})
"""

BARE_IMAGES = """
import os, sys, numpy as np, onnxruntime as ort
from concurrent.futures import ThreadPoolExecutor
from PIL import Image
model, listing, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
paths = open(listing).read().split("\\n")
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
def load(p):
    with Image.open(p) as im:  # decoded whole, as Assay's default (input.decode: exact)
        return np.asarray(im.convert("L").resize((size, size), Image.BILINEAR))
with ThreadPoolExecutor(os.cpu_count()) as pool:
    for s in range(0, len(paths), 64):
        x = np.stack(list(pool.map(load, paths[s : s + 64]))).astype(np.float32)[:, None] / 255.0
        session.run(None, {"image": x})
"""


def onnx_of(clf: object, n_features: int, path: Path) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        clf,
        initial_types=[("x", FloatTensorType([None, n_features]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(onx.SerializeToString())


def build_table(tmp: Path, rows: int, features: int, classes: int) -> tuple[Path, list[str]]:
    """A Parquet table whose label depends on the features, with a ``line`` metadata column."""
    rng = np.random.default_rng(features)
    w = rng.normal(size=(features, classes))
    labels = np.array([f"c{i}" for i in range(classes)])
    columns = [f"f{j}" for j in range(features)]
    path = tmp / f"table-{features}.parquet"
    writer = None
    for start in range(0, rows, 500_000):
        n = min(500_000, rows - start)
        x = rng.normal(size=(n, features)).astype(np.float32)
        y = labels[np.argmax(x @ w + rng.normal(0, 1.5, (n, classes)), axis=1)]
        table = pa.table(
            {
                **{c: x[:, j] for j, c in enumerate(columns)},
                "line": rng.choice(["L1", "L2", "L3"], n),
                "label": y,
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    x = rng.normal(size=(20_000, features)).astype(np.float32)
    y = labels[np.argmax(x @ w + rng.normal(0, 1.5, (20_000, classes)), axis=1)]
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier

    clf = (
        RandomForestClassifier(30, max_depth=8, random_state=0, n_jobs=1)
        if classes == 2
        else MLPClassifier((64, 64), max_iter=20, random_state=0)
    ).fit(x, y)
    name = "rf" if classes == 2 else "mlp"
    onnx_of(clf, features, tmp / f"{name}.onnx")
    spec = {
        "labels": [str(c) for c in clf.classes_],
        "input": {"kind": "tabular", "columns": columns},
        "output": {"name": "probabilities"},
    }
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return path, columns


def build_scans(folder: Path, n: int) -> None:
    """512x512 grayscale PNG scans of a bright cable with dark defects, in class folders."""
    from PIL import Image

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:512, 0:512]
    for i in range(n):
        label = ("ok", "scratch", "pit")[i % 3]
        img = 170 + rng.normal(0, 12, (512, 512))
        if label == "scratch":
            row = rng.integers(40, 470)
            img[row : row + 3, rng.integers(0, 200) : rng.integers(300, 512)] -= 90
        elif label == "pit":
            cy, cx = rng.integers(40, 470, 2)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(30, 200)] -= 110
        (folder / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / label / f"{i}.png")


def image_model(paths: list[Path], labels: list[str], path: Path) -> list[str]:
    from PIL import Image
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from assay.demo.models import to_onnx_image_model

    def pixels(p: Path) -> np.ndarray:
        with Image.open(p) as im:
            return np.asarray(im.convert("L").resize((64, 64), Image.BILINEAR), np.float32)

    x = np.stack([pixels(p) for p in paths]).reshape(len(paths), -1) / 255.0
    model = make_pipeline(
        PCA(min(40, len(paths) - 1), random_state=0), LogisticRegression(max_iter=2000)
    ).fit(x, labels)
    to_onnx_image_model(model, (64, 64), 1, path)
    spec = {
        "labels": [str(c) for c in model.classes_],
        "input": {"kind": "image", "size": [64, 64], "color": "grayscale"},
        "output": {"name": "probabilities"},
    }
    path.with_suffix(".yaml").write_text(yaml.safe_dump(spec))
    return [str(c) for c in model.classes_]


def compare(name: str, n_items: int, bare: list[str], assay: list[str], repeats: int) -> None:
    run_measured(bare)  # warm the page cache and the interpreter's files for both sides
    rows: dict[str, list[tuple[float, float]]] = {"bare": [], **{m: [] for m in MODES}}
    for _ in range(repeats):
        for mode, flags in (("bare", None), *MODES.items()):
            rows[mode].append(run_measured(bare if flags is None else [*assay, *flags]))
    med = {k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in rows.items()}
    b = med["bare"][0]
    print(f"\n{name}: {n_items:,} items; model cost: bare loop {n_items / b:,.0f} items/s")
    print(f"  {'run':34s} {'median s':>9s} {'peak MiB':>9s} {'bare/assay':>11s}")
    for mode, (t, mem) in med.items():
        label = "bare loop (reference)" if mode == "bare" else f"assay validate {mode}"
        ratio = "" if mode == "bare" else f"{b / t:11.2f}"
        print(f"  {label:34s} {t:9.2f} {mem:9.0f} {ratio}")


def main() -> None:
    warnings.filterwarnings("ignore")  # scikit-learn convergence chatter
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--scans", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-tables", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        env_home = ["--home", str(home)]
        (tmp / "bare_table.py").write_text(textwrap.dedent(BARE_TABLE))
        (tmp / "bare_images.py").write_text(textwrap.dedent(BARE_IMAGES))
        assay = str(BIN / "assay")

        def add(kind: str, *argv: str) -> None:
            subprocess.run([assay, kind, "add", *argv, *env_home], check=True, capture_output=True)

        if not args.skip_tables:
            for features, classes, name in ((5, 2, "rf"), (32, 6, "mlp")):
                data, columns = build_table(tmp, args.rows, features, classes)
                add("dataset", f"t{features}", str(data))
                add("model", name, str(tmp / f"{name}.onnx"), "--spec", str(tmp / f"{name}.yaml"))
                compare(
                    f"table, {features} features, "
                    + ("RandomForest 30 trees" if name == "rf" else "6-class MLP 64x64"),
                    args.rows,
                    [
                        sys.executable,
                        str(tmp / "bare_table.py"),
                        str(tmp / f"{name}.onnx"),
                        str(data),
                        "x",
                        ",".join(columns),
                    ],
                    [assay, "validate", "--model", name, "--dataset", f"t{features}", *env_home],
                    args.repeats,
                )
        if args.skip_images:
            return
        sets: list[tuple[str, Path, list[Path]]] = []
        if NEU.exists():
            sets.append(("NEU-DET, 200x200 JPEG", NEU, sorted((NEU / "IMAGES").glob("*.jpg"))))
        else:
            print("\nNEU-DET: skipped (../shared/data/neu-det not present)")
        scans = tmp / "scans"
        build_scans(scans, args.scans)
        sets.append(("scans, 512x512 grayscale PNG", scans, sorted(scans.glob("*/*.png"))))
        for i, (name, folder, paths) in enumerate(sets):
            labels = [p.stem.rsplit("_", 1)[0] if folder == NEU else p.parent.name for p in paths]
            model = tmp / f"img{i}.onnx"
            image_model(paths[::4], labels[::4], model)
            add("dataset", f"img{i}", str(folder))
            add("model", f"img{i}", str(model), "--spec", str(model.with_suffix(".yaml")))
            listing = tmp / f"img{i}.txt"
            listing.write_text("\n".join(str(p) for p in paths))
            compare(
                f"images, {name}, PCA + logistic regression at 64x64",
                len(paths),
                [sys.executable, str(tmp / "bare_images.py"), str(model), str(listing), "64"],
                [assay, "validate", "--model", f"img{i}", "--dataset", f"img{i}", *env_home],
                args.repeats,
            )


if __name__ == "__main__":
    main()
