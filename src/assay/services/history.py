"""Item history: how each item of a dataset fared under every model version validated on it.

The history is assembled from what the catalog already keeps: for each model version, its newest
finished run on the newest version of the dataset it ran on, and that run's predictions file
(hashed against the digest the run kept, once per process). Nothing is copied, so the history
can never disagree with the runs it shows; items are matched by id across dataset versions, and
every version's answer is judged against one label per item, the newest dataset version's (so a
corrected label is not a regression of the version that ran before the correction).

Columns are model versions in the order they were registered; the candidate is the newest
unless named. See ``assay.core.item_history`` for what is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.core import item_history as ih
from assay.core.errors import InputError, did_you_mean
from assay.core.records import DatasetVersion, ModelVersion, RunQuery, RunRecord
from assay.datasets import columns as cols
from assay.services import run_tables
from assay.services.contents import content_key, item_contents, rehashed_columns
from assay.services.datasets import get_dataset
from assay.services.integrity import verify_manifest
from assay.services.models import get_model
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema

COLUMNS = ["item_id", "label", "predicted", "correct"]
LIMIT = 50


@dataclass(frozen=True)
class Version:
    """One column of the history: a model version and the run that stands for it."""

    model: str
    model_id: int
    run_id: str
    dataset: str
    finished_at: str
    n_judged: int
    n_right: int
    # Items this version's run held with other content than the history's dataset version.
    n_other_content: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "run_id": self.run_id,
            "dataset": self.dataset,
            "finished_at": self.finished_at,
            "n_judged": self.n_judged,
            "n_right": self.n_right,
            "n_other_content": self.n_other_content,
            "accuracy": self.n_right / self.n_judged if self.n_judged else None,
        }


@dataclass
class ItemHistory:
    """The outcome matrix of a dataset's items (rows) under its model versions (columns)."""

    dataset: str
    versions: list[Version]
    candidate: int
    item_ids: pa.Array
    labels: pa.Array
    outcomes: ih.Outcomes
    predicted: list[pa.Array]  # per version, aligned with item_ids (null where absent)
    # Model versions whose runs on the dataset judged no item, left out of the matrix.
    left_out: list[str] = field(default_factory=list)

    def masks(self) -> dict[str, ih.Mask]:
        """The item lists the history reports, by name."""
        return {
            "broken": ih.broken_by(self.outcomes, self.candidate),
            # One version's errors are no evidence against a label: two versions at least.
            "never_right": ih.never_right(self.outcomes, 2),
            "flip_flop": ih.flips(self.outcomes) >= 2,
        }

    def rows(self, mask: ih.Mask, limit: int = LIMIT, offset: int = 0) -> list[dict[str, Any]]:
        """The items of ``mask`` (in item order), each with its outcome and answer per version
        and the run to open it in (the candidate's when it holds the item)."""
        at = np.flatnonzero(mask)[offset : offset + limit]
        out = []
        for i in at.tolist():
            holding = [j for j in range(len(self.versions)) if self.outcomes[i, j] != ih.ABSENT]
            opened = self.candidate if self.candidate in holding else holding[-1]
            out.append(
                {
                    "item_id": self.item_ids[i].as_py(),
                    "label": self.labels[i].as_py(),
                    "outcomes": [ih.OUTCOME_NAMES[int(v)] for v in self.outcomes[i]],
                    "predicted": [p[i].as_py() for p in self.predicted],
                    "run_id": self.versions[opened].run_id,
                }
            )
        return out

    def summary(self, limit: int = LIMIT, confidence: float = 0.95) -> dict[str, Any]:
        masks = self.masks()
        churn = [
            {
                "before": self.versions[j - 1].model,
                "after": self.versions[j].model,
                **ih.churn(self.outcomes[:, j - 1], self.outcomes[:, j], confidence).to_dict(),
            }
            for j in range(1, len(self.versions))
        ]
        return {
            "dataset": self.dataset,
            "n_items": len(self.item_ids),
            "versions": [v.to_dict() for v in self.versions],
            "candidate": self.versions[self.candidate].model,
            "left_out": [
                {"model": ref, "reason": "its runs on this dataset judged no item"}
                for ref in self.left_out
            ],
            "confidence": confidence,
            **{
                name: {"n": int(mask.sum()), "items": self.rows(mask, limit)}
                for name, mask in masks.items()
            },
            "churn": churn,
        }

    def to_table(self) -> pa.Table:
        """The whole matrix: ``item_id``, ``label``, then ``outcome:<model>`` and
        ``predicted:<model>`` per version (history.parquet)."""
        names = {ih.RIGHT: "right", ih.WRONG: "wrong", ih.NOT_JUDGED: "not judged"}
        columns: dict[str, Any] = {"item_id": self.item_ids, "label": self.labels}
        for j, v in enumerate(self.versions):
            codes = self.outcomes[:, j]
            text = np.empty(len(codes), object)
            for code, name in names.items():
                text[codes == code] = name
            columns[f"outcome:{v.model}"] = pa.array(text.tolist(), pa.string())
            columns[f"predicted:{v.model}"] = self.predicted[j]
        return pa.table(columns)


def _runs_on(ws: Workspace, dataset: str) -> list[RunRecord]:
    runs: list[RunRecord] = []
    while True:
        page, total = ws.catalog.query_runs(
            RunQuery(dataset=dataset, status="finished", offset=len(runs), limit=500)
        )
        runs += page
        if not page or len(runs) >= total:
            return runs


def _judged_nothing(run: RunRecord) -> bool:
    return run.n_items is not None and run.n_failed is not None and run.n_failed >= run.n_items


def item_history(
    ws: Workspace,
    dataset: str,
    model: str | None = None,
    candidate: str | None = None,
    labels_from: DatasetVersion | None = None,
) -> ItemHistory:
    """The history of ``dataset`` (a name: every version) under every model version (or those
    named ``model``) with a finished run on it; ``candidate`` (NAME@N) is the column the broken
    items are counted for (default: the newest version). Answers are judged against the labels
    of ``labels_from`` (default: the dataset's newest version, with a run on it or not)."""
    if "@" in dataset:
        raise InputError(f"history covers every version of a dataset: give its name, not {dataset}")
    get_dataset(ws, dataset)  # a name that is no dataset says so (NotFoundError), first
    runs = _runs_on(ws, dataset)
    # A run that judged no item (every output NaN, every item failed) says nothing of any item:
    # as a column it would be the candidate of nothing, every item 'not judged'.
    blank = {r.model_id for r in runs if _judged_nothing(r)}
    runs = [r for r in runs if not _judged_nothing(r)]
    chosen: dict[int, tuple[int, RunRecord]] = {}
    for run in runs:  # the newest dataset version each model ran on, then its newest run
        number = ws.catalog.get_dataset_by_id(run.dataset_id).number
        best = chosen.get(run.model_id)
        key = (number, run.finished_at)
        if best is None or key > (best[0], best[1].finished_at):
            chosen[run.model_id] = (number, run)
    models = {mid: ws.catalog.get_model_by_id(mid) for mid in chosen}
    if model is not None:
        names = sorted({m.name for m in models.values()})
        if model not in names:
            raise InputError(
                f"no model named {model!r} has a finished run on {dataset}"
                + did_you_mean(model, names)
            )
        models = {k: m for k, m in models.items() if m.name == model}
    left_out = sorted(
        ws.catalog.get_model_by_id(mid).ref
        for mid in blank - set(chosen)
        if model is None or ws.catalog.get_model_by_id(mid).name == model
    )
    if not models:
        why = f" ({', '.join(left_out)}: no item judged)" if left_out else ""
        raise InputError(
            f"no model has a finished run that judged items on dataset {dataset!r}{why}: "
            "validate one first"
        )
    order = sorted(models, key=lambda k: (models[k].created_at, k))
    refs = [models[k].ref for k in order]
    cand = len(order) - 1
    if candidate is not None:
        wanted = get_model(ws, candidate).ref
        if wanted not in refs:
            raise InputError(
                f"{candidate} has no finished run that judged items on {dataset}; versions "
                "with one: " + ", ".join(refs)
            )
        cand = refs.index(wanted)
    source = labels_from
    if source is None:  # (a version given is one its caller checked already)
        source = get_dataset(ws, dataset)
        verify_manifest(ws, source)
    tables = []
    for k in order:
        run = chosen[k][1]
        run_tables.verified(run)
        tables.append(run_tables.columns(Path(run.run_dir) / "predictions.parquet", COLUMNS))
    # Every item any version saw, the candidate's first, in its order. (Chunks, not the
    # chunked columns: pa.chunked_array walks those item by item, 1.1 s for a million.)
    columns = [tables[cand].column("item_id")]
    columns += [t.column("item_id") for j, t in enumerate(tables) if j != cand]
    first = columns[0].combine_chunks().cast(pa.string())
    if all(_same(first, c) for c in columns[1:]):  # one dataset version for all: no union
        ids = first
    else:
        ids = pc.unique(
            pa.chunked_array([a.cast(pa.string()) for c in columns for a in c.chunks], pa.string())
        )
    n = len(ids)
    outcomes = np.full((n, len(order)), ih.ABSENT, np.int8)
    predicted: list[pa.Array] = []
    judged_by: list[np.ndarray] = []
    held_by: list[np.ndarray] = []
    label_by: list[pa.Array] = []
    for table in tables:
        held, rows = _positions(ids, table.column("item_id"))
        correct = table.column("correct").combine_chunks().take(rows)
        judged_by.append(held & np.asarray(correct.is_valid().to_numpy(zero_copy_only=False), bool))
        answer = table.column("predicted").combine_chunks().take(rows).cast(pa.string())
        predicted.append(pc.if_else(pa.array(~held), pa.nulls(n, pa.string()), answer))
        label_by.append(table.column("label").combine_chunks().take(rows).cast(pa.string()))
        held_by.append(held)
    # The item a row stands for is the content the candidate judged (else the newest dataset
    # version's a run judged). A version that ran on other content under the same id (a row's
    # readings replaced, rows numbered anew) answered another item: its answer stays out, where
    # a review found 125 of 136 items 'broken by the candidate' to be replaced rows.
    by_number = sorted(range(len(order)), key=lambda j: chosen[order[j]][0])
    version_of = [chosen[k][1].dataset_id for k in order]
    dataset_versions = {v: ws.catalog.get_dataset_by_id(v) for v in version_of}
    same = _Contents(dataset_versions | {source.id: source}, ids)
    # Per item, the dataset version whose content it stands for (-1: none with digests).
    reference = np.full(n, -1, np.int64)
    for j in [*by_number, cand]:
        if same.has_digests(version_of[j]):
            reference = np.where(held_by[j], version_of[j], reference)
    # What each version's model read: two versions are compared on the columns they share
    # only where those hold it (one shared metadata column made every row 'the same item').
    read = [_inputs(models[k]) for k in order]
    read_on: dict[int, set[str]] = {}
    for j, v in enumerate(version_of):
        read_on.setdefault(v, set()).update(read[j])
    other = [
        ~same.as_reference(v, reference, unknown=True, inputs=read[j])
        for j, v in enumerate(version_of)
    ]
    # Every version is judged against one label per item: the newest dataset version's that
    # holds the item's content (a label corrected in version 2 would otherwise make version 1's
    # answer look right and version 2's look wrong, a regression that is only a correction).
    labels: pa.Array = pa.nulls(n, pa.string())
    for j in by_number:
        labels = pc.if_else(pa.array(held_by[j] & ~other[j]), label_by[j], labels)
    # The labels of the version asked for override the runs' own, for the items it holds with
    # the same content: a correction registered after the last run counts at once, while rows
    # numbered anew (other items under the same row ids) change nothing.
    held, label = _manifest_labels(source, ids)
    if same.has_digests(source.id):
        alike = same.as_reference(source.id, reference, unknown=False, inputs=read_on)
        labels = pc.if_else(pa.array(held & alike), label, labels)
    has_label = np.asarray(labels.is_valid().to_numpy(zero_copy_only=False), bool)
    versions = []
    for j, k in enumerate(order):
        run = chosen[k][1]
        mine = held_by[j] & ~other[j]
        predicted[j] = pc.if_else(pa.array(mine), predicted[j], pa.nulls(n, pa.string()))
        same = pc.fill_null(pc.equal(predicted[j], labels), False)
        right = np.asarray(same.to_numpy(zero_copy_only=False), bool)
        judged = judged_by[j] & has_label & mine
        code = np.where(judged, np.where(right, ih.RIGHT, ih.WRONG), ih.NOT_JUDGED)
        outcomes[:, j] = np.where(mine, code, ih.ABSENT)
        versions.append(
            Version(
                model=models[k].ref,
                model_id=k,
                run_id=run.id,
                dataset=ws.catalog.get_dataset_by_id(run.dataset_id).ref,
                finished_at=run.finished_at.isoformat() if run.finished_at else "",
                n_judged=int(judged.sum()),
                n_right=int((judged & right).sum()),
                n_other_content=int((held_by[j] & other[j]).sum()),
            )
        )
    return ItemHistory(dataset, versions, cand, ids, labels, outcomes, predicted, left_out)


def _same(a: pa.Array, b: pa.ChunkedArray | pa.Array) -> bool:
    """Whether ``b`` holds exactly the ids of ``a``, in its order (a memory compare)."""
    if len(a) != len(b):
        return False
    whole = b.combine_chunks() if isinstance(b, pa.ChunkedArray) else b
    return bool(whole.cast(pa.string()).equals(a))


def _positions(ids: pa.Array, values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Which of ``ids`` are in ``values``, and where (0 where not): an index lookup, or none
    when ``values`` are ``ids`` in the same order (runs and manifests of one dataset version
    keep the item order; a million lookups cost 0.3 s each)."""
    if _same(ids, values):
        return np.ones(len(ids), bool), pa.array(np.arange(len(ids), dtype=np.int64))
    whole = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    at = pc.index_in(ids, value_set=whole.cast(pa.string()))
    held = np.asarray(at.is_valid().to_numpy(zero_copy_only=False), bool)
    rows = pa.array(np.asarray(at.fill_null(0).to_numpy(zero_copy_only=False), np.int64))
    return held, rows


def _manifest_labels(dv: DatasetVersion, ids: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Which of ``ids`` ``dv`` holds, and their reference labels there (null: none, or
    disputed by the experts)."""
    names = manifest_schema(Path(dv.manifest_path)).names
    wanted = [cols.ITEM_ID, cols.LABEL, *([cols.DISPUTED] if cols.DISPUTED in names else [])]
    table = pq.read_table(dv.manifest_path, columns=wanted)
    held, rows = _positions(ids, table.column(cols.ITEM_ID))
    label = table.column(cols.LABEL).combine_chunks().cast(pa.string()).take(rows)
    if cols.DISPUTED in names:
        disputed = table.column(cols.DISPUTED).combine_chunks().take(rows)
        label = pc.if_else(pc.fill_null(disputed, False), pa.nulls(len(ids), pa.string()), label)
    return held, label


def _inputs(model: ModelVersion) -> set[str]:
    """The table columns a model version reads (none for images)."""
    spec = model.spec.get("input") or {}
    return {str(c) for c in spec.get("columns") or ()} if spec.get("kind") == "tabular" else set()


class _Contents:
    """Whether items hold the same content in two dataset versions, compared two versions at
    a time (``assay.services.contents``): compared across all the versions at once, one old
    version with fewer columns narrowed every comparison to the columns it had, and one that
    shared none made every version's rows 'the same' (a review: 15 replaced rows 'broken by
    the candidate', corrections ignored)."""

    def __init__(self, versions: dict[int, DatasetVersion], ids: pa.Array) -> None:
        self.versions, self.ids = versions, ids
        self._pairs: dict[tuple[int, int], tuple[pa.Array | None, pa.Array | None]] = {}
        self._rows: dict[int, pa.Array] = {}

    def has_digests(self, version: int) -> bool:
        d = self.versions[version]
        return content_key(d) in manifest_schema(Path(d.manifest_path)).names

    def _aligned(self, version: int, contents: pa.Array | None) -> pa.Array | None:
        """``contents`` (in the version's manifest order) at the positions of ``ids``."""
        if contents is None:
            return None
        if version not in self._rows:
            manifest = pq.read_table(self.versions[version].manifest_path, columns=[cols.ITEM_ID])
            self._rows[version] = _positions(self.ids, manifest.column(cols.ITEM_ID))[1]
        return contents.take(self._rows[version]).cast(pa.binary())

    def pair(self, a: int, b: int) -> tuple[pa.Array | None, pa.Array | None]:
        if (a, b) not in self._pairs:
            found = item_contents([self.versions[a], self.versions[b]])
            self._pairs[(a, b)] = (
                self._aligned(a, found[a]),
                self._aligned(b, found[b]),
            )
        return self._pairs[(a, b)]

    def as_reference(
        self,
        version: int,
        reference: np.ndarray,
        unknown: bool,
        inputs: set[str] | dict[int, set[str]],
    ) -> np.ndarray:
        """Per item, whether ``version`` holds it with the content of its ``reference``
        version; ``unknown``: the answer where either has no digests or there is none.
        ``inputs`` (or ``inputs[r]``): the columns that must be among those the two share (what
        the models concerned read), else the items are other content."""
        out = np.full(len(self.ids), unknown)
        for r in np.unique(reference[reference >= 0]).tolist():
            at = reference == r
            if r == version:
                out[at] = True
                continue
            shared = rehashed_columns([self.versions[version], self.versions[r]])
            need = inputs.get(r, set()) if isinstance(inputs, dict) else inputs
            if shared is not None and not need <= set(shared):
                out[at] = False
                continue
            mine, theirs = self.pair(version, r)
            if mine is None or theirs is None:
                out[at] = unknown
                continue
            # (an item without a content, a missing file's, counts as unknown, as before)
            equal = pc.fill_null(pc.equal(mine, theirs), unknown)
            out[at] = np.asarray(equal.to_numpy(zero_copy_only=False), bool)[at]
        return out


def history_parquet(history: ItemHistory) -> bytes:
    """The whole matrix as a Parquet file's bytes (the web app's download)."""
    sink = pa.BufferOutputStream()
    pq.write_table(history.to_table(), sink)
    return bytes(sink.getvalue().to_pybytes())


def write_history(
    history: ItemHistory, out: Path, limit: int = LIMIT, store: Path | None = None
) -> dict[str, Path]:
    """history.json (the summary) and history.parquet (the whole matrix) in ``out``."""
    import json
    import os

    from assay.services.out_folder import OutLock, out_folder
    from assay.store.files import temp_file

    out = out_folder(out, store)
    files = {"history.json": out / "history.json", "history.parquet": out / "history.parquet"}
    with OutLock(out):  # two writers into one folder: one refused, not the files of both
        fd, tmp = temp_file(out, prefix=".history-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(history.summary(limit), f, indent=2)
        os.replace(tmp, files["history.json"])
        fd, tmp = temp_file(out, prefix=".history-", suffix=".parquet")
        os.close(fd)
        pq.write_table(history.to_table(), tmp)
        os.replace(tmp, files["history.parquet"])
    return files


SHOWN = 20


def never_right_so_far(
    ws: Workspace, dataset: DatasetVersion, model_id: int, predictions: Path
) -> dict[str, Any] | None:
    """What the item history adds to a run's doubtful labels: the items this run gets wrong
    that no other model version validated on the dataset ever got right (each judged by at least
    one of them). None when no other version has a finished run on it."""
    runs = _runs_on(ws, dataset.name)
    if not any(r.model_id != model_id for r in runs):
        return None
    try:  # every version judged against the labels this run was judged against
        others = item_history(ws, dataset.name, labels_from=dataset)
    except InputError as exc:  # another run's files changed: this run's evidence says so
        return {"n_versions": 0, "versions": [], "n_items": 0, "items": [],
                "note": f"the item history is unavailable: {exc}"}  # fmt: skip
    keep = [j for j, v in enumerate(others.versions) if v.model_id != model_id]
    if not keep:
        return None
    mine = pq.read_table(predictions, columns=["item_id", "correct"])
    at = pc.index_in(mine.column("item_id"), value_set=others.item_ids)
    held = np.asarray(at.is_valid().to_numpy(zero_copy_only=False), bool)
    rows = np.asarray(at.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    past = others.outcomes[rows][:, keep]
    judged_before = ((past == ih.RIGHT) | (past == ih.WRONG)).any(axis=1) & held
    right_before = (past == ih.RIGHT).any(axis=1) & held
    correct = mine.column("correct")
    wrong_now = ~np.asarray(correct.fill_null(True).to_numpy(zero_copy_only=False), bool)
    never = wrong_now & judged_before & ~right_before
    ids = mine.column("item_id").take(pa.array(np.flatnonzero(never)[:SHOWN]))
    return {
        "n_versions": len(keep),
        "versions": [others.versions[j].model for j in keep],
        "n_items": int(never.sum()),
        "items": ids.to_pylist(),
        "rule": "wrong in this run, and judged but never right by any other model version "
        "validated on the dataset",
    }
