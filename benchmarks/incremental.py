"""Incremental validation against a full run, side by side, on a dataset that grew by 1%.

Workloads (the model of each is trained here, as in ``throughput.py``):

- a table: ``--rows`` rows (default 1,000,000), 5 features and a metadata column, a scikit-learn
  RandomForest (30 trees, depth 8) exported with skl2onnx, a cheap plant model. Version 2 adds
  1% new rows (10,000 by default) and relabels 100 old ones;
- images: ``--scans`` generated 512x512 grayscale PNG scans and a PCA + logistic-regression model
  at 64x64; version 2 adds 1% new scans;
- the same scans with a convolutional network at 224x224 (four 3x3 convolutions, 32 to 256
  channels, global pooling, a linear head fitted on the pooled features: 0.70 GMAC per image,
  between a MobileNetV2 and a ResNet-18), the kind of network a surface scanner runs: the case
  where the model's work dominates a run.

For each workload the model first runs on version 1 (the earlier run). Then, alternating, and
each time in a fresh copy of that store (so that no repetition reuses another's run):

- full: ``assay validate --no-reuse`` on version 2, every item through the model;
- incremental: ``assay validate`` on version 2, reusing the version-1 run's outputs.

Both run as whole CLI processes with the defaults on (profile and explorations), then both with
``--no-explore --no-profile``. Medians are printed with the ratio incremental / full (the goal of
issue 17: under 0.05) and each process's peak resident memory.

    .venv/bin/python benchmarks/incremental.py [--rows 1000000] [--scans 2000] [--repeats 3]
        [--skip-tables] [--skip-images] [--skip-cnn]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from measure import run_measured
from throughput import build_scans, build_table, image_model

BIN = Path(sys.executable).parent
MODES = {"defaults": [], "--no-explore --no-profile": ["--no-explore", "--no-profile"]}


def grown_table(v1: Path, grow: float, out: Path) -> int:
    """Version 2 of a table: every row of ``v1``, 100 relabelled, and ``grow`` x as many new rows
    drawn like the old ones (the label of a new row is an old row's: the model answers anew)."""
    table = pq.read_table(v1)
    n_new = max(1, int(table.num_rows * grow))
    rng = np.random.default_rng(7)
    labels = table.column("label").to_numpy(zero_copy_only=False).astype(object)
    values = sorted(set(labels[:1000]))
    flip = rng.choice(table.num_rows, 100, replace=False)
    labels[flip] = [values[(values.index(v) + 1) % len(values)] for v in labels[flip]]
    table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels))
    new = table.take(rng.integers(0, table.num_rows, n_new))
    jitter = {c: pc_jitter(new.column(c), rng) for c in new.column_names if c.startswith("f")}
    for c, col in jitter.items():
        new = new.set_column(new.schema.get_field_index(c), c, col)
    pq.write_table(pa.concat_tables([table, new]), out, row_group_size=500_000)
    return n_new


def pc_jitter(column: pa.ChunkedArray, rng: np.random.Generator) -> pa.Array:
    x = column.to_numpy()
    return pa.array((x + rng.normal(0, 0.01, x.shape)).astype(x.dtype))


def grown_scans(v1: Path, grow: float, out: Path) -> int:
    """Version 2 of a scan folder: a copy of ``v1`` with ``grow`` x as many new scans (old ones
    with fresh noise: new content, drawn like the rest)."""
    from PIL import Image

    shutil.copytree(v1, out)
    old = sorted(v1.glob("*/*.png"))
    n_new = max(1, int(len(old) * grow))
    rng = np.random.default_rng(11)
    for k, p in enumerate(old[:n_new]):
        with Image.open(p) as im:
            pixels = np.asarray(im, np.float64) + rng.normal(0, 8, im.size[::-1])
        target = out / p.parent.name / f"new-{k}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(target)
    return n_new


CNN_SIZE = 224


def cnn_model(paths: list[Path], labels: list[str], path: Path) -> None:
    """A small CNN as an ONNX graph: He-initialised convolutions (seeded) and a logistic-regression
    head fitted on their pooled features of ``paths``; writes the model and its spec."""
    import onnx
    import onnxruntime as ort
    import yaml
    from onnx import TensorProto, helper, numpy_helper
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    layers = [(1, 32, 2), (32, 64, 1), (64, 128, 1), (128, 256, 1)]  # in, out, stride
    nodes, inits, x = [], [], "image"
    for k, (c_in, c_out, stride) in enumerate(layers):
        w = rng.normal(0, np.sqrt(2 / (9 * c_in)), (c_out, c_in, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"),
                  numpy_helper.from_array(np.zeros(c_out, np.float32), f"b{k}")]  # fmt: skip
        nodes += [
            helper.make_node(
                "Conv",
                [x, f"w{k}", f"b{k}"],
                [f"c{k}"],
                pads=[1, 1, 1, 1],
                strides=[stride, stride],
            ),
            helper.make_node("Relu", [f"c{k}"], [f"r{k}"]),
        ]
        x = f"r{k}"
        if k in (1, 2):
            nodes.append(helper.make_node("MaxPool", [x], [f"p{k}"], kernel_shape=[2, 2],
                                          strides=[2, 2]))  # fmt: skip
            x = f"p{k}"
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["features"])]  # fmt: skip
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, CNN_SIZE, CNN_SIZE])

    def model(outputs: list, more_nodes: list, more_inits: list) -> onnx.ModelProto:
        graph = helper.make_graph(nodes + more_nodes, "cnn", [image], outputs, inits + more_inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m

    features_out = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 256])
    trunk = ort.InferenceSession(model([features_out], [], []).SerializeToString())

    def pixels(p: Path) -> np.ndarray:
        with Image.open(p) as im:
            small = im.convert("L").resize((CNN_SIZE, CNN_SIZE), Image.BILINEAR)
            return np.asarray(small, np.float32)[None] / 255.0

    feats = np.concatenate([
        trunk.run(None, {"image": np.stack([pixels(p) for p in paths[i : i + 64]])})[0]
        for i in range(0, len(paths), 64)
    ])  # fmt: skip
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    head = LogisticRegression(max_iter=2000).fit((feats - mean) / std, labels)
    w = (head.coef_ / std).T.astype(np.float32)
    b = (head.intercept_ - (head.coef_ * mean / std).sum(1)).astype(np.float32)
    probs = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(b)])
    final = model(
        [probs],
        [
            helper.make_node("Gemm", ["features", "head_w", "head_b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        [numpy_helper.from_array(w, "head_w"), numpy_helper.from_array(b, "head_b")],
    )
    path.write_bytes(final.SerializeToString())
    spec = {
        "labels": [str(c) for c in head.classes_],
        "input": {"kind": "image", "size": [CNN_SIZE, CNN_SIZE], "color": "grayscale"},
        "output": {"name": "probabilities"},
    }
    path.with_suffix(".yaml").write_text(yaml.safe_dump(spec))


def measure(name: str, n_items: int, n_new: int, base: Path, cmd: list[str], repeats: int) -> None:
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for mode, flags in MODES.items():
            for kind in ("full", "incremental"):
                home = base.parent / "trial"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(base, home)
                extra = ["--no-reuse"] if kind == "full" else []
                rows.setdefault(f"{kind} {mode}", []).append(
                    run_measured([*cmd, "--home", str(home), *flags, *extra])
                )
    med = {k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in rows.items()}
    print(f"\n{name}: version 2 = {n_items:,} items, {n_new:,} of them new")
    print(f"  {'run':40s} {'median s':>9s} {'peak MiB':>9s} {'incr/full':>10s}")
    for mode in MODES:
        full_s = med[f"full {mode}"][0]
        for kind in ("full", "incremental"):
            t, mem = med[f"{kind} {mode}"]
            ratio = f"{t / full_s:10.3f}" if kind == "incremental" else ""
            print(f"  {kind + ' ' + mode:40s} {t:9.2f} {mem:9.0f} {ratio}")


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scans", type=int, default=2_000)
    parser.add_argument("--grow", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-tables", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--skip-cnn", action="store_true")
    args = parser.parse_args()
    assay = str(BIN / "assay")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        def cli(*argv: str, home: Path) -> None:
            done = subprocess.run([assay, *argv, "--home", str(home)], capture_output=True)
            if done.returncode not in (0, 1):  # 1: a verdict that failed, still a finished run
                raise SystemExit(f"assay {' '.join(argv)}: {done.stderr.decode()[-2000:]}")

        if not args.skip_tables:
            home = tmp / "tables" / "home"
            v1, _ = build_table(tmp, args.rows, 5, 2)
            n_new = grown_table(v1, args.grow, tmp / "v2.parquet")
            cli("dataset", "add", "t", str(v1), home=home)
            cli("dataset", "add", "t", str(tmp / "v2.parquet"), home=home)
            cli("model", "add", "rf", str(tmp / "rf.onnx"), "--spec", str(tmp / "rf.yaml"),
                home=home)  # fmt: skip
            cli("validate", "--model", "rf", "--dataset", "t@1", home=home)
            measure(
                "table, 5 features, RandomForest 30 trees",
                args.rows + n_new,
                n_new,
                home,
                [assay, "validate", "--model", "rf", "--dataset", "t@2"],
                args.repeats,
            )
        if not (args.skip_images and args.skip_cnn):
            scans = tmp / "scans"
            build_scans(scans, args.scans)
            n_new = grown_scans(scans, args.grow, tmp / "scans2")
            paths = sorted(scans.glob("*/*.png"))
            workloads = []
            if not args.skip_images:
                image_model(paths[::4], [p.parent.name for p in paths[::4]], tmp / "img.onnx")
                workloads.append(("img", "PCA + logistic regression at 64x64", tmp / "img.onnx"))
            if not args.skip_cnn:
                cnn_model(paths[::4], [p.parent.name for p in paths[::4]], tmp / "cnn.onnx")
                workloads.append(("cnn", "a CNN at 224x224 (0.70 GMAC)", tmp / "cnn.onnx"))
            for model, words, onnx_path in workloads:
                home = tmp / model / "home"
                cli("dataset", "add", "s", str(scans), home=home)
                cli("dataset", "add", "s", str(tmp / "scans2"), home=home)
                cli("model", "add", model, str(onnx_path), "--spec",
                    str(onnx_path.with_suffix(".yaml")), home=home)  # fmt: skip
                cli("validate", "--model", model, "--dataset", "s@1", home=home)
                measure(
                    f"images, 512x512 grayscale PNG scans, {words}",
                    args.scans + n_new,
                    n_new,
                    home,
                    [assay, "validate", "--model", model, "--dataset", "s@2"],
                    args.repeats,
                )


if __name__ == "__main__":
    main()
