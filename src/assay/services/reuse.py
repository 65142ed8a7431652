"""Incremental validation: a model version's recorded outputs for the items an earlier run of it
already answered, taken instead of running the model on them again.

An output is reused when everything it depends on is the same:
- the model version: its file's digest and its spec (one version is both), hence its runtime;
- the device it ran on, and what the runtime's numbers depend on there
  (``environment.numerics``: runtime and decoder versions, architecture and processor, and
  Assay's numerics revision);
- the item's content: its file's digest (images), or its row's digest (tables,
  ``assay.datasets.row_digests``), which leaves the labels out.

A corrected label is judged again on the recorded output; a new or changed item goes through the
model. Only outputs the model gave are reused (finite scores): an item it failed on runs again.
The earlier run's files are hashed against the digests it kept, and its dataset's manifest
against its own, before anything is taken from them.

The answers are joined with this version's items once, into an Arrow file in the dataset's
order that the pass reads memory-mapped by position. The pass still reads and judges every item
in the same batches as a full run, so the accumulator states, and every number after them, are
the same bit for bit; only the model's work (and, for images, the decoding) is skipped.

Limits, each stated in ``result.json`` ``reuse.reason`` when it applies: classification models
with scores only (a detector's boxes and a segmenter's masks are not kept in a form that gives
back the same outputs), the local engine only, and not when the model's embeddings of
misclassified items are collected for error groups (those are not kept for every item). The
join holds the earlier run's scores in memory: about (classes + 3) x 8 bytes per item.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from assay.arrow import as_floats, numbers, string, validity
from assay.core.config import ValidationConfig
from assay.core.records import DatasetVersion, ModelVersion, RunRecord
from assay.core.spec import ModelSpec, TabularInput
from assay.datasets import columns as cols
from assay.services.contents import content_key, item_contents, rehashed_columns
from assay.services.environment import describe_environment, numerics, run_numerics
from assay.services.integrity import verify_manifest, verify_run_files
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema
from assay.store.predictions import score_column

FLAG = "reused"


@dataclass(frozen=True)
class ReusePlan:
    """Where a model's reused outputs come from (``path``: joined with this dataset's items),
    or why none are (``path`` None)."""

    reason: str
    path: Path | None = None
    source: RunRecord | None = None
    source_dataset: str | None = None
    n_available: int = 0  # items of this dataset with a recorded output

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_run": None if self.source is None else self.source.id,
            "from_dataset": self.source_dataset,
            "n_available": self.n_available,
            "reason": self.reason,
        }

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _why_not(mv: ModelVersion, spec: ModelSpec, config: ValidationConfig) -> str | None:
    if not config.reuse:
        return "--no-reuse: every item went through the model"
    if mv.runtime == "recorded":
        return "recorded predictions: no model runs here"
    if spec.task != "classification" or not spec.has_scores:
        return (
            f"outputs are reused for classification models with scores; a {spec.task} model "
            "runs on every item"
        )
    if config.engine != "local":
        return "outputs are reused on the local engine; on Spark every item goes through the model"
    if spec.output.embedding is not None and config.explore:
        return (
            "the model's embeddings of misclassified items (for error groups) are not kept for "
            "every item, so every item went through the model"
        )
    return None


def plan_reuse(
    ws: Workspace,
    mv: ModelVersion,
    spec: ModelSpec,
    dv: DatasetVersion,
    config: ValidationConfig,
) -> ReusePlan:
    """The newest finished run of ``mv`` on a version of ``dv``'s dataset, on the same device,
    joined with ``dv``'s items; raises IntegrityError when that run's files were changed."""
    why = _why_not(mv, spec, config)
    if why is not None:
        return ReusePlan(why)
    key = content_key(dv)
    if key not in manifest_schema(Path(dv.manifest_path)).names:
        return ReusePlan(
            f"{dv.ref} was registered before items had content digests: register it again to "
            "reuse outputs"
        )
    here = numerics(describe_environment())
    elsewhere: RunRecord | None = None
    seen_here = False
    for run in ws.catalog.finished_runs(mv.id):
        source = ws.catalog.get_dataset_by_id(run.dataset_id)
        if source.name != dv.name or str(run.config.get("device", "cpu")) != config.device:
            continue
        if run_numerics(run) != here:
            elsewhere = elsewhere or run
            continue
        unusable = not (Path(run.run_dir) / "predictions.parquet").is_file() or (
            key not in manifest_schema(Path(source.manifest_path)).names
        )
        if unusable:
            seen_here = True  # a run with these numerics was there: numerics are not the reason
            continue
        verify_run_files(run)  # a recorded output edited since: stop, never use it
        verify_manifest(ws, source)
        names = rehashed_columns([source, dv])
        inputs = spec.input.columns if isinstance(spec.input, TabularInput) else ()
        if names is not None and not (names and set(inputs) <= set(names)):
            return ReusePlan(
                f"{dv.ref} and {source.ref} (run {run.id[:12]}) share only the columns "
                f"{', '.join(names[:8]) or '(none)'}, not all of the model's inputs: their rows "
                "cannot be matched, so every item went through the model",
                source=run,
                source_dataset=source.ref,
            )
        contents = item_contents([source, dv])
        old, new = contents[source.id], contents[dv.id]
        if old is None or new is None:  # (both hold digests, checked above)
            continue
        path, n = _join(ws, run, source, dv, spec, (old, new))
        if n == 0:
            path.unlink(missing_ok=True)
            return ReusePlan(
                f"no item of {dv.ref} has the content of an item {mv.ref} answered in run "
                f"{run.id[:12]} ({source.ref})",
                source=run,
                source_dataset=source.ref,
            )
        return ReusePlan(
            f"outputs of run {run.id[:12]} ({mv.ref} on {source.ref}) for items whose content "
            "is unchanged",
            path,
            run,
            source.ref,
            n,
        )
    if elsewhere is not None and not seen_here:
        return ReusePlan(
            f"the earlier runs of {mv.ref} on {dv.name} (the newest: {elsewhere.id[:12]}) ran "
            "with other runtime or decoder versions, another processor, or an earlier Assay "
            "numerics revision: their outputs may differ from this machine's, so every item "
            "went through the model"
        )
    return ReusePlan(f"no earlier finished run of {mv.ref} on {dv.name} to reuse")


def _key_words(column: pa.Array, key: str) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Each item's content as 64-bit words (a row per item), and whether it has one: a
    16-byte row digest, or a file's SHA-256 in hex (64 characters)."""
    valid = validity(column)
    if pa.types.is_fixed_size_binary(column.type):
        width = column.type.byte_width
        filled = column.fill_null(b"\0" * width) if column.null_count else column
        data = filled.buffers()[1]
    else:  # hex digests: every one 64 characters, nulls (missing files) filled to the same width
        width = 64
        filled = pc.fill_null(column, string("0" * width)).cast(pa.binary())
        lengths = pc.binary_length(filled)
        if len(filled) and (pc.min(lengths).as_py() != width or pc.max(lengths).as_py() != width):
            raise ValueError(f"{key} holds a value that is not a 64-character digest")
        data = filled.buffers()[2]
        offsets = np.frombuffer(filled.buffers()[1], np.int32, len(filled) + 1, filled.offset * 4)
        data = data[int(offsets[0]) :] if len(filled) else data
    n = len(column)
    start = filled.offset * width if pa.types.is_fixed_size_binary(column.type) else 0
    raw = np.frombuffer(data, np.uint8, n * width, start)
    return raw.reshape(n, width).view(np.uint64), valid


def _match(old: npt.NDArray[np.uint64], new: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """For each row of ``new``, a row of ``old`` with the same key (-1: none). A version that
    extends another keeps most items where they were, so rows are first compared in place; the
    rest are found by a sort on the first word and an exact check of every word."""
    found = np.full(len(new), -1, np.int64)
    if len(old) == 0:
        return found
    n = min(len(old), len(new))
    in_place = (old[:n] == new[:n]).all(axis=1)
    found[:n][in_place] = np.flatnonzero(in_place)
    rest = np.flatnonzero(found < 0)
    if rest.size == 0:
        return found
    order = np.argsort(old[:, 0], kind="stable")
    first = old[order, 0]
    queries = rest[np.argsort(new[rest, 0])]  # sorted queries walk memory in order
    at = order[np.minimum(np.searchsorted(first, new[queries, 0]), len(old) - 1)]
    same = (old[at] == new[queries]).all(axis=1)
    found[queries[same]] = at[same]
    return found


def _join(
    ws: Workspace,
    run: RunRecord,
    source: DatasetVersion,
    dv: DatasetVersion,
    spec: ModelSpec,
    contents: tuple[pa.Array, pa.Array],
) -> tuple[Path, int]:
    """Write the recorded scores of ``run`` in ``dv``'s order (a flag per item, 0 where none),
    matched by the items' ``contents`` (``source``'s, ``dv``'s; see ``assay.services.contents``);
    returns the file and how many items have one."""
    scores = [score_column(label) for label in spec.labels]
    recorded = pq.ParquetFile(Path(run.run_dir) / "predictions.parquet").read(
        columns=["item_id", *scores]
    )
    source_ids = pq.ParquetFile(source.manifest_path).read(columns=[cols.ITEM_ID])
    key = content_key(dv)
    old_keys, old_valid = _key_words(contents[0], key)
    if not recorded.column("item_id").equals(source_ids.column(cols.ITEM_ID)):
        # Not in the manifest's order (every engine writes it so): line them up by id.
        rows = pc.index_in(source_ids.column(cols.ITEM_ID), value_set=recorded.column("item_id"))
        old_valid &= validity(rows)
        recorded = recorded.take(pc.fill_null(rows, 0))
    values = np.column_stack([as_floats(recorded.column(c)) for c in scores]).astype(
        np.float64, copy=False
    )
    answered = old_valid & np.isfinite(values).all(axis=1)
    new_keys, new_valid = _key_words(contents[1], key)
    found = _match(old_keys[answered], new_keys)
    hit = (found >= 0) & new_valid
    taken = np.zeros((len(new_keys), len(scores)), np.float64)
    taken[hit] = values[answered][found[hit]]
    table = pa.Table.from_arrays(
        [numbers(hit.astype(np.uint8), pa.uint8())]
        + [numbers(taken[:, k], pa.float64()) for k in range(len(scores))],
        names=[FLAG, *scores],
    )
    folder = ws.home / "cache" / "reuse"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, suffix=".arrow")
    os.close(fd)
    with pa.OSFile(name, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))
    return Path(name), int(hit.sum())


class ReusedScores:
    """The ``ReusedOutputs`` of a joined file: class scores by position, memory-mapped."""

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        table = ipc.open_file(pa.memory_map(str(path))).read_all()
        flags = table.column(FLAG).combine_chunks()
        self._flags: npt.NDArray[np.uint8] = np.frombuffer(
            flags.buffers()[1], np.uint8, len(flags), flags.offset
        )
        self._scores = [as_floats(table.column(score_column(label))) for label in labels]

    def has(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return self._flags[positions].astype(bool)

    def take(
        self, positions: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        hit = self.has(positions)
        at = positions[hit]
        return hit, np.column_stack([c[at] for c in self._scores]).astype(np.float64, copy=False)
