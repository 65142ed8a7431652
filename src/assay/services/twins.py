"""twin_reason: whether two model versions give the same outputs on every item.

A model is never its own baseline: nothing can change, and a PASS would read as evidence. Two
versions are the same model when they share the version digest (the same file and spec, under
two names), and also when the same file is read the same way and only what judges its outputs
differs in the spec: the good class, the IoU that counts a box found, the boundary tolerance,
the types a skops file may load. A changed threshold, input preprocessing, output reading or
class order changes what the model answers, and is a comparison worth making.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.core.records import ModelVersion
from assay.core.spec import parse_model_spec

# Spec fields that judge the outputs or gate loading, and change none of them.
JUDGING_ONLY = ("negative", "iou_threshold", "boundary_tolerance", "trusted_types")


def twin_reason(a: ModelVersion, b: ModelVersion) -> str | None:
    """Why ``a`` and ``b`` give the same outputs on every item; None when they may differ."""
    if a.version == b.version:
        return "the same file and spec"
    if a.runtime != b.runtime or _files(a) != _files(b):
        return None
    if _outputs(a) != _outputs(b):
        return None
    differ = sorted(k for k in set(a.spec) | set(b.spec) if a.spec.get(k) != b.spec.get(k))
    verb = "differs" if len(differ) == 1 else "differ"
    return f"the same file, read the same way; only {', '.join(differ)} {verb} in the spec"


def _files(mv: ModelVersion) -> tuple[str, tuple[tuple[str, str], ...]]:
    digest = str(mv.signature.get("file_sha256") or Path(mv.file_path).stem)
    companions = tuple(sorted((mv.signature.get("companions") or {}).items()))
    return digest, companions


# Spec fields naming the tensors to read: compared as the runtime resolved them, where the
# version recorded that (a spec naming the tensor the runtime picks by default reads the same).
TENSOR_NAMES = {"input": ("name",), "output": ("name", "embedding", "boxes", "scores", "classes",
                                              "score", "map")}  # fmt: skip


def _outputs(mv: ModelVersion) -> dict[str, Any]:
    """The spec without the fields that only judge; the positive class kept only where a
    threshold makes it decide (else the decision is the argmax), and named as resolved; the
    tensors read as the runtime resolved them."""
    spec = mv.spec
    kept = {k: v for k, v in spec.items() if k not in JUDGING_ONLY}
    resolved = mv.signature.get("resolved")
    if resolved is not None:
        for part, names in TENSOR_NAMES.items():
            if isinstance(kept.get(part), dict):
                kept[part] = {k: v for k, v in kept[part].items() if k not in names}
        kept["resolved"] = resolved
    kept.pop("positive", None)
    if spec.get("threshold") is not None:
        parsed = parse_model_spec(spec)
        index = parsed.positive_index
        kept["positive"] = None if index is None else parsed.labels[index]
        # 0.5 on the first of two probabilities is the argmax, ties included (both take the
        # first class): the same answers as no threshold.
        probabilities = (spec.get("output") or {}).get("kind", "probabilities") == "probabilities"
        if spec["threshold"] == 0.5 and index == 0 and probabilities and parsed.n_classes == 2:
            kept.pop("threshold")
            kept.pop("positive")
    if isinstance(kept.get("input"), dict):
        # One mean for every channel reads as that mean repeated (the values are broadcast).
        kept["input"] = {
            k: v[:1] if k in ("mean", "std") and isinstance(v, list) and len(set(v)) == 1 else v
            for k, v in kept["input"].items()
        }
    return kept
