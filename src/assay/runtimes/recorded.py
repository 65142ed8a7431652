"""Recorded predictions: a model that ran elsewhere (on the scanner, a TensorRT engine, C++ on the
device), validated from what it answered.

A predictions file is Parquet or CSV with an ``item_id`` column and either one ``score_<label>``
column per label of the spec (probabilities or logits, as its ``output.kind`` says) or a
``predicted`` column (a label per item: then the metrics that need scores are unavailable); an
anomaly model's file has a ``score`` column. A detection model's file is a COCO results JSON
(``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``) whose ids are those of the
dataset's COCO file.

``read_predictions`` checks a file (duplicate ids, missing or extra columns, unknown labels: each
an InputError). A validation then binds the file to its dataset (``assay.services.recorded``):
one Arrow file aligned with the dataset's items, row for row, which ``RecordedRuntime`` reads
memory-mapped; the binding also counts the predictions that name no item of the dataset.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from assay.arrow import null
from assay.core.errors import InputError
from assay.core.ports import ModelBatch, ModelSignature, PartialOutput, TensorInfo
from assay.core.spec import ModelSpec

ITEM_ID = "item_id"
PREDICTED = "predicted"
SCORE = "score"
NO_PREDICTION = "no recorded prediction"
# Detection: the columns of a bound file, one list per item (COCO boxes [x, y, w, h]).
BOXES, BOX_SCORES, CLASSES = "boxes", "scores", "classes"
# A COCO results file is keyed by the dataset's image ids until it is bound.
IMAGE_ID = "image_id"
SUFFIXES = (".parquet", ".csv", ".json")


def score_column(label: str) -> str:
    return f"score_{label}"


@dataclass(frozen=True)
class RecordedPredictions:
    """A checked predictions file: one row per item (per image for COCO results), keyed by
    ``key`` (``item_id``, or ``image_id`` for COCO results), with the columns a bound file has.
    ``category_ids``: COCO results only, the category ids in the order of first appearance."""

    table: pa.Table
    key: str
    scores: bool
    n_rows: int

    def describe(self) -> dict[str, Any]:
        return {"runtime": "recorded", "n_predictions": self.n_rows, "key": self.key}


def read_predictions(path: Path, spec: ModelSpec) -> RecordedPredictions:
    """Read and check a predictions file against the spec; InputError naming the problem."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"{path.name}: recorded predictions are .parquet, .csv or (detection) a COCO "
            "results .json"
        )
    if spec.task == "detection":
        if suffix != ".json":
            raise InputError(f"{path.name}: detection predictions are a COCO results .json file")
        return _coco_results(path, spec)
    if suffix == ".json":
        raise InputError(f"{path.name}: a .json file holds detection results; use Parquet or CSV")
    table = _read_table(path)
    names = table.column_names
    if ITEM_ID not in names:
        raise InputError(f"{path.name}: no {ITEM_ID!r} column (columns: {names[:8]})")
    ids = _strings(table.column(ITEM_ID), path.name, ITEM_ID)
    if ids.null_count:
        raise InputError(f"{path.name}: {ids.null_count} row(s) have no {ITEM_ID}")
    _no_duplicates(ids, path.name)
    columns: dict[str, Any] = {ITEM_ID: ids}
    if spec.task == "anomaly":
        if SCORE not in names:
            raise InputError(f"{path.name}: an anomaly model's predictions need a 'score' column")
        columns[SCORE] = _numbers(table.column(SCORE), path.name, SCORE)
        return RecordedPredictions(pa.table(columns), ITEM_ID, True, table.num_rows)
    wanted = [score_column(label) for label in spec.labels]
    given = [n for n in names if n.startswith("score_")]
    if given and PREDICTED in names and _classes_only(path):
        given = []  # an Assay run of a model without scores: one-hot columns, not scores
    if given and spec.output.kind == "labels" and PREDICTED in names:
        given = []  # the spec says classes: the file's predicted column, its scores ignored
    elif given and spec.output.kind == "labels":
        raise InputError(
            f"{path.name}: the spec's output.kind is labels but the file has no predicted column"
        )
    if given:
        missing = [c for c in wanted if c not in given]
        extra = [c for c in given if c not in wanted]
        if missing or extra:
            raise InputError(
                f"{path.name}: score columns {given} do not match the spec's labels "
                f"{list(spec.labels)} (expected {wanted})"
            )
        for c in wanted:
            columns[c] = _numbers(table.column(c), path.name, c)
        return RecordedPredictions(pa.table(columns), ITEM_ID, True, table.num_rows)
    if PREDICTED not in names:
        raise InputError(
            f"{path.name}: needs {', '.join(wanted)} (the model's scores) or a {PREDICTED!r} "
            f"column (its class per item); it has {names[:8]}"
        )
    predicted = _strings(table.column(PREDICTED), path.name, PREDICTED)
    unknown = pc.unique(
        pc.drop_null(
            pc.filter(
                predicted,
                pc.invert(pc.is_in(predicted, value_set=pa.array(spec.labels, pa.string()))),
            )
        )
    ).to_pylist()
    if unknown:
        raise InputError(
            f"{path.name}: predicted classes {sorted(unknown)[:5]} are not among the spec's "
            f"labels {list(spec.labels)}"
        )
    columns[PREDICTED] = predicted
    return RecordedPredictions(pa.table(columns), ITEM_ID, False, table.num_rows)


def _classes_only(path: Path) -> bool:
    """Whether a Parquet file is the predictions file of an Assay run of a model that gave
    classes only (its score columns then hold one-hot rows, no scores)."""
    if path.suffix.lower() != ".parquet":
        return False
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(b"assay.scores") == b"none"


def _read_table(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() == ".csv":
            # Ids and classes are text even when they look like numbers ("007" stays "007"),
            # and only an empty field is missing there: NA is a class's name (as in a dataset).
            options = pacsv.ConvertOptions(
                column_types={ITEM_ID: pa.string(), PREDICTED: pa.string()},
                strings_can_be_null=False,
            )
            table = pacsv.read_csv(path, convert_options=options)
            for name in (ITEM_ID, PREDICTED):
                if name in table.column_names and pa.types.is_string(table.schema.field(name).type):
                    column = table.column(name)
                    empty = pc.equal(column, "")
                    table = table.set_column(
                        table.schema.get_field_index(name),
                        name,
                        pc.if_else(empty, null(pa.string()), column),
                    )
            return table
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path.name} cannot be read: {first[:200]}") from None


def _strings(column: pa.ChunkedArray, name: str, where: str) -> pa.ChunkedArray:
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{name}: column {where!r} holds {column.type}, not text") from None


def _no_duplicates(ids: pa.ChunkedArray | pa.Array, name: str) -> None:
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise InputError(
            f"{name}: {len(repeated)} item id(s) appear more than once "
            f"(first: {repeated[0].as_py()!r}); one prediction per item"
        )


def _numbers(column: pa.ChunkedArray, name: str, where: str) -> pa.ChunkedArray:
    kind = column.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
        raise InputError(f"{name}: column {where!r} holds {column.type}, not numbers")
    return pc.cast(column, pa.float64())


def _coco_results(path: Path, spec: ModelSpec) -> RecordedPredictions:
    """A COCO results file, grouped by image: boxes, scores and category ids per image."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name} is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, list):
        raise InputError(f"{path.name}: a COCO results file is a list of detections")
    per_image: dict[str, tuple[list[list[float]], list[float], list[str]]] = {}
    for n, d in enumerate(data):
        where = f"{path.name}: detection {n}"
        if not isinstance(d, dict):
            raise InputError(f"{where} is not an object")
        for key in (IMAGE_ID, "category_id", "bbox", "score"):
            if key not in d:
                raise InputError(f"{where} has no {key!r}")
        image, category = d[IMAGE_ID], d["category_id"]
        if not isinstance(image, int | str) or isinstance(image, bool):
            raise InputError(f"{where}: image_id must be a number or a string")
        if not isinstance(category, int | str) or isinstance(category, bool):
            raise InputError(f"{where}: category_id must be a number or a string")
        bbox, score = d["bbox"], d["score"]
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(_finite(v) for v in bbox)
            or bbox[2] < 0
            or bbox[3] < 0
        ):
            raise InputError(f"{where}: bbox must be [x, y, width, height], finite, sizes >= 0")
        if not _finite(score):
            raise InputError(f"{where}: score must be a finite number")
        boxes, scores, classes = per_image.setdefault(str(image), ([], [], []))
        boxes.append([float(v) for v in bbox])
        scores.append(float(score))
        classes.append(str(category))
    images = list(per_image)
    table = pa.table(
        {
            IMAGE_ID: pa.array(images, pa.string()),
            BOXES: pa.array([per_image[i][0] for i in images], pa.list_(pa.list_(pa.float64(), 4))),
            BOX_SCORES: pa.array([per_image[i][1] for i in images], pa.list_(pa.float64())),
            "category_ids": pa.array([per_image[i][2] for i in images], pa.list_(pa.string())),
        }
    )
    return RecordedPredictions(table, IMAGE_ID, True, len(data))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def write_bound(table: pa.Table, path: Path) -> None:
    """Write a bound file (one row per dataset item, in the dataset's order) atomically."""
    # A name of its own: two validations binding the same model and dataset write side by side.
    fd, name = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class RecordedRuntime:
    """Answers each item of a batch from a bound file, by the item's position in the dataset;
    an item without a prediction is answered with a PartialOutput naming the reason."""

    def __init__(self, table: pa.Table | None, spec: ModelSpec, signature: ModelSignature) -> None:
        self.table = table
        self.spec = spec
        self.signature = signature

    def close(self) -> None:
        self.table = None  # the memory map goes with its last reference

    def predict(self, batch: ModelBatch) -> PartialOutput:
        if self.table is None or batch.positions is None:
            raise RuntimeError(
                "recorded predictions answer items of a dataset they were bound to "
                "(assay validate binds them); they cannot be run on free inputs"
            )
        rows = pa.array(batch.positions, pa.int64())
        part = self.table.take(rows)
        ids = part.column(ITEM_ID)
        expected = pa.array(list(batch.item_ids), pa.string())
        if not pc.all(pc.equal(ids, expected)).as_py():
            raise RuntimeError("recorded predictions are out of step with the dataset's items")
        present = part.column("present").to_numpy(zero_copy_only=False)
        errors = dict.fromkeys(np.flatnonzero(~present).tolist(), NO_PREDICTION)
        return PartialOutput(self._outputs(part, len(batch)), errors)

    def _outputs(self, part: pa.Table, n: int) -> Any:
        spec = self.spec
        if spec.task == "anomaly":
            return {"score": _floats(part.column(SCORE))}
        if spec.task == "detection":
            return _padded(part, n)
        if spec.has_scores:
            return np.stack(
                [_floats(part.column(score_column(label))) for label in spec.labels], axis=1
            ).reshape(n, spec.n_classes)
        index = pc.index_in(part.column(PREDICTED), value_set=pa.array(spec.labels, pa.string()))
        classes = index.fill_null(-1).to_numpy(zero_copy_only=False)
        one_hot = np.zeros((n, spec.n_classes))
        known = classes >= 0
        one_hot[np.flatnonzero(known), classes[known]] = 1.0
        one_hot[~known] = np.nan  # no class recorded for the item: not judged
        return one_hot


def _floats(column: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    return np.asarray(column.fill_null(math.nan).to_numpy(zero_copy_only=False), np.float64)


def _padded(part: pa.Table, n: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per-item box lists as the [N, D, 4], [N, D], [N, D] tensors the task reads (class -1:
    padding)."""
    boxes = part.column(BOXES).to_pylist()
    scores = part.column(BOX_SCORES).to_pylist()
    classes = part.column(CLASSES).to_pylist()
    d = max((len(b) for b in boxes if b), default=0)
    out_boxes = np.zeros((n, d, 4))
    out_scores = np.zeros((n, d))
    out_classes = np.full((n, d), -1.0)
    for j in range(n):
        if boxes[j]:
            m = len(boxes[j])
            out_boxes[j, :m] = boxes[j]
            out_scores[j, :m] = scores[j]
            out_classes[j, :m] = classes[j]
    return {"boxes": out_boxes, "scores": out_scores, "classes": out_classes}


def load(
    path: Path, spec: ModelSpec, threads: int | None = None, spin: bool = True
) -> RecordedRuntime:
    """The runtime entry's loader: a bound ``.arrow`` file answers items; a predictions file
    as the user gave it is checked, and describes itself (registration), but answers nothing
    until a validation binds it to a dataset."""
    if not spec.recorded:
        raise InputError("recorded predictions need a spec whose input is {kind: recorded}")
    if path.suffix == ".arrow":
        table = ipc.open_file(pa.memory_map(str(path))).read_all()
        signature = ModelSignature((), _outputs_info(spec), {"runtime": "recorded"})
        return RecordedRuntime(table, spec, signature)
    recorded = read_predictions(path, spec)
    return RecordedRuntime(None, spec, ModelSignature((), _outputs_info(spec), recorded.describe()))


def _outputs_info(spec: ModelSpec) -> tuple[TensorInfo, ...]:
    if spec.task == "detection":
        return (TensorInfo(BOXES, (None, None, 4), "float64"),)
    if spec.task == "anomaly":
        return (TensorInfo(SCORE, (None,), "float64"),)
    if not spec.has_scores:
        return (TensorInfo(PREDICTED, (None,), "string"),)
    return tuple(TensorInfo(score_column(label), (None,), "float64") for label in spec.labels)
