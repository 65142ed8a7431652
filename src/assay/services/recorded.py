"""Binding recorded predictions to the dataset they are validated on.

A predictions file names items by id (a COCO results file by the dataset's COCO image ids and
category ids). Binding joins it with the dataset's items once, before the pass, into an Arrow
file with one row per item in the dataset's order, so that the runtime answers each batch by
position (memory-mapped, no per-item lookup). The join is exact both ways: items without a
prediction are marked (and not judged: "no recorded prediction"), and predictions that name no
item of the dataset are counted and listed (``unmatched_predictions.csv``), never dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from assay.core.errors import InputError
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.spec import ModelSpec
from assay.core.verdict import CheckResult
from assay.datasets import columns as cols
from assay.runtimes import recorded as rec
from assay.store.manifests import read_manifest

UNMATCHED_FILE = "unmatched_predictions.csv"
# How many unmatched keys result.json shows; the CSV beside it lists them all.
SHOWN = 20


@dataclass(frozen=True)
class Binding:
    """A recorded model bound to a dataset: ``model`` loads the bound file."""

    model: ModelVersion
    dataset: str
    n_predictions: int  # rows of the file (detections, for COCO results)
    # Items the file names; for COCO results the others are images without detections.
    n_items_with_prediction: int
    n_items_without_prediction: int
    key: str
    unmatched: pa.Array  # keys of the file that name no item of the dataset

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.model.file_name,
            "dataset": self.dataset,
            "key": self.key,
            "n_predictions": self.n_predictions,
            "n_items_with_prediction": self.n_items_with_prediction,
            "n_items_without_prediction": self.n_items_without_prediction,
            "n_unmatched": len(self.unmatched),
            "unmatched_examples": self.unmatched[:SHOWN].to_pylist(),
            "unmatched_file": UNMATCHED_FILE if len(self.unmatched) else None,
        }

    def check(self) -> CheckResult:
        """A warning in the verdict when predictions name items the dataset does not hold."""
        n = len(self.unmatched)
        kind = "image ids" if self.key == rec.IMAGE_ID else "item ids"
        if n:
            reason = (
                f"{n} recorded prediction(s) name {kind} that {self.dataset} does not hold "
                f"(first: {self.unmatched[0].as_py()!r}); all are listed in {UNMATCHED_FILE}"
            )
        else:
            reason = f"every recorded prediction names an item of {self.dataset}"
        return CheckResult(
            name="recorded predictions name items of the dataset",
            status="warn" if n else "pass",
            value=float(n),
            threshold=0.0,
            reason=reason,
            metric="unmatched_predictions",
            severity="warn",
        )

    def also_answering(self, other: DatasetVersion) -> Binding:
        """The binding with the predictions for ``other``'s items (a calibration set the same
        file scores) no longer counted as naming no item."""
        column = cols.SOURCE_ID if self.key == rec.IMAGE_ID else cols.ITEM_ID
        known = [
            b.column(column)
            for b in read_manifest(Path(other.manifest_path), 262_144, [column])
            if column in b.schema.names
        ]
        if not known or not len(self.unmatched):
            return self
        values = pa.chunked_array(known).combine_chunks()
        keep = pc.invert(pc.is_in(self.unmatched, value_set=values))
        return dataclasses.replace(
            self,
            unmatched=pc.filter(self.unmatched, keep),
            dataset=f"{self.dataset} and {other.ref}",
        )

    def write_unmatched(self, run_dir: Path) -> None:
        if len(self.unmatched):
            tmp = run_dir / (UNMATCHED_FILE + ".tmp")
            pacsv.write_csv(pa.table({self.key: self.unmatched}), tmp)
            tmp.replace(run_dir / UNMATCHED_FILE)


def bind_recorded(
    model: ModelVersion, spec: ModelSpec, dataset: DatasetVersion, directory: Path
) -> Binding:
    """Join the model's predictions file with the dataset's items (see the module's docstring)."""
    recorded = rec.read_predictions(Path(model.file_path), spec)
    key_column = cols.SOURCE_ID if recorded.key == rec.IMAGE_ID else cols.ITEM_ID
    wanted = [cols.ITEM_ID] + ([cols.SOURCE_ID] if key_column == cols.SOURCE_ID else [])
    manifest = Path(dataset.manifest_path)
    batches = list(read_manifest(manifest, 262_144, wanted))
    schema_names = batches[0].schema.names if batches else wanted
    if key_column not in schema_names:
        origin = (
            f"it was read by the {dataset.format} reader, which has no such ids"
            if dataset.format != "coco"
            else "it was registered by an older Assay"
        )
        raise InputError(
            f"COCO results name images by the image ids of a COCO annotation file, and dataset "
            f"{dataset.ref} keeps none ({origin}): register the COCO JSON those ids come from "
            "(assay dataset add NAME annotations.json), or record the predictions by item id "
            "(Parquet or CSV with item_id)"
        )
    items = (
        pa.Table.from_batches(batches)
        if batches
        else pa.table({c: pa.array([], pa.string()) for c in wanted})
    )
    n = items.num_rows
    left = pa.table({"k": items.column(key_column), "row": pa.array(np.arange(n), pa.int64())})
    keys = recorded.table.column(recorded.key)
    right = pa.table({"k": keys, "at": pa.array(np.arange(recorded.table.num_rows), pa.int64())})
    joined = left.join(right, "k", join_type="left outer").sort_by("row")
    at = joined.column("at").combine_chunks()
    unmatched_rows = right.join(left, "k", join_type="left anti").sort_by("at")
    unmatched = unmatched_rows.column("k").combine_chunks()
    table = recorded.table.take(at)
    # COCO results list only the images where the model found something: an image they do not
    # name has no detections (as COCO's own evaluation reads them), and is judged.
    present = pc.is_valid(at) if spec.task != "detection" else pa.array(np.ones(n, bool))
    columns: dict[str, Any] = {rec.ITEM_ID: items.column(cols.ITEM_ID), "present": present}
    if spec.task == "detection":
        columns[rec.BOXES] = table.column(rec.BOXES)
        columns[rec.BOX_SCORES] = table.column(rec.BOX_SCORES)
        columns[rec.CLASSES] = _label_indices(table.column("category_ids"), spec, dataset)
    else:
        for name in table.column_names:
            if name != rec.ITEM_ID:
                columns[name] = table.column(name)
    bound = pa.table(columns)
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{model.version}\n{dataset.version}".encode()).hexdigest()[:32]
    path = directory / f"{name}.arrow"
    rec.write_bound(bound, path)
    with_prediction = int(pc.sum(pc.is_valid(at)).as_py() or 0)
    if with_prediction == 0 and n and recorded.n_rows:
        example = keys[0].as_py() if len(keys) else None
        raise InputError(
            f"none of the {n} items of {dataset.ref} has a recorded prediction in "
            f"{model.file_name} (it names {recorded.key} {example!r}...; the dataset's first "
            f"is {items.column(key_column)[0].as_py()!r}): is it the right file for this dataset?"
        )
    return Binding(
        dataclasses.replace(model, file_path=str(path)),
        dataset.ref,
        recorded.n_rows,
        with_prediction,
        n - with_prediction,
        recorded.key,
        unmatched,
    )


def _label_indices(
    categories: pa.ChunkedArray, spec: ModelSpec, dataset: DatasetVersion
) -> pa.Array:
    """COCO category ids (per detection) as indices into the spec's labels, by category name."""
    names: dict[str, str] | None = dataset.options.get("category_ids")
    if names is None:
        raise InputError(
            f"dataset {dataset.ref} keeps no COCO category ids (registered by an older Assay): "
            "register its COCO file again to validate COCO results against it"
        )
    used = set(pc.unique(pc.list_flatten(categories)).to_pylist())
    unknown = sorted(used - set(names))
    if unknown:
        raise InputError(
            f"the COCO results name category ids {unknown[:5]} that {dataset.ref}'s COCO file "
            f"does not define (it has {sorted(names)[:8]})"
        )
    outside = sorted({names[c] for c in used} - set(spec.labels))
    if outside:
        raise InputError(
            f"the COCO results name categories {outside[:5]} that the spec's labels "
            f"{list(spec.labels)} do not list"
        )
    index = {c: spec.labels.index(names[c]) for c in used}
    return pa.array(
        [None if v is None else [index[c] for c in v] for v in categories.to_pylist()],
        pa.list_(pa.int64()),
    )
