"""ValidationConfig: how a validation run is carried out. Saved with the run's results."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from assay.core.errors import InputError
from assay.core.intervals import IntervalConfig

AUTO_EXACT_LIMIT = 250_000
# Six nines: a confidence a hair under 1 (0.9999999999999999) passed a "< 1" check and made
# the normal quantile of the intervals fail after the whole pass (a review).
MAX_CONFIDENCE = 0.999999
DEFAULT_CONFIDENCE = 0.95


# One batch of model input stays below this, whatever the image size and --batch-size say.
BATCH_MEMORY_BYTES = 1 << 30
# Table rows per batch by default: as many as fit this much model input, between the bounds. A
# cheap model (a tree ensemble on a few features) pays a fixed cost per call and per batch, in
# the runtime and in every accumulator: at 65,536 rows rather than 8,192, a 5-feature
# RandomForest's pass took 8.4 s instead of 9.5 s on 4M rows (benchmarks/throughput.py).
TABLE_BATCH_BYTES = 8 << 20
TABLE_BATCH_ROWS = (8192, 65_536)


# The master URLs Spark accepts (its SparkContext.createTaskScheduler), by their form.
SPARK_MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?"
    r"|local-cluster\[[1-9][0-9]*,[1-9][0-9]*,[1-9][0-9]*\]"
    r"|spark://[^\s/]+(,[^\s/]+)*|mesos://\S+|k8s://\S+|yarn"
)


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of one run; ``batch_size`` None picks 64 images, or 8,192 to 65,536 table rows
    per batch (as many as fit TABLE_BATCH_BYTES of model input)."""

    batch_size: int | None = None
    confidence: float = DEFAULT_CONFIDENCE
    n_resamples: int = 1000
    seed: int = 0
    # "auto": exact score histograms up to AUTO_EXACT_LIMIT items, a fine fixed grid beyond.
    auc_mode: Literal["auto", "exact", "binned"] = "auto"
    n_examples: int = 24
    threads: int | None = None
    # Exploratory analyses (error-slice search, doubtful labels): on by default; off for a
    # pipeline that only needs the metrics and the verdict on a very large dataset.
    explore: bool = True
    # The model profile (latency, throughput, memory) measured in a process of its own, for this
    # long per model (about 1.5x this in wall time, with the process start).
    profile: bool = True
    profile_seconds: float = 2.0
    # Where the pass runs: this process, or a Spark cluster (local[*] unless a master is given).
    engine: Literal["local", "spark"] = "local"
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()
    spark_rows_per_task: int = 200_000
    # How often a local pass checkpoints its states and commits its predictions, so that an
    # interrupted run resumes from there (0: after every batch). Each checkpoint ends a part of
    # predictions.parquet; the parts are joined when the run finishes.
    checkpoint_every_s: float = 60.0
    # Anomaly models: the false-alarm rate the threshold calibrated on good items aims at.
    false_alarm_rate: float = 0.01
    # Where the model runs: cpu, cuda or cuda:N, or a runtime's own device name (OpenVINO's GPU).
    device: str = "cpu"
    # Incremental validation: take a model version's recorded outputs for the items an earlier
    # run already judged with the same content (see assay.services.reuse); False: run them all.
    reuse: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.false_alarm_rate < 1.0:
            raise InputError(f"false-alarm rate must lie in (0, 1), got {self.false_alarm_rate}")
        if not self.device or any(c.isspace() for c in self.device):
            raise InputError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.engine not in ("local", "spark"):
            raise InputError(f"engine must be local or spark, got {self.engine!r}")
        if self.spark_rows_per_task < 1:
            raise InputError("spark rows per task must be at least 1")
        if self.spark_master is not None and not SPARK_MASTER.fullmatch(self.spark_master):
            # Spark itself says so with a Java stack trace, after the run is recorded.
            raise InputError(
                f"--spark-master {self.spark_master!r} is not a Spark master URL (local, "
                "local[4], local[*], spark://host:7077, yarn, k8s://https://host:443, "
                "mesos://host:5050, local-cluster[2,1,1024])"
            )
        if not 0.2 <= self.profile_seconds <= 600:
            raise InputError(f"profile time must lie in [0.2, 600] s, got {self.profile_seconds}")
        if not self.checkpoint_every_s >= 0:
            raise InputError(f"checkpoint interval must be >= 0 s, got {self.checkpoint_every_s}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError("batch size must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be a whole number from 0, got {self.seed}")
        if not 0.5 <= self.confidence <= MAX_CONFIDENCE:
            raise InputError(
                f"confidence must lie in [0.5, {MAX_CONFIDENCE}], got {self.confidence}"
            )
        if self.n_resamples < 100:
            raise InputError("at least 100 bootstrap resamples are needed for a 95% interval")
        if self.auc_mode not in ("auto", "exact", "binned"):
            raise InputError(f"auc mode must be auto, exact or binned, got {self.auc_mode!r}")

    @property
    def intervals(self) -> IntervalConfig:
        return IntervalConfig(self.confidence, self.n_resamples, self.seed)

    def auc_mode_for(self, n_items: int) -> Literal["exact", "binned"]:
        """Exact ROC/PR histograms cost a sort of every score; past a size, a 65,536-bin grid
        (AUC within about 1e-5 of exact) keeps time and memory flat."""
        if self.auc_mode == "auto":
            return "exact" if n_items <= AUTO_EXACT_LIMIT else "binned"
        return self.auc_mode

    def batch_size_for(self, kind: str, item_bytes: int = 0) -> int:
        """Items per batch: as asked, else 64 images or TABLE_BATCH_BYTES of table rows (within
        TABLE_BATCH_ROWS); never so many that one batch's model input (``item_bytes`` each)
        exceeds BATCH_MEMORY_BYTES."""
        low, high = TABLE_BATCH_ROWS
        wanted = (
            self.batch_size
            if self.batch_size is not None
            else 64
            if kind == "image"
            else min(high, max(low, TABLE_BATCH_BYTES // max(1, item_bytes)))
        )
        if item_bytes <= 0:
            return wanted
        return max(1, min(wanted, BATCH_MEMORY_BYTES // item_bytes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ValidationConfig:
        """The config of a stored run (fields Assay no longer knows are ignored)."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        kept["spark_conf"] = tuple(tuple(kv) for kv in kept.get("spark_conf", ()))
        return cls(**kept)
