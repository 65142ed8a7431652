"""The leakage audit on generated images and tables with leaks planted on purpose: exact copies,
re-encoded and slightly changed copies (near duplicates), shared ids and an overlapping time
range. Every planted leak is found, no clean item is, and the pairs equal a comparison of every
pair of imagehash's own hashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageEnhance

from assay.cli.main import main
from assay.core.errors import InputError
from assay.services.datasets import register_dataset
from assay.services.leakage import audit_leakage
from assay.services.workspace import Workspace


def _scan(rng: np.random.Generator) -> Image.Image:
    """A textured grey scan: smooth blobs, so that perceptual hashes differ between scans."""
    base = rng.normal(size=(8, 8))
    big = np.kron(base, np.ones((12, 12))) + rng.normal(0, 0.15, (96, 96))
    pixels = np.clip(128 + 40 * big, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "L")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("leak")
    rng = np.random.default_rng(2)
    train, val = tmp / "train", tmp / "val"
    for k in range(60):
        (train / ("bad" if k % 2 else "good")).mkdir(parents=True, exist_ok=True)
        _scan(rng).save(train / ("bad" if k % 2 else "good") / f"t{k}.png")
    for k in range(40):
        (val / ("bad" if k % 2 else "good")).mkdir(parents=True, exist_ok=True)
        _scan(rng).save(val / ("bad" if k % 2 else "good") / f"v{k}.png")
    # Planted: two exact copies, and three near copies (re-encoded as JPEG, brightened, resized).
    shutil.copy(train / "bad" / "t1.png", val / "bad" / "copy1.png")
    shutil.copy(train / "good" / "t2.png", val / "good" / "copy2.png")
    with Image.open(train / "bad" / "t3.png") as im:
        im.save(val / "bad" / "near3.jpg", quality=80)
    with Image.open(train / "good" / "t4.png") as im:
        ImageEnhance.Brightness(im).enhance(1.1).save(val / "good" / "near4.png")
    with Image.open(train / "bad" / "t5.png") as im:
        im.resize((120, 120)).save(val / "bad" / "near5.png")
    ws = Workspace.open(tmp / "home")
    register_dataset(ws, "train", train, role="training")
    register_dataset(ws, "val", val)
    return {"ws": ws, "tmp": tmp, "home": tmp / "home", "train": train, "val": val}


def test_planted_leaks_are_found_and_nothing_else(images: dict[str, Any]) -> None:
    audit = audit_leakage(images["ws"], "train", "val")
    pairs = {(p["kind"], p["item_id"], p["train_item_id"]) for p in audit.pairs.to_pylist()}
    assert {(k, i, t) for k, i, t in pairs if k == "exact"} == {
        ("exact", "bad/copy1.png", "bad/t1.png"),
        ("exact", "good/copy2.png", "good/t2.png"),
    }
    near = {(i, t) for k, i, t in pairs if k == "near"}
    assert near == {
        ("bad/near3.jpg", "bad/t3.png"),
        ("good/near4.png", "good/t4.png"),
        ("bad/near5.png", "bad/t5.png"),
    }
    s = audit.summary()
    assert (s["n_exact_duplicates"], s["n_near_duplicates"], s["n_leaked_items"]) == (2, 3, 5)


def test_near_pairs_equal_every_pair_of_hashes_and_thumbnails(images: dict[str, Any]) -> None:
    """Against imagehash's own hashes and thumbnails made here with Pillow and numpy: every pair
    within 10 bits whose thumbnails correlate at 0.99, each item's most similar one."""
    audit = audit_leakage(images["ws"], "train", "val", max_hamming=10)

    def hashes(folder: Path) -> dict[str, Any]:
        return {
            p.relative_to(folder).as_posix(): imagehash.phash(Image.open(p))
            for p in folder.rglob("*")
            if p.is_file()
        }

    def thumbs(folder: Path) -> dict[str, np.ndarray]:
        out = {}
        for p in folder.rglob("*"):
            if p.is_file():
                a = np.asarray(Image.open(p).convert("L").resize((64, 64), Image.BILINEAR), float)
                v = a.ravel() - a.mean()
                out[p.relative_to(folder).as_posix()] = v / np.linalg.norm(v)
        return out

    train, val = hashes(images["train"]), hashes(images["val"])
    t_train, t_val = thumbs(images["train"]), thumbs(images["val"])
    expected: dict[str, tuple[float, int, str]] = {}
    for i, h in sorted(val.items()):
        for t, g in sorted(train.items()):
            d, c = h - g, float(t_val[i] @ t_train[t])
            if d <= 10 and c >= 0.99 and (i not in expected or (-c, d) < expected[i][:2]):
                expected[i] = (-c, d, t)
    exact = {p["item_id"] for p in audit.pairs.to_pylist() if p["kind"] == "exact"}
    found = {p["item_id"]: (int(p["distance"]), p["train_item_id"])
             for p in audit.pairs.to_pylist() if p["kind"] == "near"}  # fmt: skip
    assert found == {i: (d, t) for i, (_, d, t) in expected.items() if i not in exact}
    assert found  # the planted near copies are among them


def test_the_cli_writes_the_audit_and_exits_1_on_a_leak(
    images: dict[str, Any], capsys: Any
) -> None:
    out = images["tmp"] / "audit"
    code = main(["audit", "leakage", "--train", "train", "--dataset", "val", "--out", str(out),
                 "--home", str(images["home"])])  # fmt: skip
    assert code == 1
    printed = capsys.readouterr().out
    assert "5 leaked item(s)" in printed and "exact: bad/copy1.png ~ training bad/t1.png" in printed
    doc = json.loads((out / "leakage.json").read_text())
    assert doc["n_exact_duplicates"] == 2 and doc["n_near_duplicates"] == 3
    assert pq.read_table(out / "leakage_pairs.parquet").num_rows == 5
    html = (out / "leakage.html").read_text()
    assert "bad/near3.jpg" in html and html.count("data:image/jpeg;base64") >= 10
    taken = images["tmp"] / "a-file"
    taken.write_text("not a folder")
    code = main(["audit", "leakage", "--train", "train", "--dataset", "val", "--out", str(taken),
                 "--home", str(images["home"])])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not a folder" in err and "\n" not in err  # it was exit 3
    assert taken.read_text() == "not a folder"


def test_an_audit_kept_in_the_store_is_checked_before_it_is_used(images: dict[str, Any]) -> None:
    first = audit_leakage(images["ws"], "train", "val")
    assert first.folder is not None
    pairs = pq.read_table(first.folder / "leakage_pairs.parquet")
    pq.write_table(pairs.slice(0, 1), first.folder / "leakage_pairs.parquet")  # tampered
    again = audit_leakage(images["ws"], "train", "val")
    assert again.pairs.num_rows == 5  # computed anew, not read from the edited file


@pytest.mark.parametrize(
    ("train", "dataset", "says"),
    [("val", "val", "is a validation set"), ("train", "train", "is a training set")],
)
def test_roles_are_checked(images: dict[str, Any], train: str, dataset: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        audit_leakage(images["ws"], train, dataset)


def test_nothing_is_validated_on_a_training_set(images: dict[str, Any], capsys: Any) -> None:
    from tests.models import brightness_onnx

    spec = images["tmp"] / "m.yaml"
    spec.write_text(
        "task: classification\nlabels: [bad, good]\ninput: {kind: image, size: [16, 16], color: grayscale}\n"
    )
    onnx = brightness_onnx(images["tmp"] / "m.onnx", (16, 16))
    home = str(images["home"])
    assert main(["model", "add", "m", str(onnx), "--spec", str(spec), "--home", home]) == 0
    assert main(["validate", "--model", "m", "--dataset", "train", "--home", home]) == 2
    assert "is a training set" in capsys.readouterr().err
    # A name keeps its role.
    assert main(["dataset", "add", "train", str(images["val"]), "--home", home]) == 2
    assert "registered as a training set" in capsys.readouterr().err


def test_tables_exact_rows_shared_ids_and_time_ranges(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    start = np.datetime64("2026-01-01T00:00:00", "s")
    train = pa.table({
        "id": [f"r{k}" for k in range(n)],
        "torque": rng.normal(size=n), "speed": rng.normal(size=n),
        "at": pa.array(start + np.arange(n) * np.timedelta64(3600, "s")),
        "label": rng.choice(["ok", "bad"], n),
    })  # fmt: skip
    val = pa.table({
        "id": [f"v{k}" for k in range(50)] + ["r7", "r8"],
        "torque": np.r_[rng.normal(size=50), train["torque"].to_numpy()[[7, 8]]],
        "speed": np.r_[rng.normal(size=50), train["speed"].to_numpy()[[7, 8]]],
        # The copied rows keep their time; the others come after training's first 150 hours.
        "at": pa.array(start + np.r_[150 + np.arange(50), 7, 8] * np.timedelta64(3600, "s")),
        "label": ["ok"] * 52,  # labels differ: the rows are still the same
        "camera": ["c1"] * 52,  # a column only the validation set has: not compared
    })  # fmt: skip
    pq.write_table(train, tmp_path / "train.parquet")
    pq.write_table(val, tmp_path / "val.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    assert s["n_exact_duplicates"] == 2 and s["n_near_duplicates"] == 0
    assert {(p["item_id"], p["train_item_id"]) for p in s["pairs"]} == {("r7", "r7"), ("r8", "r8")}
    assert s["id_overlap"]["n"] == 2
    t = s["time_overlap"]
    assert t["column"] == "at" and t["n_inside_train_range"] == 52  # hours 150..199, 7, 8 of 0..199


def _model(images: dict[str, Any]) -> str:
    from tests.models import brightness_onnx

    home = str(images["home"])
    spec = images["tmp"] / "bright.yaml"
    spec.write_text(
        "task: classification\nlabels: [bad, good]\ninput: {kind: image, size: [16, 16], color: grayscale, scale: 0.00392156862745098}\n"
    )
    onnx = brightness_onnx(images["tmp"] / "bright.onnx", (16, 16))
    main(["model", "add", "bright", str(onnx), "--spec", str(spec), "--home", home])
    return home


def test_a_validation_with_train_reports_the_metrics_without_the_leaked_items(
    images: dict[str, Any], capsys: Any
) -> None:
    from sklearn.metrics import accuracy_score

    home = _model(images)
    policy = images["tmp"] / "policy.yaml"
    policy.write_text("checks:\n  - accuracy >= 0.01\n  - leaked_items == 0\n")
    out = images["tmp"] / "run"
    code = main(["validate", "--model", "bright", "--dataset", "val", "--train", "train",
                 "--policy", str(policy), "--out", str(out), "--no-profile", "--home", home])  # fmt: skip
    assert code == 1  # the leak fails the policy
    printed = capsys.readouterr().out
    assert "leakage from train@1: 5 item(s)" in printed
    doc = json.loads((out / "result.json").read_text())
    leak = doc["leakage"]
    assert leak["n_leaked_items"] == 5 and leak["n_exact_duplicates"] == 2
    check = next(c for c in doc["verdict"]["checks"] if c["metric"] == "leaked_items")
    assert check["status"] == "fail" and check["value"] == 5
    assert "leaked_items = 5, needs == 0" in check["reason"]  # as written, not '<= 0'
    pred = pq.read_table(out / "predictions.parquet").to_pandas()
    leaked = {p["item_id"] for p in audit_leakage(images["ws"], "train", "val").pairs.to_pylist()}
    clean = pred[pred["correct"].notna() & ~pred["item_id"].isin(leaked)]
    expected = accuracy_score(clean["label"], clean["predicted"])
    assert leak["metrics_without_leaked"]["accuracy"]["value"] == pytest.approx(expected)
    assert leak["n_judged_without_leaked"] == len(clean)
    assert "Leakage from training set train@1" in (out / "report.html").read_text()


def test_a_clean_audit_alone_is_no_evidence_to_pass(images: dict[str, Any], capsys: Any) -> None:
    """A policy whose only check is ``leaked_items == 0`` says nothing of what the model judged:
    on a dataset without leaks the verdict is not PASS."""
    home = _model(images)
    clean = images["tmp"] / "clean"
    for p in images["val"].rglob("v*.png"):
        (clean / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, clean / p.parent.name / p.name)
    assert main(["dataset", "add", "clean", str(clean), "--home", home]) == 0
    policy = images["tmp"] / "only-leak.yaml"
    policy.write_text("checks:\n  - leaked_items == 0\n")
    code = main(["validate", "--model", "bright", "--dataset", "clean", "--train", "train",
                 "--policy", str(policy), "--no-profile", "--no-explore", "--home", home])  # fmt: skip
    assert code == 1
    assert "PASS" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("checks", "says"),
    [("  - leaked_items == 0\n", "give --train"), ("  - accuracy == 1\n", "'==' is for counts")],
)
def test_policy_misuse_is_refused(
    images: dict[str, Any], capsys: Any, checks: str, says: str
) -> None:
    home = _model(images)
    policy = images["tmp"] / "bad.yaml"
    policy.write_text("checks:\n" + checks)
    code = main(["validate", "--model", "bright", "--dataset", "val", "--policy", str(policy),
                 "--home", home])  # fmt: skip
    assert code == 2 and says in capsys.readouterr().err


def test_embedding_neighbours_through_the_model(tmp_path: Path) -> None:
    """A validation row that is a training row measured again (tiny noise: not an exact copy)
    is the nearest neighbour of that row in the model's embedding, within the stated distance;
    scikit-learn's brute-force search on the same embeddings gives the same pairs."""
    from sklearn.metrics.pairwise import cosine_distances

    from assay.services.models import register_model
    from tests.models import embedding_onnx

    rng = np.random.default_rng(1)
    d = 16
    names = [f"f{k}" for k in range(d)]
    train = rng.normal(size=(300, d))
    val = rng.normal(size=(80, d))
    val[:3] = train[[10, 20, 30]] + rng.normal(0, 1e-3, (3, d))  # measured again
    for name, x in (("train", train), ("val", val)):
        cols_ = {n: x[:, k] for k, n in enumerate(names)}
        pq.write_table(pa.table({"id": [f"{name}{k}" for k in range(len(x))], **cols_,
                                 "label": rng.choice(["a", "b"], len(x))}), tmp_path / f"{name}.parquet")  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    projection = rng.normal(size=(d, 12))
    onnx = embedding_onnx(tmp_path / "e.onnx", rng.normal(size=(d, 2)), projection)
    spec = {"labels": ["a", "b"], "input": {"kind": "tabular", "columns": names},
            "output": {"name": "probabilities", "embedding": "embedding"}}  # fmt: skip
    register_model(ws, "m", onnx, spec)
    audit = audit_leakage(ws, "train", "val", model="m", max_embedding_distance=0.001)
    found = {(p["item_id"], p["train_item_id"]) for p in audit.pairs.to_pylist()}
    assert found == {("val0", "train10"), ("val1", "train20"), ("val2", "train30")}
    dist = cosine_distances(val @ projection, train @ projection)
    expected = {(f"val{i}", f"train{int(dist[i].argmin())}") for i in range(len(val))
                if dist[i].min() <= 0.001}  # fmt: skip
    assert found == expected
    s = audit.summary()
    assert s["n_embedding_neighbours"] == 3 and s["settings"]["embedding"]["model"] == "m@1"
    register_model(ws, "plain", onnx, {**spec, "output": {"name": "probabilities"}})
    with pytest.raises(InputError, match="no embedding output"):
        audit_leakage(ws, "train", "val", model="plain")


def test_copied_rows_under_new_ids_and_other_number_types_are_found(tmp_path: Path) -> None:
    """Rows copied into the training set with new ids, read from a CSV (integers) while the
    validation set is Parquet (floats): still the same rows (before, both were missed)."""
    rng = np.random.default_rng(3)
    speed = rng.integers(1200, 2200, 120)
    torque = rng.integers(5, 15, 120)
    pq.write_table(pa.table({"id": [f"v{k}" for k in range(120)],
                             "speed": speed.astype(float), "torque": torque.astype(float),
                             "label": rng.choice(["ok", "bad"], 120)}), tmp_path / "val.parquet")  # fmt: skip
    rows = (
        ["tid,speed,torque,label"]
        + [f"t{k},{speed[k]},{torque[k]},ok" for k in range(30)]
        + [f"t{k},{rng.integers(3000, 4000)},{rng.integers(20, 30)},ok" for k in range(30, 60)]
    )
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.csv", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    copied = {(speed[k], torque[k]) for k in range(30)}
    expected = [k for k in range(120) if (speed[k], torque[k]) in copied]
    assert s["n_exact_duplicates"] == len(expected) >= 30


def test_a_float32_copy_of_validation_rows_is_a_near_duplicate(tmp_path: Path) -> None:
    """The validation table saved as float32 Parquet and registered as the training set: the
    float64 digests differ, so the audit found 0 leaked rows, although a float32 model reads
    identical inputs. Rows equal once rounded to float32 are near duplicates."""
    rng = np.random.default_rng(8)
    val = pa.table({"id": [f"v{k}" for k in range(80)], "speed": rng.normal(1500, 200, 80),
                    "torque": rng.normal(10, 1, 80), "label": rng.choice(["ok", "bad"], 80)})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    copy = val.slice(0, 25)
    for name in ("speed", "torque"):
        at = copy.schema.get_field_index(name)
        copy = copy.set_column(at, name, copy.column(name).cast(pa.float32()))
    other = pa.table({"id": [f"t{k}" for k in range(25)],
                      "speed": rng.normal(1500, 200, 25).astype(np.float32),
                      "torque": rng.normal(10, 1, 25).astype(np.float32),
                      "label": rng.choice(["ok", "bad"], 25)})  # fmt: skip
    pq.write_table(pa.concat_tables([copy, other]), tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    assert s["n_exact_duplicates"] == 0 and s["n_near_duplicates"] == 25
    assert s["n_leaked_items"] == 25
    ws.close()


def test_copied_rows_with_a_time_column_read_from_a_csv_are_found(tmp_path: Path) -> None:
    """The training CSV's times are read as timestamp[ms], the validation Parquet file holds
    timestamp[us]: five rows copied verbatim were '0 leaked items' (the ticks differed)."""
    rng = np.random.default_rng(8)
    n = 80
    start = np.datetime64("2026-03-01T06:00:00", "us")
    at = start + np.arange(n) * np.timedelta64(90, "s")
    speed = rng.integers(1200, 2200, n).astype(float)
    pq.write_table(pa.table({"id": [f"v{k}" for k in range(n)], "at": pa.array(at),
                             "speed": speed, "label": rng.choice(["ok", "bad"], n)}),
                   tmp_path / "val.parquet")  # fmt: skip
    stamp = [str(t).replace("T", " ") for t in at]
    rows = ["tid,at,speed,label"] + [f"t{k},{stamp[k]},{speed[k]},ok" for k in range(5)]
    rows += [f"t{k},2025-01-0{1 + k % 9} 00:00:00,{3000 + k},ok" for k in range(5, 40)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.csv", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    # (Times are compared only when asked: by default rows are compared without them.)
    found = audit_leakage(ws, "train", "val", columns=["at", "speed"])
    assert found.summary()["n_exact_duplicates"] == 5


def test_rows_copied_with_another_time_stamp_and_operator_are_found(tmp_path: Path) -> None:
    """From a review: 20 validation rows copied into training with their features and labels,
    only the time moved back a year and an operator tag changed: 0 leaked, and a validation with
    --train passed leaked_items == 0. By default times are left out of the comparison; a
    validation compares the model's input columns."""
    rng = np.random.default_rng(9)
    n = 200
    at = np.datetime64("2026-03-01T06:00:00", "us") + np.arange(n) * np.timedelta64(90, "s")
    x = rng.normal(size=(n, 3))
    val = pa.table({"id": [f"v{k}" for k in range(n)], "at": pa.array(at), "x1": x[:, 0],
                    "x2": x[:, 1], "x3": x[:, 2], "operator": ["ann"] * n,
                    "label": rng.choice(["ok", "bad"], n)})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    copied = val.slice(0, 20)
    moved = pa.array(at[:20] - np.timedelta64(365 * 86_400_000_000, "us"))
    train = pa.concat_tables([
        copied.set_column(1, "at", moved).set_column(5, "operator", pa.array(["bob"] * 20)),
        val.slice(20).set_column(2, "x1", pa.array(x[20:, 0] + 10)),
    ])  # fmt: skip
    train = train.set_column(0, "id", pa.array([f"t{k}" for k in range(n)]))
    pq.write_table(train, tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    assert audit_leakage(ws, "train", "val").summary()["n_leaked_items"] == 0  # operator differs
    inputs = audit_leakage(ws, "train", "val", columns=["x1", "x2", "x3"]).summary()
    assert inputs["n_exact_duplicates"] == 20 and inputs["n_leaked_items"] == 20
    with pytest.raises(InputError, match="column 'x4' is not held by both"):
        audit_leakage(ws, "train", "val", columns=["x4"])


@pytest.mark.parametrize("stored", ["us-text", "iso-text", "unix-ms"])
def test_rows_copied_with_another_time_written_as_text_or_unix_are_found(
    tmp_path: Path, stored: str
) -> None:
    """As the test above, with the times as a CSV writes them (11/28/2026 06:00:00 PM, which no
    reader types) or as Unix milliseconds: they were compared like features, and the 20 copies
    taken a year earlier were 0 leaked items. A counter named like a time but outside the range
    of Unix times, and a serial number inside it but not named so, are still compared."""
    rng = np.random.default_rng(11)
    n = 200
    at = np.datetime64("2026-03-01T06:00:00", "s") + np.arange(n) * np.timedelta64(90, "s")

    def written(t: np.ndarray) -> pa.Array:
        if stored == "us-text":
            return pa.array([v.item().strftime("%m/%d/%Y %I:%M:%S %p") for v in t])
        if stored == "iso-text":
            return pa.array([v.item().isoformat() + "Z" for v in t])
        return pa.array(t.astype("M8[ms]").astype(np.int64))

    x = rng.normal(size=(n, 2))
    serial = 1_700_000_000 + np.arange(n)
    val = pa.table({"id": [f"v{k}" for k in range(n)], "scanned_at": written(at), "x1": x[:, 0],
                    "x2": x[:, 1], "cycle_time": rng.integers(5, 50, n), "serial": serial,
                    "label": rng.choice(["ok", "bad"], n)})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    earlier = written(at[:20] - np.timedelta64(365 * 86_400, "s"))
    train = pa.concat_tables([
        val.slice(0, 20).set_column(1, "scanned_at", earlier),
        val.slice(20).set_column(2, "x1", pa.array(x[20:, 0] + 10)),
    ])  # fmt: skip
    train = train.set_column(0, "id", pa.array([f"t{k}" for k in range(n)]))
    pq.write_table(train, tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    assert s["n_exact_duplicates"] == 20 and s["n_leaked_items"] == 20
    assert list(s["settings"]["times_left_out"]) == ["scanned_at"]
    assert s["settings"]["columns"] == ["x1", "x2", "cycle_time", "serial"]
    assert any("scanned_at (" in note for note in s["notes"])
    if stored == "unix-ms":  # ordered: the ranges are compared as for a date/time type
        assert s["time_overlap"]["column"] == "scanned_at"
    # Compared on request, the time tells the copies apart.
    named = audit_leakage(ws, "train", "val", columns=["x1", "x2", "scanned_at"]).summary()
    assert named["n_leaked_items"] == 0


def test_with_train_a_leak_fails_the_verdict_unless_the_policy_says_how_many_may_leak(
    images: dict[str, Any], capsys: Any
) -> None:
    """A review validated on the training set itself with ``--train``: every item leaked,
    PASS. With ``--train`` a leak now fails unless the policy checks leaked_items itself."""
    home = _model(images)
    policy = images["tmp"] / "lenient.yaml"
    policy.write_text("checks:\n  - accuracy >= 0.01\n")
    args = ["validate", "--model", "bright", "--dataset", "val", "--train", "train",
            "--no-profile", "--no-explore", "--home", home]  # fmt: skip
    out = images["tmp"] / "strict-run"
    assert main([*args, "--policy", str(policy), "--out", str(out)]) == 1
    check = next(
        c for c in json.loads((out / "result.json").read_text())["verdict"]["checks"]
        if c["metric"] == "leaked_items"
    )  # fmt: skip
    assert (check["status"], check["value"]) == ("fail", 5)
    policy.write_text("checks:\n  - accuracy >= 0.01\n  - leaked_items <= 5\n")
    capsys.readouterr()
    assert main([*args, "--policy", str(policy)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_tables_sharing_only_a_line_number_are_refused_not_all_duplicates(
    tmp_path: Path, capsys: Any
) -> None:
    """A review's training table shared only ``line`` (3 values) with the validation set: 3000
    of 3000 rows were 'exact duplicates', and ``validate --train`` would have dropped them all."""
    rng = np.random.default_rng(1)
    pq.write_table(pa.table({"id": [f"t{k}" for k in range(100)],
                             "line": rng.choice(["l1", "l2", "l3"], 100),
                             "label": rng.choice(["ok", "bad"], 100)}),
                   tmp_path / "train.parquet")  # fmt: skip
    pq.write_table(pa.table({"id": [f"v{k}" for k in range(60)],
                             "line": rng.choice(["l1", "l2", "l3"], 60),
                             "torque": rng.normal(size=60),
                             "label": rng.choice(["ok", "bad"], 60)}),
                   tmp_path / "val.parquet")  # fmt: skip
    home = str(tmp_path / "home")
    for name, role in (("train", "training"), ("val", "validation")):
        assert main(["dataset", "add", name, str(tmp_path / f"{name}.parquet"), "--id-column",
                     "id", "--role", role, "--home", home]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["audit", "leakage", "--train", "train", "--dataset", "val", "--home", home])
    err = capsys.readouterr().err
    assert code == 2 and "cannot tell rows apart: 3 distinct value(s) over 60 rows" in err


@pytest.mark.parametrize("writer", ["category", "decimal", "missing"])
def test_rows_copied_through_another_writer_are_found(tmp_path: Path, writer: str) -> None:
    """The same rows as another tool writes them: a pandas category column (a dictionary in
    Parquet), a decimal column (a SQL or Spark export), missing readings as NaN in Parquet but
    empty cells in a CSV, or empty text. Each was hashed as another value, and the audit said
    "0 leaked" (or missed every row with a missing reading)."""
    import decimal

    import pyarrow.csv as pcsv

    rng = np.random.default_rng(6)
    n = 60
    torque = np.array([float(f"{v:.2f}") for v in rng.normal(10, 1, n)])  # as a CSV reads them
    if writer == "missing":
        torque[::3] = np.nan
    line = rng.choice(["L1", "L2", "L3"], n).astype(object)
    if writer == "missing":
        line[1::4] = ""
    train = {
        "tid": [f"t{k}" for k in range(n)],
        "torque": torque,
        "line": line,
        "label": rng.choice(["ok", "bad"], n),
    }
    table = pa.table(train)
    if writer == "category":
        at = table.schema.get_field_index("line")
        table = table.set_column(at, "line", pc.dictionary_encode(table.column("line")))
    if writer == "decimal":
        exact = [decimal.Decimal(f"{v:.2f}") for v in torque]
        table = table.set_column(1, "torque", pa.array(exact, pa.decimal128(10, 2)))
    pq.write_table(table, tmp_path / "train.parquet")
    val = pa.table({"id": [f"v{k}" for k in range(20)], "line": line[:20],
                    "torque": torque[:20], "label": train["label"][:20]})  # fmt: skip
    if writer == "missing":  # a CSV's empty cells: nulls, and empty text
        pcsv.write_csv(val, tmp_path / "val.csv")
        source = tmp_path / "val.csv"
    else:
        pq.write_table(val, tmp_path / "val.parquet")
        source = tmp_path / "val.parquet"
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="tid", role="training")
    register_dataset(ws, "val", source, id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    assert s["n_exact_duplicates"] == 20, s
    ws.close()


def test_copied_rows_with_a_column_empty_throughout_one_table_are_found(tmp_path: Path) -> None:
    """A training CSV whose `aux` column is empty in every row (Arrow's null type), validation
    with `aux` as NaN: '0 leaked' for 100 copied rows."""
    rng = np.random.default_rng(4)
    speed = [float(f"{v:.1f}") for v in rng.normal(1500, 50, 200)]
    rows = ["tid,speed,aux,label"] + [f"t{k},{speed[k]},,ok" for k in range(200)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    val = pa.table({"id": [f"v{k}" for k in range(150)],
                    "speed": speed[:100] + [float(v) for v in rng.normal(1800, 50, 50)],
                    "aux": np.full(150, np.nan), "label": ["ok"] * 150})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.csv", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    assert audit_leakage(ws, "train", "val").summary()["n_exact_duplicates"] == 100
    ws.close()


def test_a_table_of_string_views_is_stored_as_strings(tmp_path: Path) -> None:
    """A Parquet file with a string_view column (Arrow's newer layout) was stored as is, and
    the leakage audit's side-by-side report crashed (no 'take' kernel for views, exit 3)."""
    rng = np.random.default_rng(0)
    line = pa.array(rng.choice(["L1", "L2"], 120), pa.string_view())
    table = pa.table({"speed": rng.normal(1500, 50, 120), "line": line,
                      "label": rng.choice(["ok", "bad"], 120)})  # fmt: skip
    pq.write_table(table, tmp_path / "val.parquet")
    pq.write_table(table.slice(0, 30), tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet")
    (dv,) = [d for d in ws.catalog.list_datasets() if d.name == "val"]
    assert pq.read_schema(dv.manifest_path).field("line").type == pa.string()
    assert audit_leakage(ws, "train", "val").summary()["n_exact_duplicates"] == 30
    ws.close()


def test_large_integer_ids_do_not_make_near_duplicates(tmp_path: Path) -> None:
    """Rounded to float32 for the near pass, every id above 2**24 met its neighbours: tables
    with nothing in common had hundreds of 'near duplicates', and a release gate failed."""
    rng = np.random.default_rng(1)

    def table(start: int) -> pa.Table:
        return pa.table({"id": [f"r{start + k}" for k in range(300)],
                         "serial": np.arange(start, start + 300, dtype=np.int64) + 2**40,
                         "grade": rng.integers(0, 3, 300).astype(np.float32),
                         "label": rng.choice(["ok", "bad"], 300)})  # fmt: skip

    pq.write_table(table(0), tmp_path / "train.parquet")
    pq.write_table(table(1000), tmp_path / "val.parquet")  # no serial in common
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="id", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    ws.close()
    assert s["n_exact_duplicates"] == 0 and s["n_near_duplicates"] == 0, s


def test_copies_are_found_beside_a_date_far_in_the_future(tmp_path: Path) -> None:
    """A 9999-12-31 (an open end in SQL exports) crashed registration (exit 3), and beside a
    timestamp beyond 2262 every other one of its batch hashed in another unit."""
    import datetime as dt

    rng = np.random.default_rng(2)
    n = 120
    at = [dt.datetime(2026, 1, 1) + dt.timedelta(minutes=int(m)) for m in range(n)]
    at[0] = dt.datetime(9999, 12, 31)
    day = [dt.date(2026, 1, 1)] * n
    day[0] = dt.date(9999, 12, 31)
    speed = rng.normal(1500, 50, n)
    train = pa.table({"tid": [f"t{k}" for k in range(n)], "at": pa.array(at, pa.timestamp("us")),
                      "day": pa.array(day, pa.date32()), "speed": speed,
                      "label": ["ok"] * n})  # fmt: skip
    pq.write_table(train, tmp_path / "train.parquet")
    val = pa.table({"id": [f"v{k}" for k in range(1, 41)],
                    "at": pa.array(at[1:41], pa.timestamp("ms")),
                    "day": pa.array(day[1:41], pa.date32()), "speed": speed[1:41],
                    "label": ["ok"] * 40})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.parquet", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    assert audit_leakage(ws, "train", "val").summary()["n_exact_duplicates"] == 40
    ws.close()


def test_rows_as_an_export_writes_them_are_near_duplicates(tmp_path: Path) -> None:
    """From a review: rows copied into training through a CSV written with %.6g (float32 keeps
    about 7 digits, so the float32 level missed them), a category typed again in lower case, a
    value with a trailing space: not found. They are near duplicates now; and a single
    fractional column, whose 6-digit values rows of two sets would share by chance, is not
    looked at that way (named in the notes)."""
    rng = np.random.default_rng(10)
    n = 300
    val = pa.table({"id": [f"v{k}" for k in range(n)], "speed": rng.normal(1500, 200, n),
                    "torque": rng.normal(10, 1, n), "line": rng.choice(["L1", "L2"], n),
                    "label": rng.choice(["ok", "bad"], n)})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    rows = ["tid,speed,torque,line,label"]
    rows += [f"t{k},{val['speed'][k].as_py():.6g},{val['torque'][k].as_py():.6g},"
             f"{val['line'][k].as_py().lower()} ,ok" for k in range(20)]  # fmt: skip
    rows += [
        f"t{k},{rng.normal(1500, 200):.6g},{rng.normal(10, 1):.6g},L1,ok" for k in range(20, 60)
    ]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.csv", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    assert s["n_exact_duplicates"] == 0 and s["n_near_duplicates"] == 20
    assert {p["item_id"] for p in s["pairs"]} == {f"v{k}" for k in range(20)}

    # One fractional column of values in [0, 1): at 6 digits, 300 x 40,000 rows meet by chance.
    pq.write_table(pa.table({"id": [f"v{k}" for k in range(n)], "x": rng.uniform(size=n),
                             "label": ["ok"] * n}), tmp_path / "one.parquet")  # fmt: skip
    pq.write_table(pa.table({"id": [f"t{k}" for k in range(40_000)],
                             "x": np.round(rng.uniform(size=40_000), 6),
                             "label": ["ok"] * 40_000}), tmp_path / "one-train.parquet")  # fmt: skip
    register_dataset(ws, "one-train", tmp_path / "one-train.parquet", id_column="id",
                     role="training")  # fmt: skip
    register_dataset(ws, "one", tmp_path / "one.parquet", id_column="id")
    s = audit_leakage(ws, "one-train", "one").summary()
    assert s["n_near_duplicates"] == 0
    assert any("as an export writes not looked for" in note for note in s["notes"])


def test_numbers_are_rounded_as_percent_g_writes_them() -> None:
    """From a review: rounding by ``round(x * 10**e) / 10**e`` rounds the product, which lands
    on a half where the value lies just beside one (109.4255 is 109.42549999..., which %g
    writes 109.425), and rows of four-decimal sensors copied into training through a %.6g CSV
    met no validation row. Compared with Python's %g (correctly rounded, as C's printf) over
    values of every magnitude, many of them on a half at the seventh digit."""
    from assay.services.leakage import SIGNIFICANT, _significant

    rng = np.random.default_rng(0)
    parts = [np.round(rng.uniform(-10, 10, 3000) * mag, dec)
             for dec in range(9) for mag in (1e-7, 1e-3, 0.1, 1, 100, 1234, 1e5, 1e7, 1e12, 1e21)]  # fmt: skip
    parts.append(rng.normal(size=20_000) * 10.0 ** rng.integers(-30, 30, 20_000))
    parts.append(np.array([109.4255, 1378.845, 2.5, 1234565.0, 999999.5, 9999995.0, 5e-324,
                           1.7976931348623157e308, -0.0, np.nan, np.inf]))  # fmt: skip
    x = np.concatenate(parts)
    want = np.array([float(f"{v:.{SIGNIFICANT}g}") for v in x])
    got = _significant(x)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), [(x[i], got[i], want[i]) for i in np.flatnonzero(~same)[:5]]


def test_four_decimal_rows_copied_through_a_percent_g_csv_are_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review's case: 40 columns of four-decimal sensor readings in the hundreds (seven
    digits, a tie at the seventh in one value of ten), three rows copied into training through
    pandas' ``to_csv(float_format="%.6g")``: 0 leaked items, and the gate passed."""
    rng = np.random.default_rng(3)
    n, k = 200, 40
    x = np.round(rng.uniform(100, 999, (n, k)), 4)
    names = [f"s{j}" for j in range(k)]
    val = pa.table({"id": [f"v{i}" for i in range(n)], **{c: x[:, j] for j, c in enumerate(names)},
                    "label": rng.choice(["ok", "bad"], n)})  # fmt: skip
    pq.write_table(val, tmp_path / "val.parquet")
    fresh = np.round(rng.uniform(100, 999, (50, k)), 4)
    copied = [7, 77, 177]
    rows = [",".join(["tid", *names, "label"])]
    rows += [",".join([f"t{i}", *(f"{v:.6g}" for v in row), "ok"])
             for i, row in enumerate([*x[copied], *fresh])]  # fmt: skip
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "train", tmp_path / "train.csv", id_column="tid", role="training")
    register_dataset(ws, "val", tmp_path / "val.parquet", id_column="id")
    s = audit_leakage(ws, "train", "val").summary()
    ws.close()
    assert s["n_near_duplicates"] == 3, s
    assert {p["item_id"] for p in s["pairs"]} == {f"v{i}" for i in copied}
    # Told as rows (the CLI and the report spoke of perceptual hashes' bits).
    out = tmp_path / "audit"
    code = main(["audit", "leakage", "--train", "train", "--dataset", "val", "--out", str(out),
                 "--home", str(tmp_path / "home")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1 and "near, equal once rounded: v7 ~ training t0" in printed, printed
    html = (out / "leakage.html").read_text()
    assert "equal once numbers are rounded" in html and "pHash" not in html
