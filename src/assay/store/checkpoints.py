"""Checkpoints of a running pass, so that ``assay validate --resume`` continues where it stopped.

A checkpoint is taken at a batch boundary, after every prediction written so far was committed as
a part (``predictions.parquet.parts/``): the accumulator states, failure logs and item counts of
each model of the pass, and how many parts of each file they account for. Resuming reopens the
files at that count (later parts are deleted) and the engine continues from the states, so the
result equals an uninterrupted run's.

The states are written as JSON plus one ``.npz`` of arrays, never pickled: a checkpoint is read
back from disk, and a file that runs code when loaded is what a release gate must not accept. Only
dataclasses of ``assay.core`` are rebuilt.

Nothing in the run folder vouches for itself. ``checkpoint-<offset>.json`` holds the SHA-256 of
its arrays file and of every committed part; the catalog records the digest of that document
(and of ``invocation.json``) before older checkpoints are removed, so a kill at any point leaves
the recorded checkpoint whole, and a part, a state or an invocation edited while the run was
stopped is refused on resume instead of being joined into a result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.errors import InputError
from assay.core.failures import FailureLog
from assay.store.files import write_atomically

INVOCATION = "invocation.json"
FORMAT = 2  # 2: parts recorded by digest, the document by the catalog
_TRUSTED_PREFIX = "assay.core."


@dataclass(frozen=True)
class TaskCheckpoint:
    """One model of the pass at the checkpoint."""

    run_id: str
    states: list[Any]
    failures: FailureLog
    n_items: int
    timings: dict[str, float]
    # The SHA-256 of each committed part of predictions.parquet and error_embeddings.parquet.
    prediction_parts: list[str]
    embedding_parts: list[str]
    # Items whose output was reused so far, and items the model ran on (older checkpoints: {}).
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """A pass at a batch boundary: ``offset`` items of the manifest are accounted for."""

    offset: int
    batch_rows: int
    tasks: list[TaskCheckpoint]


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    """Plain data as tagged JSON; arrays go to ``arrays`` and are referred to by index."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return {"f": float(value).hex()}  # exact, NaN and infinities included
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays cannot be checkpointed")
        arrays.append(value)
        return {"a": len(arrays) - 1}
    if isinstance(value, tuple):
        return {"t": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"d": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {
            "c": f"{cls.__module__}:{cls.__qualname__}",
            "v": {
                f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)
            },
        }
    raise TypeError(f"cannot checkpoint a {type(value).__name__}")


def _dataclass(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith(_TRUSTED_PREFIX) or "." in qualname:
        raise ValueError(f"a checkpoint names {name!r}, which is not a state class of Assay")
    cls = getattr(importlib.import_module(module), qualname, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"a checkpoint names {name!r}, which is not a state class of Assay")
    return cls


def _decode(value: Any, arrays: Any) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, body), *_ = value.items()
        if tag == "f":
            return float.fromhex(body)
        if tag == "a":
            return arrays[f"a{int(body)}"]
        if tag == "t":
            return tuple(_decode(v, arrays) for v in body)
        if tag == "d":
            return {_decode(k, arrays): _decode(v, arrays) for k, v in body}
    if isinstance(value, dict) and set(value) == {"c", "v"}:
        cls = _dataclass(str(value["c"]))
        return cls(**{k: _decode(v, arrays) for k, v in value["v"].items()})
    raise ValueError(f"unreadable checkpoint value {str(value)[:80]!r}")


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> tuple[str, str]:
    """Write ``checkpoint-<offset>.json`` and its arrays; returns its name and SHA-256, for the
    catalog to record before ``prune_checkpoints`` removes the ones before it."""
    arrays: list[np.ndarray] = []
    tasks = [
        {f.name: _encode(getattr(t, f.name), arrays) for f in dataclasses.fields(t)}
        for t in checkpoint.tasks
    ]
    buffer = io.BytesIO()
    np.savez(buffer, **{f"a{i}": a for i, a in enumerate(arrays)})  # type: ignore[arg-type]
    data = buffer.getvalue()
    arrays_name = f"checkpoint-{checkpoint.offset}.npz"
    write_atomically(run_dir / arrays_name, data)
    doc = {
        "format": FORMAT,
        "offset": checkpoint.offset,
        "batch_rows": checkpoint.batch_rows,
        "arrays": arrays_name,
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
        "tasks": tasks,
    }
    encoded = json.dumps(doc).encode()
    name = f"checkpoint-{checkpoint.offset}.json"
    write_atomically(run_dir / name, encoded)
    return name, hashlib.sha256(encoded).hexdigest()


def prune_checkpoints(run_dir: Path, keep: str) -> None:
    """Remove every checkpoint but ``keep`` (recorded by the catalog) and its arrays."""
    arrays = keep.removesuffix(".json") + ".npz"
    for old in [*run_dir.glob("checkpoint-*.json"), *run_dir.glob("checkpoint-*.npz")]:
        if old.name not in (keep, arrays):
            old.unlink(missing_ok=True)
    (run_dir / "checkpoint.json").unlink(missing_ok=True)  # an older Assay's


def recorded_checkpoint(recorded: Mapping[str, str]) -> str | None:
    """The name of the checkpoint the catalog recorded for a run (None: it recorded none)."""
    names = [k for k in recorded if k.startswith("checkpoint-") and k.endswith(".json")]
    return names[-1] if names else None


def load_checkpoint(run_dir: Path, recorded: Mapping[str, str]) -> Checkpoint | None:
    """The run's last checkpoint, as the catalog recorded it (``recorded``: the run's digests;
    None: it took none, or none that was recorded); InputError when it was altered."""
    name = recorded_checkpoint(recorded)
    if name is None:
        return None
    path = run_dir / name
    try:
        encoded = path.read_bytes()
        if hashlib.sha256(encoded).hexdigest() != recorded[name]:
            raise ValueError(f"{name} has changed since it was written")
        doc = json.loads(encoded)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
        arrays_path = run_dir / Path(str(doc["arrays"])).name
        data = arrays_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != doc["arrays_sha256"]:
            raise ValueError(f"{arrays_path.name} does not match its SHA-256")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            loaded = {k: arrays[k] for k in arrays.files}
        tasks = [
            TaskCheckpoint(**{k: _decode(v, loaded) for k, v in t.items()}) for t in doc["tasks"]
        ]
        if not all(isinstance(t.failures, FailureLog) for t in tasks):
            raise ValueError("a task's failure log is not one")
        return Checkpoint(int(doc["offset"]), int(doc["batch_rows"]), tasks)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"the checkpoint in {run_dir.name} cannot be used ({exc}): start the run again"
        ) from exc


def clear_checkpoint(run_dir: Path) -> None:
    """Remove a finished run's checkpoint files."""
    for old in [*run_dir.glob("checkpoint-*.json"), *run_dir.glob("checkpoint-*.npz")]:
        old.unlink(missing_ok=True)
    (run_dir / "checkpoint.json").unlink(missing_ok=True)


def write_invocation(run_dir: Path, invocation: dict[str, Any]) -> str:
    """What ``validate`` was asked, so that ``--resume`` can ask it again; returns its SHA-256,
    for the catalog to record."""
    encoded = json.dumps(invocation, indent=2).encode()
    write_atomically(run_dir / INVOCATION, encoded)
    return hashlib.sha256(encoded).hexdigest()


def read_invocation(run_dir: Path, recorded: Mapping[str, str]) -> dict[str, Any] | None:
    """What the run was asked (None: it kept no record of it the catalog vouches for, as runs
    of an older Assay); InputError when the file changed since it was written."""
    path = run_dir / INVOCATION
    expected = recorded.get(INVOCATION)
    if expected is None or not path.exists():
        return None
    try:
        encoded = path.read_bytes()
        if hashlib.sha256(encoded).hexdigest() != expected:
            raise ValueError("it has changed since it was written")
        doc = json.loads(encoded)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name} of run {run_dir.name} cannot be used ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path.name} of run {run_dir.name} is not a mapping")
    return doc
