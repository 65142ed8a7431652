"""The threshold of an anomaly model, calibrated on a declared set of good items before the pass.

The model scores every item of the calibration dataset (items labelled other than good are left
out, with their count; so are items it cannot score); the threshold is the conformal quantile of
the good scores at the target false-alarm rate (``calibrate_threshold``). Calibration and test
items must be different images: an image in both (same content digest) would let the threshold
see the test, so the verdict fails when any overlap, naming how many.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.arrow import string, strings
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.core.ports import PartialOutput, model_batch
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.spec import ModelSpec
from assay.core.tasks.anomaly.task import AnomalyTask
from assay.core.tasks.anomaly.threshold import Threshold, calibrate_threshold
from assay.core.verdict import CheckResult
from assay.datasets import columns as cols
from assay.runtimes import load_model
from assay.runtimes.base import expected_input_shape
from assay.services.contents import content_key, item_contents
from assay.services.task_inputs import decoder_factory
from assay.store.manifests import read_manifest


@dataclass(frozen=True)
class Calibration:
    threshold: Threshold
    dataset: str  # NAME@VERSION
    n_items: int
    n_not_good: int
    n_failed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.threshold.to_dict(),
            "calibration_dataset": self.dataset,
            "n_calibration_items": self.n_items,
            "n_left_out_not_good": self.n_not_good,
            "n_left_out_not_scored": self.n_failed,
        }


def calibrate(
    model: ModelVersion, spec: ModelSpec, dataset: DatasetVersion, config: ValidationConfig
) -> Calibration:
    """Score the calibration dataset's good items and choose the threshold."""
    runtime = load_model(
        Path(model.file_path), spec, model.runtime, threads=config.threads, device=config.device
    )
    task = AnomalyTask(_with_threshold(spec, 0.0))
    decoder = decoder_factory(_with_threshold(spec, 0.0), masks=False)()
    item_bytes = 4 * int(np.prod(expected_input_shape(spec)))
    batch_rows = config.batch_size_for(dataset.kind, item_bytes)
    content = content_key(dataset)
    # A table's model reads its feature columns: every column (a recorded model, the ids).
    columns = [cols.ITEM_ID, cols.LABEL, cols.PATH, content] if dataset.kind == "image" else None
    good = spec.negative or spec.labels[0]
    scores: list[float] = []
    seen: dict[str, int] = {}  # digest of each good image scored -> how many times
    n_items = n_not_good = n_failed = 0
    try:
        for batch in read_manifest(Path(dataset.manifest_path), batch_rows, columns):
            prepared = decoder(batch)
            n_items += prepared.n_items
            rows = np.flatnonzero(prepared.readable)
            n_failed += prepared.n_items - rows.size
            try:
                raw = runtime.predict(model_batch(prepared, rows, n_items - prepared.n_items))
                unanswered = raw.errors if isinstance(raw, PartialOutput) else {}
                out = task.decode(raw.outputs if isinstance(raw, PartialOutput) else raw, rows.size)
            except Exception:
                n_failed += rows.size
                continue
            for j, i in enumerate(rows.tolist()):
                label = prepared.labels[i]
                if label is not None and label != good:
                    n_not_good += 1
                elif j in unanswered or not out.finite[j]:
                    n_failed += 1
                else:
                    scores.append(float(out.score[j]))
                    digest = (
                        batch.column(content)[i].as_py() if content in batch.schema.names else None
                    )  # (a table registered before rows had digests has none)
                    if digest:
                        seen[digest] = seen.get(digest, 0) + 1
    finally:
        decoder.close()
        runtime.close()
    copies = sum(n - 1 for n in seen.values() if n > 1)
    if copies:
        # The threshold's promise rests on calibration images as exchangeable as the test's:
        # one good scan listed 150 times calibrated "2%", and 20% of test goods were flagged.
        raise InputError(
            f"calibration dataset {dataset.ref} holds {copies} good item(s) that repeat another "
            "one's content (an image's SHA-256, a row's values): each copy would count as a "
            "fresh good item and the threshold would promise a false-alarm rate it does not "
            "hold; remove the copies"
        )
    if not scores:
        raise InputError(
            f"calibration dataset {dataset.ref} gave no good item ({good!r}) the model could "
            f"score (its labels: {', '.join(map(repr, sorted(dataset.label_counts)[:8]))})"
        )
    try:
        threshold = calibrate_threshold(np.array(scores), config.false_alarm_rate)
    except InputError as exc:
        raise InputError(f"calibration on {dataset.ref}: {exc}") from None
    return Calibration(threshold, dataset.ref, n_items, n_not_good, n_failed)


def _with_threshold(spec: ModelSpec, value: float) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, threshold=value)


def overlap_check(
    test: DatasetVersion, calibration: DatasetVersion, good: str | None = None
) -> CheckResult:
    """Fails when an image of the test dataset is also a calibration image (same content) the
    threshold was set on: a good one (``good``; the defects a calibration set holds are left
    out of it, and a review's 60 such images failed the check as "seen by the threshold")."""
    name = "calibration and test items are different images"
    contents = item_contents([calibration, test])
    mine, theirs = contents[calibration.id], contents[test.id]
    if mine is None or theirs is None:
        return CheckResult(
            name=name,
            status="warn",
            value=None,
            threshold=0.0,
            reason="the two sets' items cannot be compared: one was registered before its rows "
            "had digests (register it again)",
            metric="calibration_overlap",
        )
    if good is not None:  # the defects a calibration set holds never set the threshold
        labels = pa.concat_arrays(
            [
                b.column(0)
                for b in read_manifest(Path(calibration.manifest_path), 65_536, [cols.LABEL])
            ]
            or [strings([])]
        )
        mine = mine.filter(pc.fill_null(pc.equal(labels.cast(pa.string()), string(good)), True))
    mine = mine.drop_null()
    hit = pc.is_in(theirs.drop_null(), value_set=mine.cast(theirs.type)) if len(mine) else None
    shared = 0 if hit is None else int(pc.sum(hit).as_py() or 0)
    if shared:
        reason = (
            f"{shared} test image(s) of {test.ref} are also calibration images of "
            f"{calibration.ref}: the threshold has seen them"
        )
    else:
        reason = f"no image of {test.ref} is in the calibration set {calibration.ref}"
    return CheckResult(
        name=name,
        status="fail" if shared else "pass",
        value=float(shared),
        threshold=0.0,
        reason=reason,
        metric="calibration_overlap",
    )
