"""One package per task (classification, detection, segmentation, anomaly) and ``task_for``."""

from __future__ import annotations

from assay.core.spec import ModelSpec
from assay.core.tasks.base import Judged, Task


def task_for(spec: ModelSpec) -> Task:
    """The task that reads and judges this model's output."""
    if spec.task == "detection":
        from assay.core.tasks.detection.task import DetectionTask

        return DetectionTask(spec)
    if spec.task == "segmentation":
        from assay.core.tasks.segmentation.task import SegmentationTask

        return SegmentationTask(spec)
    if spec.task == "anomaly":
        from assay.core.tasks.anomaly.task import AnomalyTask

        return AnomalyTask(spec)
    from assay.core.tasks.classification import ClassificationTask

    return ClassificationTask(spec)


def item_spec(spec: ModelSpec) -> ModelSpec:
    """The spec of the item-level decision, as a binary classifier's: what comparison, slices,
    verdicts, error groups and doubtful labels read (classification: the spec itself)."""
    if spec.task == "classification":
        return spec
    if spec.task == "anomaly":
        good = spec.negative or spec.labels[0]
        defect = next(label for label in spec.labels if label != good)
    else:
        good, defect = task_for(spec).item_labels
    return ModelSpec(labels=(good, defect), input=spec.input, positive=defect, negative=good)


__all__ = ["Judged", "Task", "item_spec", "task_for"]
