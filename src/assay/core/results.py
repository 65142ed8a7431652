"""ValidationResult: everything one validation run found, as plain data that renders anywhere.

The result is the saved snapshot of a run: reports (HTML, JSON, Markdown) are rendered from it,
any number of times, without recomputing a metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.core.metric_value import MetricValue
from assay.core.operating_point import OperatingSweeps
from assay.core.verdict import Verdict

RESULT_SCHEMA_VERSION = 1
# The one number a run is summed up by, per task (classification: accuracy), in lists and reprs.
HEADLINE_METRIC = {
    "": "accuracy",
    "detection": "map",
    "segmentation": "mean_iou",
    "anomaly": "image_auroc",
}


@dataclass(frozen=True)
class ArtifactRef:
    """A catalogued model or dataset version: name, content digest and per-name version number."""

    name: str
    version: str
    number: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "number": self.number}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(data["name"], data["version"], int(data.get("number", 0)))


@dataclass
class ValidationResult:
    """One model version judged on one dataset version."""

    run_id: str
    model: ArtifactRef
    dataset: ArtifactRef
    labels: tuple[str, ...]
    n_items: int
    n_failed: int
    metrics: dict[str, MetricValue]
    per_class: dict[str, dict[str, MetricValue]]
    confusion_matrix: list[list[int]]
    dataset_kind: str = "tabular"
    reliability: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    error_examples: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, Any] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    status: str = "finished"
    # Filled when the run is compared with a baseline / judged by a policy.
    comparison: dict[str, Any] | None = None
    verdict: Verdict | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    operating_sweep: OperatingSweeps | None = None
    operating_point: dict[str, Any] | None = None
    error_slices: list[dict[str, Any]] = field(default_factory=list)
    error_slice_search: dict[str, Any] | None = None
    doubtful_labels: dict[str, Any] | None = None
    # Several experts per item: their agreement, the model's agreement with each, disputed items.
    expert_agreement: dict[str, Any] | None = None
    # Misclassified items grouped by similarity (embedding or image descriptors).
    error_groups: dict[str, Any] | None = None
    # The model's own cost: latency, throughput, memory, load time, size (None: not profiled).
    profile: dict[str, Any] | None = None
    # Detection, segmentation, anomaly: the task, the item-level rule, and its own findings
    # (object confusion matrix, ...); None for classification.
    task: dict[str, Any] | None = None
    # Anomaly: the score threshold used, how it was chosen, and its target false-alarm rate.
    threshold: dict[str, Any] | None = None
    # Recorded predictions: the file, how many items it answered, predictions naming no item.
    recorded_predictions: dict[str, Any] | None = None
    # The dataset version's labels were corrected by an expert review (file, counts, parent).
    label_corrections: dict[str, Any] | None = None
    # Incremental validation: items whose output was reused from an earlier run of this model
    # version, items that went through the model (None: a result from before either was kept),
    # and where the reused outputs came from or why none were (``reuse``).
    n_reused: int = 0
    n_inferred: int | None = None
    reuse: dict[str, Any] | None = None
    # Batches the model failed whole, each then run item by item (a model that cannot take
    # batches, or an item that breaks its batch), and the items in them.
    n_split_batches: int = 0
    n_split_items: int = 0
    # With a training set (``--train``): the leakage audit's counts and the metrics without the
    # leaked items.
    leakage: dict[str, Any] | None = None
    # With a production sample (``--production``): the coverage audit and this run's accuracy
    # re-weighted to the production mix.
    coverage: dict[str, Any] | None = None
    # With a policy's reuse_budget: the decisions the dataset served before this one, and its
    # fresh items when past the budget.
    reuse_budget: dict[str, Any] | None = None

    @property
    def n_judged(self) -> int:
        return self.n_items - self.n_failed

    def headline(self) -> tuple[str, MetricValue | None]:
        """The task's headline metric: its name and value (None when it could not be computed)."""
        name = HEADLINE_METRIC.get(str((self.task or {}).get("name") or ""), "accuracy")
        return name, self.metrics.get(name)

    def summary(self) -> dict[str, Any]:
        """What the list of runs shows of this run: the verdict, the headline metric with its
        interval, and how long the run took."""
        name, m = self.headline()
        duration = self.timings.get("total_s") or self.timings.get("engine_s")
        return {
            "verdict": None if self.verdict is None else self.verdict.status,
            "headline_metric": name,
            "headline_value": None if m is None else m.value,
            "headline_low": None if m is None else m.ci_low,
            "headline_high": None if m is None else m.ci_high,
            "duration_s": None if duration is None else float(duration),
        }

    def __repr__(self) -> str:
        """One line: which run, the verdict, the headline number and the counts (the fields are
        many and long; ``to_dict()`` shows them all)."""
        name, m = self.headline()
        value = "n/a" if m is None or m.value is None else f"{m.value:.4f}"
        if m is not None and m.ci_low is not None and m.ci_high is not None:
            value += f" [{m.ci_low:.4f}, {m.ci_high:.4f}]"
        verdict = "no verdict" if self.verdict is None else self.verdict.status
        return (
            f"<ValidationResult {self.model.name}@{self.model.number} on "
            f"{self.dataset.name}@{self.dataset.number}: {str(verdict).upper()}, {name} {value}, "
            f"{self.n_items:,} items, {self.n_failed:,} not judged, run {self.run_id[:12]}>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``result.json`` document."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "run_id": self.run_id,
            "status": self.status,
            "model": self.model.to_dict(),
            "dataset": self.dataset.to_dict(),
            "dataset_kind": self.dataset_kind,
            "n_items": self.n_items,
            "n_judged": self.n_judged,
            "n_failed": self.n_failed,
            "n_reused": self.n_reused,
            "n_inferred": self.n_inferred,
            "n_split_batches": self.n_split_batches,
            "n_split_items": self.n_split_items,
            "labels": list(self.labels),
            "label_counts": self.label_counts,
            "metrics": {
                **{name: m.to_dict() for name, m in self.metrics.items()},
                "per_class": {
                    label: {name: m.to_dict() for name, m in values.items()}
                    for label, values in self.per_class.items()
                },
            },
            "confusion_matrix": self.confusion_matrix,
            "reliability": self.reliability,
            "curves": self.curves,
            "error_examples": self.error_examples,
            "failures": self.failures,
            "timings": self.timings,
            "environment": self.environment,
            "config": self.config,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "slices": self.slices,
            "operating_point": self.operating_point,
            "error_slices": self.error_slices,
            "error_slice_search": self.error_slice_search,
            "doubtful_labels": self.doubtful_labels,
            "expert_agreement": self.expert_agreement,
            "error_groups": self.error_groups,
            "profile": self.profile,
            "operating_sweep": None
            if self.operating_sweep is None
            else self.operating_sweep.to_dict(),
            "comparison": self.comparison,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "reuse": self.reuse,
            **({"leakage": self.leakage} if self.leakage is not None else {}),
            **({"coverage": self.coverage} if self.coverage is not None else {}),
            **({"reuse_budget": self.reuse_budget} if self.reuse_budget is not None else {}),
            **({"task": self.task} if self.task is not None else {}),
            **({"threshold": self.threshold} if self.threshold is not None else {}),
            **(
                {"recorded_predictions": self.recorded_predictions}
                if self.recorded_predictions is not None
                else {}
            ),
            **(
                {"label_corrections": self.label_corrections}
                if self.label_corrections is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        """Read a ``result.json`` document back."""
        metrics = dict(data["metrics"])
        per_class = metrics.pop("per_class", {})
        return cls(
            run_id=data["run_id"],
            model=ArtifactRef.from_dict(data["model"]),
            dataset=ArtifactRef.from_dict(data["dataset"]),
            labels=tuple(data["labels"]),
            n_items=int(data["n_items"]),
            n_failed=int(data["n_failed"]),
            n_reused=int(data.get("n_reused") or 0),
            n_inferred=None if data.get("n_inferred") is None else int(data["n_inferred"]),
            reuse=data.get("reuse"),
            n_split_batches=int(data.get("n_split_batches") or 0),
            n_split_items=int(data.get("n_split_items") or 0),
            leakage=data.get("leakage"),
            coverage=data.get("coverage"),
            reuse_budget=data.get("reuse_budget"),
            metrics={k: MetricValue.from_dict(v) for k, v in metrics.items()},
            per_class={
                label: {k: MetricValue.from_dict(v) for k, v in values.items()}
                for label, values in per_class.items()
            },
            confusion_matrix=data["confusion_matrix"],
            dataset_kind=data.get("dataset_kind", "tabular"),
            reliability=data.get("reliability", []),
            curves=data.get("curves", {}),
            error_examples=data.get("error_examples", []),
            failures=data.get("failures", {}),
            label_counts=data.get("label_counts", {}),
            timings=data.get("timings", {}),
            environment=data.get("environment", {}),
            config=data.get("config", {}),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at", ""),
            status=data.get("status", "finished"),
            comparison=data.get("comparison"),
            verdict=None if data.get("verdict") is None else Verdict.from_dict(data["verdict"]),
            slices=data.get("slices", []),
            operating_point=data.get("operating_point"),
            error_slices=data.get("error_slices", []),
            error_slice_search=data.get("error_slice_search"),
            doubtful_labels=data.get("doubtful_labels"),
            expert_agreement=data.get("expert_agreement"),
            error_groups=data.get("error_groups"),
            profile=data.get("profile"),
            operating_sweep=None
            if data.get("operating_sweep") is None
            else OperatingSweeps.from_dict(data["operating_sweep"]),
            task=data.get("task"),
            threshold=data.get("threshold"),
            recorded_predictions=data.get("recorded_predictions"),
            label_corrections=data.get("label_corrections"),
        )
