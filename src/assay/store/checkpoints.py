"""Checkpoints of a running pass, so that ``assay validate --resume`` continues where it stopped.

A checkpoint is taken at a batch boundary, after every prediction written so far was committed as
a part (``predictions.parquet.parts/``): the accumulator states, failure logs and item counts of
each model of the pass, and how many parts of each file they account for. Resuming reopens the
files at that count (later parts are deleted) and the engine continues from the states, so the
result equals an uninterrupted run's.

The states are written as JSON plus one ``.npz`` of arrays, never pickled: a checkpoint is read
back from disk, and a file that runs code when loaded is what a release gate must not accept. Only
dataclasses of ``assay.core`` are rebuilt. The arrays file is named by its offset and its SHA-256
is in ``checkpoint.json``, which is replaced last: a kill between the two writes leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.errors import InputError
from assay.core.failures import FailureLog
from assay.store.files import write_atomically

CHECKPOINT = "checkpoint.json"
INVOCATION = "invocation.json"
FORMAT = 1
_TRUSTED_PREFIX = "assay.core."


@dataclass(frozen=True)
class TaskCheckpoint:
    """One model of the pass at the checkpoint."""

    run_id: str
    states: list[Any]
    failures: FailureLog
    n_items: int
    timings: dict[str, float]
    prediction_parts: int
    embedding_parts: int
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


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically; older arrays files are removed after it is in place."""
    arrays: list[np.ndarray] = []
    tasks = [
        {f.name: _encode(getattr(t, f.name), arrays) for f in dataclasses.fields(t)}
        for t in checkpoint.tasks
    ]
    buffer = io.BytesIO()
    np.savez(buffer, **{f"a{i}": a for i, a in enumerate(arrays)})  # type: ignore[arg-type]
    data = buffer.getvalue()
    name = f"checkpoint-{checkpoint.offset}.npz"
    write_atomically(run_dir / name, data)
    doc = {
        "format": FORMAT,
        "offset": checkpoint.offset,
        "batch_rows": checkpoint.batch_rows,
        "arrays": name,
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
        "tasks": tasks,
    }
    write_atomically(run_dir / CHECKPOINT, json.dumps(doc).encode())
    for old in run_dir.glob("checkpoint-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run's last checkpoint (None: it took none); InputError when it was altered."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
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
        raise InputError(f"the checkpoint in {run_dir.name} cannot be used ({exc})") from exc


def clear_checkpoint(run_dir: Path) -> None:
    """Remove a finished run's checkpoint files."""
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    for old in run_dir.glob("checkpoint-*.npz"):
        old.unlink(missing_ok=True)


def write_invocation(run_dir: Path, invocation: dict[str, Any]) -> None:
    """What ``validate`` was asked, so that ``--resume`` can ask it again."""
    write_atomically(run_dir / INVOCATION, json.dumps(invocation, indent=2).encode())


def read_invocation(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / INVOCATION
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name} of run {run_dir.name} cannot be read ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path.name} of run {run_dir.name} is not a mapping")
    return doc
