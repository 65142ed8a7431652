"""One package per task (classification, detection, segmentation, anomaly) and ``task_for``."""

from __future__ import annotations

from assay.core.spec import ModelSpec
from assay.core.tasks.base import Judged, Task


def task_for(spec: ModelSpec) -> Task:
    """The task that reads and judges this model's output."""
    from assay.core.tasks.classification import ClassificationTask

    return ClassificationTask(spec)


__all__ = ["Judged", "Task", "task_for"]
