"""Incremental validation: a later dataset version (rows added, removed, changed, relabelled,
shuffled) validated with the outputs an earlier run recorded for its unchanged items gives the
same result as a full run, bit for bit; ``n_reused`` and ``n_inferred`` say which was which.
The hostile cases: an earlier run whose predictions were edited, a model that failed on every
item before, items whose file changed on disk, and a pass that is stopped and resumed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from assay.core.config import ValidationConfig
from assay.services.datasets import register_dataset
from assay.services.integrity import IntegrityError
from assay.services.models import register_model
from assay.services.validation import resume_validation, validate
from assay.services.workspace import Workspace
from tests.models import brightness_onnx, passthrough_onnx, tabular_onnx

ROWS = 3000
NEW = 400
SPEC = {
    "labels": ["bad", "good"],
    "input": {"kind": "tabular", "columns": ["a", "b", "c"]},
}
# Per-run and per-call fields: everything else of result.json must be equal.
VARYING = {"run_id", "timings", "environment", "started_at", "finished_at", "n_reused",
           "n_inferred", "reuse", "profile"}  # fmt: skip


def _rows(rng: np.random.Generator, n: int, start: int) -> dict[str, Any]:
    x = rng.normal(size=(n, 3))
    label = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=n) > 0, "bad", "good")
    return {
        "id": [f"i{start + k}" for k in range(n)],
        "a": x[:, 0],
        "b": x[:, 1],
        "c": x[:, 2],
        "line": rng.choice(["L1", "L2", "L3"], size=n),
        "label": label.astype(object),
    }


def _versions(tmp: Path) -> tuple[Path, Path, dict[str, int]]:
    """v1, and v2: v1 shuffled, 50 rows removed, 10 relabelled, 7 with a changed feature, a few
    with a NaN feature, NEW rows added."""
    rng = np.random.default_rng(3)
    v1 = pa.table(_rows(rng, ROWS, 0))
    pq.write_table(v1, tmp / "v1.parquet")
    d = v1.to_pydict()
    keep = np.ones(ROWS, bool)
    keep[rng.choice(ROWS, 50, replace=False)] = False
    for k in rng.choice(np.flatnonzero(keep), 10, replace=False):
        d["label"][k] = "good" if d["label"][k] == "bad" else "bad"
    changed = rng.choice(np.flatnonzero(keep), 7, replace=False)
    for k in changed:
        d["b"][k] += 0.25
    nan = rng.choice(np.flatnonzero(keep), 3, replace=False)
    for k in nan:
        d["c"][k] = float("nan")
    old = pa.table(d).filter(pa.array(keep))
    new = pa.table(_rows(np.random.default_rng(4), NEW, ROWS))
    v2 = pa.concat_tables([old, new]).take(rng.permutation(old.num_rows + NEW))
    pq.write_table(v2, tmp / "v2.parquet")
    return tmp / "v1.parquet", tmp / "v2.parquet", {"changed": 7 + 3, "new": NEW}


def _model(tmp: Path, ws: Workspace, name: str, seed: int) -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(800, 3)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "bad", "good")
    forest = RandomForestClassifier(n_estimators=12, max_depth=5, random_state=seed).fit(x, y)
    register_model(ws, name, tabular_onnx(forest, 3, tmp / f"{name}.onnx"), SPEC)


def _comparable(path: Path) -> dict[str, Any]:
    doc = json.loads((path / "result.json").read_text())
    doc["config"].pop("reuse")
    if doc.get("comparison"):  # whether the baseline's run came from this pass or an earlier one
        doc["comparison"]["baseline"].pop("reused")
    return {k: v for k, v in doc.items() if k not in VARYING}


def _same_files(a: Path, b: Path) -> None:
    for name in ("predictions.parquet", "comparison.parquet", "doubtful_labels.parquet"):
        if (a / name).exists() or (b / name).exists():
            assert pq.read_table(a / name).equals(pq.read_table(b / name)), name


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("incremental")
    v1, v2, counts = _versions(tmp)
    ws = Workspace.open(tmp / "home")
    register_dataset(ws, "cable", v1, id_column="id")
    register_dataset(ws, "cable", v2, id_column="id")
    _model(tmp, ws, "scanner", 1)
    _model(tmp, ws, "scanner", 2)
    # One thread: onnxruntime's tree ensembles then answer an item the same whatever else is in
    # its batch (with several threads they sum the trees in an order that depends on the batch).
    config = ValidationConfig(batch_size=256, profile=False, threads=1)
    # v1: the earlier runs of both versions (the second as candidate, the first as baseline).
    first = validate(ws, "scanner@2", "cable@1", baseline="scanner@1", config=config)
    incremental = validate(ws, "scanner@2", "cable@2", baseline="scanner@1", config=config)
    full = validate(ws, "scanner@2", "cable@2", baseline="scanner@1",
                    config=dataclasses.replace(config, reuse=False))  # fmt: skip
    return {"ws": ws, "tmp": tmp, "counts": counts, "first": first, "inc": incremental,
            "full": full, "config": config}  # fmt: skip


def test_an_incremental_run_equals_a_full_run_bit_for_bit(store: dict[str, Any]) -> None:
    inc, full = store["inc"], store["full"]
    assert _comparable(inc.run_dir) == _comparable(full.run_dir)
    _same_files(inc.run_dir, full.run_dir)
    assert inc.result.verdict == full.result.verdict
    assert inc.result.comparison is not None and inc.result.comparison["n_broken"] >= 0


def test_with_several_threads_the_scores_move_only_as_a_full_run_at_another_batch_size_does(
    store: dict[str, Any],
) -> None:
    """Multi-threaded tree ensembles in onnxruntime move scores in the last float32 bit with the
    batch's make-up; a reused output is one such answer. The decisions stay the same."""
    ws = store["ws"]
    config = ValidationConfig(batch_size=256, profile=False, explore=False)
    inc = validate(ws, "scanner@1", "cable@2", config=config)
    full = validate(ws, "scanner@1", "cable@2", config=dataclasses.replace(config, reuse=False))
    other = validate(ws, "scanner@1", "cable@2",
                     config=dataclasses.replace(config, reuse=False, batch_size=100))  # fmt: skip
    a, b, c = (pq.read_table(o.run_dir / "predictions.parquet") for o in (inc, full, other))
    for name in ("item_id", "label", "predicted", "correct", "error"):
        assert a.column(name).equals(b.column(name)), name
    moved = np.abs(a.column("score_bad").to_numpy() - b.column("score_bad").to_numpy())
    batch_moved = np.abs(c.column("score_bad").to_numpy() - b.column("score_bad").to_numpy())
    assert np.nanmax(moved) <= 2.4e-7 and np.nanmax(batch_moved) <= 2.4e-7
    assert inc.result.confusion_matrix == full.result.confusion_matrix


def test_only_new_and_changed_items_go_through_the_model(store: dict[str, Any]) -> None:
    inc, full, counts = store["inc"].result, store["full"].result, store["counts"]
    readable = full.n_items - 3  # the three rows with a NaN feature cannot be given to the model
    assert full.n_reused == 0 and full.n_inferred == readable
    assert inc.n_reused + inc.n_inferred == readable
    # New rows and rows with a changed feature; relabelled rows keep their recorded output.
    assert inc.n_inferred == counts["new"] + counts["changed"] - 3
    assert inc.reuse is not None and inc.reuse["from_run"] == store["first"].result.run_id
    assert inc.reuse["n_available"] == inc.n_reused
    assert full.reuse is not None and full.reuse["reason"].startswith("--no-reuse")


def test_the_first_run_has_nothing_to_reuse_and_says_so(store: dict[str, Any]) -> None:
    first = store["first"].result
    assert first.n_reused == 0 and first.n_inferred == first.n_items
    assert "no earlier finished run of scanner@2 on cable" in first.reuse["reason"]


def test_the_same_version_again_reuses_every_answered_item(store: dict[str, Any]) -> None:
    again = validate(store["ws"], "scanner@2", "cable@2", baseline="scanner@1",
                     config=store["config"])  # fmt: skip
    assert again.result.n_inferred == 0
    assert again.result.n_reused == store["full"].result.n_inferred
    assert again.result.metrics == store["full"].result.metrics


def test_an_earlier_run_whose_predictions_were_edited_stops_the_validation(
    tmp_path: Path,
) -> None:
    v1, v2, _ = _versions(tmp_path)
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", v1, id_column="id")
    register_dataset(ws, "cable", v2, id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=256, profile=False, explore=False)
    first = validate(ws, "scanner", "cable@1", config=config)
    table = pq.read_table(first.run_dir / "predictions.parquet")
    flipped = pa.array(1.0 - table.column("score_bad").to_numpy())
    table = table.set_column(table.schema.get_field_index("score_bad"), "score_bad", flipped)
    pq.write_table(table, first.run_dir / "predictions.parquet")
    with pytest.raises(IntegrityError, match=r"predictions\.parquet"):
        validate(ws, "scanner", "cable@2", config=config)
    # --no-reuse does not read it: the full run goes ahead.
    full = validate(ws, "scanner", "cable@2", config=ValidationConfig(
        batch_size=256, profile=False, explore=False, reuse=False))  # fmt: skip
    assert full.result.n_reused == 0


def test_a_version_with_its_columns_reordered_or_one_added_reuses_the_unchanged_rows(
    tmp_path: Path,
) -> None:
    """Review: the stored row digests follow the table's column order, so the same rows
    exported with their columns in another order, or with a column added (the time a label
    came in), matched no earlier row and every item ran again. Rows are compared by their
    values in the columns both versions have; a changed input still runs, and the result is
    the full run's."""
    v1, _, _ = _versions(tmp_path)
    table = pq.read_table(v1)
    b = table.column("b").to_numpy().copy()
    b[7] += 1.0  # one changed input
    line = table.column("line").to_pylist()
    line[9] = "L9"  # one changed value of a column the model does not read
    changed = table.set_column(2, "b", pa.array(b)).set_column(4, "line", pa.array(line))
    variants = {
        "reordered": changed.select(["label", "line", "c", "id", "b", "a"]),
        "added": changed.append_column("came_in", pa.array(np.arange(ROWS))),
    }
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", v1, id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=256, profile=False, threads=1)
    validate(ws, "scanner", "cable@1", config=config)
    for k, (name, variant) in enumerate(variants.items()):
        pq.write_table(variant, tmp_path / f"{name}.parquet")
        register_dataset(ws, "cable", tmp_path / f"{name}.parquet", id_column="id")
        dataset = f"cable@{k + 2}"
        inc = validate(ws, "scanner", dataset, config=config)
        full = validate(ws, "scanner", dataset, config=dataclasses.replace(config, reuse=False))
        # Against version 1: the changed input and the changed line run again; against the
        # reordered version (the newest run), which holds both changes, nothing does.
        inferred = 2 if name == "reordered" else 0
        assert (name, inc.result.n_inferred, inc.result.n_reused) == (
            name, inferred, ROWS - inferred)  # fmt: skip
        assert _comparable(inc.run_dir) == _comparable(full.run_dir)
        _same_files(inc.run_dir, full.run_dir)


def test_items_the_model_failed_on_are_never_reused(tmp_path: Path) -> None:
    """A model whose outputs were NaN on every item: nothing is recorded as answered, so the
    next version runs every item again (and reports them unjudged again)."""
    rng = np.random.default_rng(0)
    a = rng.uniform(size=500)
    labels = np.where(a > 0.5, "bad", "good")
    for name, n in (("v1", 400), ("v2", 500)):
        pq.write_table(
            pa.table({"a": 1 - a[:n], "b": a[:n], "label": labels[:n]}), tmp_path / f"{name}.parquet"
        )  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "v1.parquet")
    register_dataset(ws, "t", tmp_path / "v2.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["b", "a"]},
            "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "nan", passthrough_onnx(tmp_path / "nan.onnx", 2, np.nan), spec)
    config = ValidationConfig(batch_size=128, profile=False, explore=False)
    first = validate(ws, "nan", "t@1", config=config)
    assert first.result.n_failed == 400
    second = validate(ws, "nan", "t@2", config=config)
    assert second.result.n_reused == 0 and second.result.n_inferred == 500
    assert second.result.n_failed == 500
    assert "no item of t@2" in second.result.reuse["reason"]


def _images(folder: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for k in range(n):
        label = "bad" if k % 2 else "good"
        (folder / label).mkdir(parents=True, exist_ok=True)
        level = 200 if label == "bad" else 40
        pixels = np.clip(rng.normal(level, 60, size=(24, 24)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "L").save(folder / label / f"s{seed}_{k}.png")


def test_images_reused_are_checked_not_decoded_and_the_result_is_the_same(
    tmp_path: Path,
) -> None:
    """Image items whose output is reused are not decoded, but a file changed on disk since the
    dataset was registered is still refused, exactly as a full run refuses it."""
    ws, config = _scans_store(tmp_path, _images, (60, 20))
    validate(ws, "bright@1", "scans@1", config=config)
    # A file of v2 changes on disk after registration: both runs must refuse it.
    victim = sorted((tmp_path / "v2" / "bad").glob("s0_*.png"))[0]
    Image.fromarray(np.zeros((24, 24), np.uint8), "L").save(victim)
    inc = validate(ws, "bright@1", "scans@2", config=config)
    full = validate(ws, "bright@1", "scans@2", config=ValidationConfig(
        batch_size=16, profile=False, reuse=False))  # fmt: skip
    assert inc.result.n_reused == 59 and inc.result.n_inferred == 20
    assert inc.result.n_failed == full.result.n_failed == 1
    assert inc.result.failures == full.result.failures
    assert _comparable(inc.run_dir) == _comparable(full.run_dir)
    _same_files(inc.run_dir, full.run_dir)


def test_a_stopped_incremental_run_resumes_to_the_same_result(store: dict[str, Any]) -> None:
    ws, full = store["ws"], store["full"]
    config = dataclasses.replace(store["config"], checkpoint_every_s=0)
    seen = 0

    def stop(n: int) -> None:
        nonlocal seen
        seen += 1
        if seen == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate(ws, "scanner@2", "cable@2", baseline="scanner@1", config=config,
                 on_progress=stop)  # fmt: skip
    run = next(r for r in ws.catalog.list_runs(limit=2) if r.status == "interrupted")
    resumed = resume_validation(ws, run.id)
    assert resumed.result.n_reused + resumed.result.n_inferred == full.result.n_inferred
    assert resumed.result.metrics == full.result.metrics
    _same_files(resumed.run_dir, full.run_dir)


def _mislabelled_images(folder: Path, n: int, seed: int) -> None:
    """Scans of which every third lies in the other class's folder: the model errs on those."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        bright = bool(k % 2)
        label = ("good" if bright else "bad") if k % 3 == 0 else ("bad" if bright else "good")
        (folder / label).mkdir(parents=True, exist_ok=True)
        pixels = np.clip(rng.normal(200 if bright else 40, 60, (24, 24)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8), "L").save(folder / label / f"m{seed}_{k}.png")


def test_image_descriptors_of_unchanged_errors_are_reused_and_the_groups_are_the_same(
    tmp_path: Path,
) -> None:
    """The grouping of misclassified images decodes each of them for its descriptor; an
    incremental run takes the earlier run's descriptors of unchanged images (by file digest) and
    groups exactly as a full run does. An edited descriptor file stops the validation."""
    ws, config = _scans_store(tmp_path, _mislabelled_images)
    first = validate(ws, "bright@1", "scans@1", config=config)
    kept = pq.read_table(first.run_dir / "error_descriptors.parquet")
    assert kept.num_rows == first.result.error_groups["n_errors"] >= 20
    inc = validate(ws, "bright@1", "scans@2", config=config)
    full = validate(ws, "bright@1", "scans@2", config=dataclasses.replace(config, reuse=False))
    assert inc.result.reuse is not None and full.result.reuse is not None
    assert inc.result.reuse["n_descriptors_reused"] == kept.num_rows
    assert full.result.reuse["n_descriptors_reused"] == 0  # said, not left out
    assert inc.result.error_groups == full.result.error_groups
    assert inc.result.error_groups["n_errors"] > kept.num_rows  # the new scans' errors too
    assert _comparable(inc.run_dir) == _comparable(full.run_dir)
    for name in ("error_groups.parquet", "error_descriptors.parquet"):
        assert pq.read_table(inc.run_dir / name).equals(pq.read_table(full.run_dir / name))

    # Hostile: the descriptors of the run the next one reuses (the newest) edited since.
    pq.write_table(kept.slice(1), full.run_dir / "error_descriptors.parquet")
    with pytest.raises(IntegrityError, match="error_descriptors"):
        validate(ws, "bright@1", "scans@2", config=config)


def test_a_profile_is_measured_once_per_model_version_and_machine(tmp_path: Path) -> None:
    """A second validation of the same model version on this machine takes the profile the
    first measured (and says so); other settings, --no-reuse, or an edited result measure anew."""
    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile_seconds=0.2)
    first = validate(ws, "scanner", "cable", config=config)
    assert first.result.profile is not None and "reused_from" not in first.result.profile
    again = validate(ws, "scanner", "cable", config=config)
    profile = again.result.profile
    assert profile is not None and profile["reused_from"]["run_id"] == first.result.run_id
    assert {k: v for k, v in profile.items() if k != "reused_from"} == first.result.profile
    assert again.result.verdict == first.result.verdict
    fresh = validate(ws, "scanner", "cable", config=dataclasses.replace(config, reuse=False))
    other = validate(ws, "scanner", "cable", config=dataclasses.replace(config, batch_size=32))
    for result in (fresh.result, other.result):
        assert result.profile is not None and "reused_from" not in result.profile
    html = (again.run_dir / "report.html").read_text()
    assert f"measured by run {first.result.run_id[:12]}" in html
    from assay.cli.output import console, print_summary

    with console.capture() as printed:
        print_summary(again.result)
    assert f"measured by run {first.result.run_id[:12]}" in printed.get().replace("\n", " ")
    # Hostile: every earlier result with a matching profile edited: stop, never use it.
    for run in (first, fresh):
        doc = json.loads((run.run_dir / "result.json").read_text())
        doc["profile"]["summary"]["latency_p99_ms"] = 0.0001
        (run.run_dir / "result.json").write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=r"result\.json"):
        validate(ws, "scanner", "cable", config=config)


def _scans_store(
    tmp_path: Path, make: Callable[[Path, int, int], None], sizes: tuple[int, int] = (90, 30)
) -> tuple[Workspace, ValidationConfig]:
    """scans@1 (``sizes[0]`` scans by ``make``) and scans@2 (those and ``sizes[1]`` new ones),
    and two versions of a brightness model (16x16, then 12x12)."""
    import shutil

    make(tmp_path / "v1", sizes[0], 0)
    shutil.copytree(tmp_path / "v1", tmp_path / "v2")
    make(tmp_path / "v2", sizes[1], 1)
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "scans", tmp_path / "v1")
    register_dataset(ws, "scans", tmp_path / "v2")
    spec = {"labels": ["bad", "good"], "input": {"kind": "image", "size": [16, 16],
            "color": "grayscale", "scale": 1 / 255}, "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "bright", brightness_onnx(tmp_path / "b.onnx", (16, 16)), spec)
    register_model(ws, "bright", brightness_onnx(tmp_path / "b2.onnx", (12, 12)), {
        **spec, "input": {**spec["input"], "size": [12, 12]}})  # fmt: skip
    return ws, ValidationConfig(batch_size=16, profile=False)


def _digests(folder: Path) -> dict[str, str]:
    from assay.digests import file_sha256

    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_descriptors_without_a_recorded_digest_are_never_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run from before descriptors were digested (or a file planted later) is not trusted:
    even a tampered file changes nothing, and the groups are the full run's."""
    from assay.services import integrity

    ws, config = _scans_store(tmp_path, _mislabelled_images)
    with monkeypatch.context() as m:
        m.setattr(integrity, "KEPT_FILES", ("predictions.parquet", "result.json"))
        first = validate(ws, "bright@1", "scans@1", config=config)
    kept = pq.read_table(first.run_dir / "error_descriptors.parquet")
    rolled = np.roll(np.asarray(kept.column("vector").to_pylist()), 1, axis=0)
    pq.write_table(kept.set_column(1, "vector", pa.FixedSizeListArray.from_arrays(
        pa.array(rolled.ravel()), rolled.shape[1])), first.run_dir / "error_descriptors.parquet")  # fmt: skip
    inc = validate(ws, "bright@1", "scans@2", config=config)
    full = validate(ws, "bright@1", "scans@2", config=dataclasses.replace(config, reuse=False))
    assert inc.result.n_reused > 0 and inc.result.reuse is not None
    assert inc.result.reuse["n_descriptors_reused"] == 0
    assert inc.result.error_groups == full.result.error_groups


def test_comparing_two_runs_leaves_their_folders_as_they_were(tmp_path: Path) -> None:
    """The comparison writes its own folder: the finished runs' files (and their digests) stay
    untouched, even when an image of theirs can no longer be read."""
    from assay.services.compare_runs import compare_runs
    from assay.services.integrity import verify_run_files

    ws, config = _scans_store(tmp_path, _mislabelled_images)
    a = validate(ws, "bright@1", "scans@1", config=config)
    b = validate(ws, "bright@2", "scans@1", config=config)
    before = {run.run_dir: _digests(run.run_dir) for run in (a, b)}
    victim = next((tmp_path / "v1").glob("*/*.png"))
    victim.rename(victim.with_suffix(".gone"))
    compare_runs(ws, b.result.run_id, a.result.run_id, out=tmp_path / "cmp")
    assert {d: _digests(d) for d in before} == before
    for run in (a, b):
        verify_run_files(ws.catalog.get_run(run.result.run_id))


def test_outputs_and_profiles_of_another_numerics_revision_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to Assay that changes a model's outputs (OpenVINO's precision, 9cb13cc) bumps
    the numerics revision: what runs before it recorded is measured and computed anew, and the
    reason says why."""
    from assay.services import environment

    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile_seconds=0.2)
    with monkeypatch.context() as m:
        m.setattr(environment, "NUMERICS_REVISION", environment.NUMERICS_REVISION - 1)
        validate(ws, "scanner", "cable", config=config)
    again = validate(ws, "scanner", "cable", config=config)
    assert again.result.n_reused == 0 and again.result.reuse is not None
    assert "numerics revision" in again.result.reuse["reason"]
    assert again.result.profile is not None and "reused_from" not in again.result.profile
    third = validate(ws, "scanner", "cable", config=config)  # this revision's run: reused
    assert third.result.n_reused == 400
    assert third.result.profile is not None
    assert third.result.profile["reused_from"]["run_id"] == again.result.run_id


def test_a_profile_needs_a_digested_result_and_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edited result.json of a run that kept no digests is never taken (it could make a
    latency check pass on a number nobody measured); a run whose predictions were deleted since
    still gives its profile, as nothing of the predictions is used."""
    from assay.services import integrity

    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile_seconds=0.2, reuse=False)
    with monkeypatch.context() as m:
        m.setattr(integrity, "KEPT_FILES", ())
        undigested = validate(ws, "scanner", "cable", config=config)
    doc = json.loads((undigested.run_dir / "result.json").read_text())
    doc["profile"]["summary"]["latency_p99_ms"] = 0.0001
    (undigested.run_dir / "result.json").write_text(json.dumps(doc))
    reuse = dataclasses.replace(config, reuse=True)
    measured = validate(ws, "scanner", "cable", config=reuse)
    assert measured.result.profile is not None and "reused_from" not in measured.result.profile
    (measured.run_dir / "predictions.parquet").unlink()
    taken = validate(ws, "scanner", "cable", config=reuse)
    assert taken.result.profile is not None
    assert taken.result.profile["reused_from"]["run_id"] == measured.result.run_id


def test_a_cleared_run_folder_stops_nothing_and_the_measuring_code_is_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old run's folder deleted to free disk is passed over (its profile is simply not
    there to take); a profile measured by other measuring code is measured anew."""
    import shutil

    from assay.services import profile

    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile_seconds=0.2)
    measured = validate(ws, "scanner", "cable", config=config)
    cleared = validate(ws, "scanner", "cable", config=dataclasses.replace(config, reuse=False))
    shutil.rmtree(cleared.run_dir)
    taken = validate(ws, "scanner", "cable", config=config)
    assert taken.result.profile is not None
    assert taken.result.profile["reused_from"]["run_id"] == measured.result.run_id
    monkeypatch.setattr(profile, "PROFILE_REVISION", profile.PROFILE_REVISION + 1)
    anew = validate(ws, "scanner", "cable", config=config)
    assert anew.result.profile is not None and "reused_from" not in anew.result.profile


def test_a_baseline_run_under_other_numerics_runs_again(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline's finished run on this dataset version is taken whole only when running
    it here would give the same answers."""
    from assay.services import environment

    ws, config = store["ws"], store["config"]
    with monkeypatch.context() as m:
        m.setattr(environment, "NUMERICS_REVISION", environment.NUMERICS_REVISION + 1)
        validate(ws, "scanner@1", "cable@1", config=config)  # the baseline, "elsewhere"
    compared = validate(ws, "scanner@2", "cable@1", baseline="scanner@1", config=config)
    assert compared.result.comparison is not None
    assert compared.result.comparison["baseline"]["reused"] is False
    again = validate(ws, "scanner@2", "cable@1", baseline="scanner@1", config=config)
    assert again.result.comparison is not None
    assert again.result.comparison["baseline"]["reused"] is True  # this machine's run now


def test_the_reason_blames_numerics_only_when_they_are_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.services import environment

    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile=False)
    with monkeypatch.context() as m:
        m.setattr(environment, "NUMERICS_REVISION", environment.NUMERICS_REVISION + 1)
        validate(ws, "scanner", "cable", config=config)
    here = validate(ws, "scanner", "cable", config=dataclasses.replace(config, reuse=False))
    (here.run_dir / "predictions.parquet").unlink()  # this machine's run, its outputs gone
    again = validate(ws, "scanner", "cable", config=config)
    assert again.result.reuse is not None and again.result.n_reused == 0
    assert "numerics" not in again.result.reuse["reason"]


def test_a_spark_run_is_reused_only_under_its_executors_numerics(tmp_path: Path) -> None:
    """A review: a Spark run recorded the driver's environment, and a laptop reused its outputs
    on that word, while the model ran on the executors (other runtime versions, processors).
    Each task now says what its machine is; the run is reused where that is this machine, never
    where the executors differed among themselves or said nothing (runs from before)."""
    from assay.services.environment import describe_environment, numerics
    from assay.store.schema import RunRow

    rng = np.random.default_rng(5)
    pq.write_table(pa.table(_rows(rng, 400, 0)), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "t.parquet", id_column="id")
    _model(tmp_path, ws, "scanner", 1)
    config = ValidationConfig(batch_size=64, explore=False, profile=False)
    first = validate(ws, "scanner", "cable", config=dataclasses.replace(config, reuse=False))
    here = numerics(describe_environment())
    cluster = {**here, "cpu": "another processor on the cluster"}

    def ran_on_spark(executors: list[dict[str, Any]] | None) -> None:
        with ws.catalog._session.begin() as s:
            row = s.get(RunRow, first.result.run_id)
            assert row is not None
            row.config = {**row.config, "engine": "spark"}
            row.environment = {
                k: v for k, v in row.environment.items() if k != "spark_executors"
            } | ({} if executors is None else {"spark_executors": executors})

    for executors, reused in (([cluster], 0), (None, 0), ([here, cluster], 0), ([here], 400)):
        ran_on_spark(executors)
        again = validate(ws, "scanner", "cable", config=config)
        assert again.result.n_reused == reused, executors
        assert again.result.reuse is not None
        if not reused:
            assert "another processor" in again.result.reuse["reason"]
        # The reusing run is itself a source next time: keep only the doctored one.
        with ws.catalog._session.begin() as s:
            row = s.get(RunRow, again.result.run_id)
            assert row is not None
            row.status = "failed"
    ws.close()
