"""AnomalyTask: an anomaly score (and map) per image, judged against good/defect and masks.

Models trained on good parts only (as anomalib exports them) give each image a score, and often
an anomaly map; an image's score is the ``score`` output, else its map's maximum. The **item-level
decision**: an image is called anomalous when its score is above the threshold (the spec's, or
one calibrated on good items before the pass); its expert class is the spec's ``good`` label
when the dataset says so, else the defect label (any other class: crack, scratch...). Image
AUROC, AUPR and F1-max come from the raw scores, kept exactly; with expert masks and a map,
pixel AUROC, AUPRO to FPR 0.3 and per-region recall at the threshold.

The item-level tools (comparison, slices, doubtful labels) read a probability per image; an
anomaly score is none, so they get ``sigmoid(score - threshold)``: monotone in the score, 0.5 at
the threshold. Log loss and calibration of these numbers would mean nothing and are not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from assay.core.accumulators import Accumulator, Finalized
from assay.core.accumulators.ranking import average_precision_from, roc_auc_from
from assay.core.batch import ScoredBatch
from assay.core.failures import DISPUTED, NO_LABEL, NO_MASK
from assay.core.intervals import (
    MIN_IMAGES,
    PSEUDO_ITEM,
    IntervalConfig,
    draw_multinomial,
    smoothed_interval,
)
from assay.core.metric_value import MetricValue
from assay.core.prepared import DISPUTED_LABEL, PreparedBatch
from assay.core.spec import ModelSpec
from assay.core.tasks.anomaly.pixels import PixelAnomaly, PixelState
from assay.core.tasks.anomaly.threshold import f1_max, f1_max_from
from assay.core.tasks.base import I64, F, Judged, decision_accumulators, judged_batch
from assay.core.tasks.segmentation.task import resize_bilinear

REGION_FOUND = 0.5  # a region counts as found when at least half its pixels are above threshold


@dataclass(frozen=True)
class AnomalyOutputs:
    score: F  # [N]
    maps: npt.NDArray[np.float32] | None  # [N, H, W]
    finite: npt.NDArray[np.bool_]


def roc_auc(scores: F, positive: npt.NDArray[np.bool_]) -> float | None:
    """Exact ROC AUC (ties count half), as scikit-learn's roc_auc_score."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    # Average 1-based ranks of tied scores.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], s.size]
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    ranks = ((starts + ends + 1) / 2.0)[group]
    pos_ranks = ranks[positive[order]].sum()
    return float((pos_ranks - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: F, positive: npt.NDArray[np.bool_]) -> float | None:
    """Average precision of the anomalous class, as scikit-learn's average_precision_score."""
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    ends = np.append(s[1:] != s[:-1], True)
    tp = np.cumsum(p)[ends]
    fp = np.cumsum(~p)[ends]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


class AnomalyTask:
    name = "anomaly"

    def __init__(self, spec: ModelSpec) -> None:
        if spec.threshold is None:
            raise ValueError("an anomaly task needs its threshold (the spec's or calibrated)")
        self.spec = spec
        self.threshold = float(spec.threshold)
        self.good = spec.negative or spec.labels[0]
        self.defect = next(label for label in spec.labels if label != self.good)
        self.item_labels: tuple[str, ...] = (self.good, self.defect)

    def decode(self, raw: Any, n: int) -> AnomalyOutputs:
        maps = None
        if "map" in raw:
            maps = np.asarray(raw["map"], dtype=np.float32)
            if maps.ndim == 4 and maps.shape[1] == 1:
                maps = maps[:, 0]
            if maps.ndim != 3 or maps.shape[0] != n:
                raise ValueError(
                    f"the model returned an anomaly map of shape {list(maps.shape)} for {n} items"
                )
        if "score" in raw:
            score = np.asarray(raw["score"], dtype=np.float64).reshape(-1)
            if score.size != n:
                raise ValueError(f"the model returned {score.size} anomaly scores for {n} items")
        else:
            assert maps is not None
            score = (
                np.nanmax(maps.reshape(n, -1), axis=1, initial=-np.inf).astype(np.float64)
                if maps.size
                else np.zeros(n)
            )
        finite = np.isfinite(score)
        if maps is not None:
            finite &= np.isfinite(maps).reshape(n, -1).all(axis=1)
        return AnomalyOutputs(score, maps, finite)

    def combine(self, parts: Sequence[AnomalyOutputs | None]) -> AnomalyOutputs:
        first = next((p for p in parts if p is not None), None)
        maps = None
        if first is not None and first.maps is not None:
            maps = np.zeros((len(parts), *first.maps.shape[1:]), np.float32)
        out = AnomalyOutputs(np.zeros(len(parts)), maps, np.zeros(len(parts), bool))
        for j, p in enumerate(parts):
            if p is not None:
                out.score[j], out.finite[j] = p.score[0], p.finite[0]
                if out.maps is not None and p.maps is not None:
                    out.maps[j] = p.maps[0]
        return out

    def probability(self, score: F) -> F:
        with np.errstate(over="ignore"):
            p: F = 1.0 / (1.0 + np.exp(-(score - self.threshold)))
        return p

    def judge(
        self,
        prepared: PreparedBatch,
        rows: I64,
        outputs: AnomalyOutputs,
        errors: dict[int, str],
        offset: int,
    ) -> Judged:
        n = prepared.n_items
        labels: list[str | None] = [None] * n
        truth = np.full(n, -1, np.int64)
        for i in range(n):
            label = prepared.labels[i]
            if prepared.label_index[i] == DISPUTED_LABEL:
                errors.setdefault(i, DISPUTED)
            elif label is None:
                errors.setdefault(i, NO_LABEL)
            else:
                truth[i] = int(label != self.good)
                labels[i] = self.item_labels[truth[i]]
        expected = prepared.expected
        predicted = np.full(n, -1, np.int64)
        scores = np.full((n, 2), np.nan)
        raw = np.full(n, np.nan)
        judged: list[int] = []
        detail: list[tuple[int, float, Any]] = []
        drawn: list[Any] = [None] * n
        for j, i in enumerate(rows.tolist()):
            if not outputs.finite[j]:
                errors.setdefault(
                    i, "model output is not finite (NaN or infinite anomaly score or map)"
                )
            if i in errors:
                continue
            s = float(outputs.score[j])
            raw[i] = s
            p = float(self.probability(np.array([s]))[0])
            scores[i] = (1.0 - p, p)
            predicted[i] = int(s > self.threshold)
            if outputs.maps is not None:  # where the model calls the image anomalous
                drawn[i] = (outputs.maps[j] > self.threshold).astype(np.uint8)
            regions = None
            if expected is not None and outputs.maps is not None:
                mask = expected[i]
                if isinstance(mask, str) and mask == NO_MASK and truth[i] == 0:
                    # A good image given no mask is normal everywhere (MVTec AD's layout): 112
                    # of a review's 300 images were left unjudged and the verdict failed.
                    mask = np.zeros(outputs.maps[j].shape, np.uint8)
                if isinstance(mask, str):
                    errors[i] = mask
                    predicted[i] = -1
                    continue
                # Scored at the mask's size (the map enlarged or reduced to it, as anomalib
                # does): shrinking the mask instead let a coarser map score better, small
                # regions dropping out of AUPRO and region recall (a review: an 8 x 8 map beat
                # its own 64 x 64 original).
                shape = (int(mask.shape[0]), int(mask.shape[1]))
                regions = (mask, resize_bilinear(outputs.maps[j], shape))
            judged.append(i)
            detail.append((offset + i, s, regions))
        batch, at = judged_batch(
            prepared, judged, truth[judged].tolist(), predicted, scores, detail
        )
        extra: dict[str, list[Any]] = {"anomaly_score": raw.tolist(), "mask": drawn}
        return Judged(batch, at, predicted, scores, errors, labels, extra)

    def accumulators(
        self, intervals: IntervalConfig, auc_mode: Literal["exact", "binned"], n_examples: int
    ) -> list[Accumulator[Any]]:
        return [
            *decision_accumulators(self.item_labels, intervals, n_examples),
            AnomalyMetrics(intervals, self.threshold),
        ]

    def prediction_fields(self) -> dict[str, str]:
        fields = {"anomaly_score": "float"}
        if self.spec.output.map is not None:
            fields["mask"] = "png"
        return fields

    def rule(self) -> str:
        return (
            f"an image is called {self.defect!r} when its anomaly score is above "
            f"{self.threshold:.6g}, and is right when that matches the expert's good/defect class; "
            "anomaly maps are resized to the expert mask (bilinear) when their sizes "
            "differ"
        )


@dataclass
class AnomalyState:
    orders: list[I64] = field(default_factory=list)
    scores: list[F] = field(default_factory=list)
    anomalous: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    pixels: PixelState | None = None
    regions_found: int = 0
    n_regions: int = 0
    region_overlap: float = 0.0


class AnomalyMetrics:
    """Image AUROC, AUPR and F1-max from the exact scores (bootstrap intervals over images);
    pixel AUROC, AUPRO to FPR 0.3 and per-region recall when masks and maps exist."""

    name = "anomaly"

    def __init__(self, intervals: IntervalConfig, threshold: float) -> None:
        self.intervals = intervals
        self.threshold = threshold
        self.pixel = PixelAnomaly()

    def empty(self) -> AnomalyState:
        return AnomalyState()

    def update(self, state: AnomalyState, batch: ScoredBatch) -> AnomalyState:
        if not batch.detail:
            return state
        out = AnomalyState(
            [*state.orders, np.array([d[0] for d in batch.detail], np.int64)],
            [*state.scores, np.array([d[1] for d in batch.detail], np.float64)],
            [*state.anomalous, batch.y_true == 1],
            state.pixels,
            state.regions_found,
            state.n_regions,
            state.region_overlap,
        )
        pairs = [d[2] for d in batch.detail if d[2] is not None]
        if pairs:
            # One histogram pass per batch: the images' maps side by side, their regions
            # numbered apart.
            maps, labelled = [], []
            base = 0
            for regions, amap in pairs:
                r = np.where(regions > 0, regions + base, 0)
                base = max(base, int(r.max(initial=0)))
                maps.append(amap.ravel())
                labelled.append(r.ravel())
                above = amap > self.threshold
                for k in np.unique(regions[regions > 0]):
                    inside = regions == k
                    share = float(above[inside].mean())
                    out.n_regions += 1
                    out.region_overlap += share
                    out.regions_found += share >= REGION_FOUND
            pixels = self.pixel.empty()
            self.pixel.add(pixels, np.concatenate(maps), np.concatenate(labelled))
            out.pixels = pixels if state.pixels is None else self.pixel.merge(state.pixels, pixels)
        return out

    def merge(self, a: AnomalyState, b: AnomalyState) -> AnomalyState:
        pixels = (
            a.pixels
            if b.pixels is None
            else b.pixels
            if a.pixels is None
            else self.pixel.merge(a.pixels, b.pixels)
        )
        return AnomalyState(
            a.orders + b.orders,
            a.scores + b.scores,
            a.anomalous + b.anomalous,
            pixels,
            a.regions_found + b.regions_found,
            a.n_regions + b.n_regions,
            a.region_overlap + b.region_overlap,
        )

    def finalize(self, state: AnomalyState) -> Finalized:
        out = Finalized()
        if state.orders:
            orders = np.concatenate(state.orders)
            by_order = np.argsort(orders, kind="stable")
            scores = np.concatenate(state.scores)[by_order]
            anomalous = np.concatenate(state.anomalous)[by_order]
        else:
            scores, anomalous = np.zeros(0), np.zeros(0, bool)
        values = {
            "image_auroc": roc_auc(scores, anomalous),
            "image_aupr": average_precision(scores, anomalous),
            "f1_max": f1_max(scores, anomalous),
        }
        n_defect = int(anomalous.sum())
        enough = min(n_defect, scores.size - n_defect) >= MIN_IMAGES
        cis = self._intervals(scores, anomalous) if self.intervals.n_resamples and enough else {}
        few = (
            None
            if enough or not self.intervals.n_resamples
            else f"fewer than {MIN_IMAGES} defective or good images: no interval"
        )
        for name, value in values.items():
            ci = cis.get(name)
            out.metrics[name] = MetricValue.of(
                value, ci, "bootstrap" if ci else None, note=None if ci else few
            )
        pixel = (
            self.pixel.finalize(state.pixels)
            if state.pixels is not None
            else {"pixel_auroc": None, "aupro": None}
        )
        note = None if state.pixels is not None else "no expert masks with anomaly maps"
        out.metrics["pixel_auroc"] = MetricValue.of(pixel["pixel_auroc"], note=note)
        out.metrics["aupro"] = MetricValue.of(pixel["aupro"], note=note)
        out.metrics["region_recall"] = MetricValue.of(
            state.regions_found / state.n_regions if state.n_regions else None,
            note=None if state.n_regions else "no expert defect region with an anomaly map",
        )
        out.extras["anomaly"] = {
            "n_regions": state.n_regions,
            "region_found_at": REGION_FOUND,
            "pro_at_threshold": state.region_overlap / state.n_regions if state.n_regions else None,
            "aupro_max_fpr": 0.3,
        }
        return out

    def _intervals(
        self, scores: F, anomalous: npt.NDArray[np.bool_]
    ) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap over images: each resample's counts per distinct score give its
        image AUROC, AUPR and F1-max (as a single run's ROC histogram does). The interval is
        the hull of these and of the same resamples carrying half a defective image scored
        below every image and half a good one above, as fixed weights (``PSEUDO_ITEM``): every
        resample of a perfectly ranked set ranks perfectly, an interval [1, 1]."""
        order = np.argsort(scores, kind="mergesort")
        s = scores[order]
        ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last image of each distinct score
        draws = draw_multinomial(np.ones(scores.size, np.int64), self.intervals, salt=self.name)
        weights = draws[:, order].astype(np.float64)
        bad = anomalous[order]

        def per_score(w: F) -> F:
            summed: F = np.diff(np.cumsum(w, axis=1)[:, ends], axis=1, prepend=0.0)
            return summed

        pos, neg = per_score(weights * bad), per_score(weights * ~bad)
        r = pos.shape[0]
        half, zero = np.full((r, 1), PSEUDO_ITEM), np.zeros((r, 1))
        smoothed = (np.hstack([half, pos, zero]), np.hstack([zero, neg, half]))
        out = {}
        for name, fn in (
            ("image_auroc", roc_auc_from),
            ("image_aupr", average_precision_from),
            ("f1_max", f1_max_from),
        ):
            out[name] = smoothed_interval(fn(pos, neg), fn(*smoothed), self.intervals.confidence)
        return out
