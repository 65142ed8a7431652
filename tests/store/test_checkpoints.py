"""Checkpoints: every accumulator's state comes back exactly, and a crafted or altered checkpoint
is refused with one line instead of being loaded (never unpickled)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.batch import ScoredBatch
from assay.core.errors import InputError
from assay.core.failures import FailureLog
from assay.store.checkpoints import (
    Checkpoint,
    TaskCheckpoint,
    clear_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from assay.store.parquet import PartedWriter, part_dir
from tests.core.test_accumulator_laws import ACCUMULATORS, assert_same, batches


def _task(states: list[Any], failures: FailureLog | None = None) -> TaskCheckpoint:
    return TaskCheckpoint(
        "r" * 32, states, failures or FailureLog(), 7, {"read_s": 0.25}, ["ab" * 32] * 2, []
    )


@settings(max_examples=25, deadline=None)
@given(parts=st.lists(batches(), min_size=1, max_size=4), more=batches())
def test_every_state_survives_a_checkpoint_exactly(
    tmp_path_factory: pytest.TempPathFactory, parts: list[ScoredBatch], more: ScoredBatch
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    states = [acc.empty() for acc in ACCUMULATORS]
    for batch in parts:
        states = [acc.update(s, batch) for acc, s in zip(ACCUMULATORS, states, strict=True)]
    failures = FailureLog(keep=2)
    for i in range(3):
        failures.record(f"id-{i}", "no expert label")
    name, digest = save_checkpoint(run_dir, Checkpoint(123, 64, [_task(states, failures)]))
    loaded = load_checkpoint(run_dir, {name: digest})
    assert loaded is not None and loaded.offset == 123 and loaded.batch_rows == 64
    (task,) = loaded.tasks
    assert task.failures == failures and task.timings == {"read_s": 0.25}
    for acc, before, after in zip(ACCUMULATORS, states, task.states, strict=True):
        assert_same(acc, before, after)
        # ... and the pass continues from it as from the state in memory.
        assert_same(acc, acc.update(before, more), acc.update(after, more))


def _doc(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "checkpoint-8.json").read_text())


def _saved(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A run folder with one checkpoint, and the digests the catalog recorded of it."""
    name, digest = save_checkpoint(tmp_path, Checkpoint(8, 8, [_task([np.arange(4)])]))
    return tmp_path, {name: digest}


def _rewritten(run_dir: Path, doc: dict[str, Any]) -> dict[str, str]:
    """The checkpoint replaced by ``doc``, and recorded as if the catalog had been altered
    too: the checks below the catalog's digest must hold on their own."""
    import hashlib

    data = json.dumps(doc).encode()
    (run_dir / "checkpoint-8.json").write_bytes(data)
    return {"checkpoint-8.json": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize(
    "name",
    ["os:system", "subprocess:Popen", "builtins:eval", "assay.cli.main:main", "assay.core.x:Y.z"],
)
def test_a_checkpoint_naming_a_foreign_class_is_refused(tmp_path: Path, name: str) -> None:
    run_dir, _ = _saved(tmp_path)
    doc = _doc(run_dir)
    doc["tasks"][0]["states"] = [{"c": name, "v": {"command": "touch /tmp/pwned"}}]
    recorded = _rewritten(run_dir, doc)
    with pytest.raises(InputError, match=r"cannot be used .*not a state class of Assay"):
        load_checkpoint(run_dir, recorded)


def test_altered_arrays_are_refused(tmp_path: Path) -> None:
    run_dir, recorded = _saved(tmp_path)
    (npz,) = run_dir.glob("checkpoint-*.npz")
    data = bytearray(npz.read_bytes())
    data[-5] ^= 1
    npz.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match its SHA-256"):
        load_checkpoint(run_dir, recorded)


def test_a_checkpoint_edited_since_the_catalog_recorded_it_is_refused(tmp_path: Path) -> None:
    """From a review: the checkpoint vouched for itself (its arrays' digest inside it), so an
    edited one was resumed from. The catalog's digest of it is checked first."""
    run_dir, recorded = _saved(tmp_path)
    doc = _doc(run_dir)
    doc["tasks"][0]["n_items"] = 999
    (run_dir / "checkpoint-8.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="has changed since it was written"):
        load_checkpoint(run_dir, recorded)
    assert load_checkpoint(run_dir, {}) is None  # none recorded: the run starts from item 0


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    """An object array (which only pickle can load) with a matching digest is still refused."""
    import hashlib

    run_dir, _ = _saved(tmp_path)
    buffer = io.BytesIO()
    np.savez(buffer, a0=np.array([{"x": 1}], dtype=object))
    (npz,) = run_dir.glob("checkpoint-*.npz")
    npz.write_bytes(buffer.getvalue())
    doc = _doc(run_dir)
    doc["arrays_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    recorded = _rewritten(run_dir, doc)
    with pytest.raises(InputError, match="cannot be used"):
        load_checkpoint(run_dir, recorded)


def test_a_torn_checkpoint_write_leaves_the_previous_one(tmp_path: Path) -> None:
    """A newer checkpoint written, the catalog not yet told: the recorded one holds."""
    run_dir, recorded = _saved(tmp_path)
    (run_dir / "checkpoint-16.npz").write_bytes(b"half a file")
    (run_dir / "checkpoint-16.json").write_bytes(b"{}")
    loaded = load_checkpoint(run_dir, recorded)
    assert loaded is not None and loaded.offset == 8
    clear_checkpoint(run_dir)
    assert load_checkpoint(run_dir, {}) is None and list(run_dir.iterdir()) == []


def test_a_garbled_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    import hashlib

    run_dir, _ = _saved(tmp_path)
    (run_dir / "checkpoint-8.json").write_text("{not json")
    recorded = {"checkpoint-8.json": hashlib.sha256(b"{not json").hexdigest()}
    with pytest.raises(InputError, match=r"checkpoint in .* cannot be used"):
        load_checkpoint(run_dir, recorded)


def _table(lo: int, hi: int) -> pa.Table:
    return pa.table({"item_id": [str(i) for i in range(lo, hi)], "x": list(range(lo, hi))})


def test_parts_are_committed_reopened_and_joined(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    w = PartedWriter(path, unique=("item_id",))
    w.write_table(_table(0, 3))
    (first,) = w.commit()
    w.write_table(_table(3, 5))
    assert w.commit()[0] == first and len(w.commit()) == 2
    w.write_table(_table(5, 9))  # written after the last checkpoint: lost by the kill
    del w  # a killed process: no close, no abort
    assert sorted(p.name for p in part_dir(path).iterdir()) == [
        "00000.parquet",
        "00001.parquet",
        "00002.parquet.partial",
    ]
    # The checkpoint counted one part: the second and the half-written third are dropped.
    w = PartedWriter(path, unique=("item_id",), committed=[first])
    assert [p.name for p in part_dir(path).iterdir()] == ["00000.parquet"]
    w.write_table(_table(3, 9))
    w.close()
    assert pq.read_table(path).equals(_table(0, 9))
    assert not part_dir(path).exists()


def test_a_missing_committed_part_stops_the_resume(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    part_dir(path).mkdir()
    with pytest.raises(FileNotFoundError, match="of a checkpoint is missing"):
        PartedWriter(path, committed=["00" * 32])


def test_a_committed_part_edited_since_stops_the_resume(tmp_path: Path) -> None:
    """From a review: parts were reopened unread, so rows edited while a run was stopped (every
    item made right) were joined into its predictions and passed. Each part is checked against
    the digest its checkpoint recorded."""
    path = tmp_path / "p.parquet"
    w = PartedWriter(path, unique=("item_id",))
    w.write_table(_table(0, 3))
    digests = w.commit()
    del w
    pq.write_table(_table(10, 13), part_dir(path) / "00000.parquet")
    with pytest.raises(InputError, match="has changed since it was committed"):
        PartedWriter(path, committed=digests)


def test_abort_keeps_committed_parts_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    w = PartedWriter(path)
    w.write_table(_table(0, 2))
    digests = w.commit()
    w.write_table(_table(2, 4))
    w.abort(keep_committed=True)
    assert [p.name for p in part_dir(path).iterdir()] == ["00000.parquet"]
    w = PartedWriter(path, committed=digests)
    w.abort(keep_committed=False)
    assert not part_dir(path).exists() and not path.exists()
