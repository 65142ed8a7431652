"""ModelSpec: how to feed a model and how to read what it returns.

A spec is parsed from a plain mapping (the YAML file is read by the caller) and every error names
the offending field, so that ``assay model add`` can say exactly what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assay.core.errors import InputError

Color = Literal["grayscale", "rgb", "bgr"]
Layout = Literal["NCHW", "NHWC"]
# "labels": the model gives a class per item and no scores (recorded predictions with only a
# ``predicted`` column); the metrics that need scores are then unavailable.
OutputKind = Literal["probabilities", "logits", "labels"]
TaskName = Literal["classification", "detection", "segmentation", "anomaly"]
BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
TASKS = ("classification", "detection", "segmentation", "anomaly")
MissingPolicy = Literal["error", "allow"]


@dataclass(frozen=True)
class ImageInput:
    """Image preprocessing: decode, convert colour, resize if needed, scale, normalise, lay out."""

    size: tuple[int, int]  # height, width
    color: Color = "rgb"
    layout: Layout = "NCHW"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    name: str | None = None  # the model input to feed; the first one when omitted
    # "exact": every image decoded whole, then resized (what a plain Pillow pipeline feeds);
    # "draft": a JPEG larger than the input is decoded at a fraction of its size by the decoder
    # itself (DCT scaling), several times faster on large scans but a few grey levels off.
    decode: Literal["exact", "draft"] = "exact"

    kind: Literal["image"] = "image"

    @property
    def channels(self) -> int:
        return 1 if self.color == "grayscale" else 3


@dataclass(frozen=True)
class TabularInput:
    """Table rows: the named columns, in order, as a float32 matrix [N, len(columns)]."""

    columns: tuple[str, ...]
    # "error": a row with a missing (NaN/null) feature is recorded as failed, never imputed silently.
    # "allow": NaN is passed through, for models that handle missing values themselves.
    missing: MissingPolicy = "error"
    name: str | None = None

    kind: Literal["tabular"] = "tabular"


@dataclass(frozen=True)
class RecordedInput:
    """Nothing is fed: the model's predictions were recorded elsewhere (on the scanner, by a
    TensorRT engine...) and are looked up by item id."""

    name: None = None

    kind: Literal["recorded"] = "recorded"


ModelInput = ImageInput | TabularInput | RecordedInput


@dataclass(frozen=True)
class OutputSpec:
    """Which model outputs the task reads, and how.

    Classification and segmentation read ``name`` ([N, K] or [N, K, H, W] class scores, as
    ``kind`` says). Detection reads ``boxes`` [N, D, 4], ``scores`` [N, D] and ``classes`` [N, D]
    (a detection whose class is negative is padding), boxes in ``box_format``, in the model
    input's pixels or, ``normalized``, as fractions of its width and height. Anomaly reads an
    image ``score`` [N] and/or an anomaly ``map`` [N, H, W] (an image's score is then its map's
    maximum).
    """

    name: str | None = None
    kind: OutputKind = "probabilities"
    # A model output holding a feature vector per item (e.g. the penultimate layer): misclassified
    # items are grouped by similarity on it. None: images are grouped on image descriptors.
    embedding: str | None = None
    boxes: str | None = None
    scores: str | None = None
    classes: str | None = None
    box_format: BoxFormat = "xyxy"
    normalized: bool = False
    score: str | None = None
    map: str | None = None


@dataclass(frozen=True)
class EndpointSpec:
    """How a model behind an inference server is called (``assay.runtimes.endpoint``)."""

    concurrency: int = 4  # requests in flight at once
    timeout_s: float = 30.0  # per request
    retries: int = 3  # after a failed request: connection errors, timeouts, 429 and 5xx
    backoff_s: float = 0.5  # the first retry's wait, doubled at each further one
    max_batch: int = 64  # items per request

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "backoff_s": self.backoff_s,
            "max_batch": self.max_batch,
        }


# Names of the good class of a binary inspection (compared in lower case, letters and digits
# only: "No defect" is "nodefect"); "io" is German "in Ordnung".
GOOD_NAMES = frozenset(
    {"good", "ok", "okay", "pass", "passed", "normal", "nominal", "nodefect", "nodefects",
     "defectfree", "accept", "accepted", "acceptable", "conforming", "intact", "healthy", "clean", "io"}
)  # fmt: skip


# Names of defects and rejects: a label naming one negated ("non_defect", "no crack",
# "undamaged", "fault-free") is the good class.
DEFECT_NAMES = frozenset(
    {"defect", "defects", "defective", "damage", "damaged", "crack", "cracks", "cracked",
     "fault", "faults", "faulty", "flaw", "flaws", "flawed", "scrap", "scrapped", "reject",
     "rejected", "anomaly", "anomalies", "anomalous", "bad", "ng", "nok", "fail", "failed",
     "failure", "error", "errors", "scratch", "scratches", "scratched", "dent", "dents",
     "dented", "burr", "burrs", "blemish", "blemishes", "nonconforming", "notok", "nogood"}
)  # fmt: skip
_NEGATIONS = ("non", "not", "no", "un", "without", "zero")
# What a good word may qualify and stay the good class ("good part", "part_ok").
_THINGS = frozenset(
    {"part", "parts", "item", "items", "piece", "pieces", "product", "products", "unit",
     "units", "sample", "samples", "image", "images", "surface", "cable", "weld", "tile"}
)  # fmt: skip


def _plain(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch.isalnum())


def _words(label: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def is_good_name(label: str) -> bool:
    """Whether ``label`` names the good class: ``ok``, ``no defect``, ``non_defect``,
    ``undamaged``, ``fault-free``, ``good part``. A review's ``[defect, non_defect]`` (the
    order scikit-learn sorts them in) took ``non_defect`` as the defect class by position, and a
    model missing 37% of the defects passed ``missed_defect_rate <= 0.1``."""
    plain = _plain(label)
    if plain in GOOD_NAMES:
        return True
    if plain.endswith("free") and plain[: -len("free")] in DEFECT_NAMES:
        return True
    if any(plain.startswith(n) and plain[len(n) :] in DEFECT_NAMES for n in _NEGATIONS):
        return True
    words = _words(label)
    # "good part", "ok_item": a good word and the thing it qualifies, nothing else ("OK_rework",
    # "Pass_marginal" are grades of their own, and took the good class from "ok": a review).
    if len(words) != 2:
        return False
    first, second = words
    return (first in GOOD_NAMES and second in _THINGS) or (
        second in GOOD_NAMES and first in _THINGS
    )


@dataclass(frozen=True)
class ModelSpec:
    """Task, class names in output-index order, input preprocessing and output interpretation."""

    labels: tuple[str, ...]
    input: ModelInput
    output: OutputSpec = field(default_factory=OutputSpec)
    task: TaskName = "classification"
    # Binary decision rule: predict ``positive`` when its score >= threshold; otherwise argmax.
    # Detection: the score from which a model box counts as a found object (default 0.5).
    # Anomaly: the score from which an image is called anomalous (else calibrated).
    threshold: float | None = None
    # Detection: the IoU at which a model box finds an expert box; segmentation: the image IoU
    # from which an image is right (both default 0.5).
    iou_threshold: float = 0.5
    # Segmentation: how far (pixels of the model's mask) a class edge may lie from the experts'
    # and still count, for boundary F1.
    boundary_tolerance: int = 2
    positive: str | None = None
    # The "good" class (e.g. ok): false alarms are good items flagged, missed defects the reverse.
    negative: str | None = None
    # skops files: types beyond the data types Assay trusts, each one reviewed by the user
    # (``assay model add --show-types``) before it may be loaded.
    trusted_types: tuple[str, ...] = ()
    # Models behind an inference server: how they are called (None: the defaults).
    endpoint: EndpointSpec | None = None

    @property
    def negative_index(self) -> int | None:
        """The good class: named in the spec, or for binary models the non-positive one."""
        if self.negative is not None:
            return self.labels.index(self.negative)
        pos = self.positive_index
        return None if pos is None else 1 - pos

    @property
    def recorded(self) -> bool:
        """The model's predictions were recorded elsewhere: nothing is fed to it."""
        return isinstance(self.input, RecordedInput)

    @property
    def has_scores(self) -> bool:
        """Whether the model gives class scores (not only a class per item)."""
        return self.output.kind != "labels"

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def positive_index(self) -> int | None:
        """Index of the positive class for binary models: the one named ``positive``, else the
        one that is not the named ``negative`` (the good class), else the second label."""
        if self.n_classes != 2:
            return None
        if self.positive is not None:
            return self.labels.index(self.positive)
        if self.negative is not None:
            return 1 - self.labels.index(self.negative)
        return 1

    def with_good_class(self) -> ModelSpec:
        """A binary classifier's spec with its good class named when the labels say which it
        is and the spec does not: ``labels: [defect, good]`` (scikit-learn's sorted
        ``classes_``) took ``good`` as the positive class by position, so the missed-defect
        rate counted missed good items, and a model missing half the defects passed
        ``missed_defect_rate <= 0.1`` (a review). Applied when a model is registered, so that
        the stored spec says it; a spec naming ``positive`` or ``negative`` is kept as is."""
        if (
            self.task != "classification"
            or self.n_classes != 2
            or self.positive is not None
            or self.negative is not None
        ):
            return self
        good = [label for label in self.labels if is_good_name(label)]
        if len(good) != 1:
            return self
        return dataclasses.replace(self, negative=good[0])

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, suitable for YAML/JSON and for ``parse_model_spec``."""
        inp: dict[str, Any]
        if isinstance(self.input, ImageInput):
            inp = {
                "kind": "image",
                "size": list(self.input.size),
                "color": self.input.color,
                "layout": self.input.layout,
                "scale": self.input.scale,
                "mean": list(self.input.mean),
                "std": list(self.input.std),
                # Only when set: a spec without it keeps its digest (and its model version).
                **({"decode": self.input.decode} if self.input.decode != "exact" else {}),
            }
        elif isinstance(self.input, TabularInput):
            inp = {
                "kind": "tabular",
                "columns": list(self.input.columns),
                "missing": self.input.missing,
            }
        else:
            inp = {"kind": "recorded"}
        if self.input.name is not None:
            inp["name"] = self.input.name
        o = self.output
        out: dict[str, Any]
        if self.task == "detection":
            out = {"boxes": o.boxes, "scores": o.scores, "classes": o.classes}
            out |= {"box_format": o.box_format, "normalized": o.normalized}
        elif self.task == "anomaly":
            out = {k: v for k, v in (("score", o.score), ("map", o.map)) if v is not None}
        else:
            out = {"kind": o.kind}
            if o.name is not None:
                out["name"] = o.name
            if o.embedding is not None:
                out["embedding"] = o.embedding
        data: dict[str, Any] = {
            "task": self.task,
            "labels": list(self.labels),
            "input": inp,
            "output": out,
        }
        if self.threshold is not None:
            data["threshold"] = self.threshold
        if self.positive is not None:
            data["positive"] = self.positive
        if self.negative is not None:
            data["good" if self.task == "anomaly" else "negative"] = self.negative
        if self.trusted_types:
            data["trusted_types"] = list(self.trusted_types)
        if self.endpoint is not None:
            data["endpoint"] = self.endpoint.to_dict()
        if self.task in ("detection", "segmentation"):
            data["iou_threshold"] = self.iou_threshold
        if self.task == "segmentation":
            data["boundary_tolerance"] = self.boundary_tolerance
        return data


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise InputError(f"spec: {where}{key} is required")
    return mapping[key]


def _choice(value: Any, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise InputError(f"spec: {where} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _floats(value: Any, where: str) -> tuple[float, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"spec: {where} must be a number or a list of numbers") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise InputError(f"spec: {where} must hold finite numbers")
    return out


def _known_keys(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise InputError(
            f"spec: unknown field {where}{unknown[0]} (allowed: {', '.join(sorted(allowed))})"
        )


# A model input of 8192 x 8192 x 3 float32 values is 768 MiB per item; batches shrink to fit
# (see ValidationConfig.batch_size_for), and nothing larger is accepted.
MAX_IMAGE_SIDE = 8192


def _parse_image_input(raw: Mapping[str, Any]) -> ImageInput:
    _known_keys(
        raw, {"kind", "size", "color", "layout", "scale", "mean", "std", "name", "decode"}, "input."
    )
    size = _require(raw, "size", "input.")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(s, int) and s > 0 for s in size)
    ):
        raise InputError("spec: input.size must be [height, width] with positive integers")
    if max(size) > MAX_IMAGE_SIDE:
        raise InputError(
            f"spec: input.size {list(size)} is over {MAX_IMAGE_SIDE} pixels a side; "
            "a model input that large would not fit in memory"
        )
    color = _choice(raw.get("color", "rgb"), ["grayscale", "rgb", "bgr"], "input.color")
    channels = 1 if color == "grayscale" else 3
    mean = _floats(raw.get("mean", [0.0]), "input.mean")
    std = _floats(raw.get("std", [1.0]), "input.std")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise InputError(
                f"spec: input.{name} has {len(values)} values but color {color} has {channels} "
                "channel(s)"
            )
    if any(s == 0 for s in std):
        raise InputError("spec: input.std must not contain 0")
    return ImageInput(
        size=(int(size[0]), int(size[1])),
        color=color,  # type: ignore[arg-type]
        layout=_choice(raw.get("layout", "NCHW"), ["NCHW", "NHWC"], "input.layout"),  # type: ignore[arg-type]
        scale=_floats(raw.get("scale", 1.0 / 255.0), "input.scale")[0],
        mean=mean,
        std=std,
        name=raw.get("name"),
        decode=_choice(raw.get("decode", "exact"), ["exact", "draft"], "input.decode"),  # type: ignore[arg-type]
    )


def _parse_tabular_input(raw: Mapping[str, Any]) -> TabularInput:
    _known_keys(raw, {"kind", "columns", "missing", "name"}, "input.")
    # Left out, a scikit-learn model fitted on a table names its own (feature_names_in_):
    # registration writes them into the stored spec; any other model is refused there.
    columns = raw.get("columns", [])
    if not isinstance(columns, list) or ("columns" in raw and not columns):
        raise InputError("spec: input.columns must be a non-empty list of column names")
    names = tuple(str(c) for c in columns)
    if len(set(names)) != len(names):
        raise InputError("spec: input.columns lists a column twice")
    missing = _choice(raw.get("missing", "error"), ["error", "allow"], "input.missing")
    return TabularInput(columns=names, missing=missing, name=raw.get("name"))  # type: ignore[arg-type]


def canonical_label(value: object) -> str:
    """One spelling of a class name, to tell two spellings of one class apart from two classes
    (``true``/``True``/YAML's ``true``; ``1``/``1.0``): used to explain a mismatch, never to
    rewrite a label (stored datasets, runs and specs keep theirs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.lower() in ("true", "false"):
        return text.lower()
    whole = _WHOLE.fullmatch(text)
    return whole.group(1) if whole else text


_WHOLE = re.compile(r"\+?(-?[0-9]+)\.0+")


def same_classes(model: Sequence[object], labels: Sequence[object]) -> bool:
    """Whether a model's classes, in its order, are the spec's labels as both mean them
    (``label_key``); where two classes of either side share a key (``A`` and ``a``), only as
    written: a key would hide a swap (a review's ``['A', 'a']`` against ``[a, A]``)."""
    if [str(c) for c in model] == [str(c) for c in labels]:
        return True
    theirs, ours = [label_key(c) for c in model], [label_key(c) for c in labels]
    distinct = len(set(theirs)) == len(theirs) and len(set(ours)) == len(ours)
    return distinct and theirs == ours


def label_key(value: object) -> str:
    """A class name as a model and a spec may both mean it, case, surrounding spaces and number
    spelling aside (``Defect`` and ``defect``, ``1.0`` and ``1``, numpy's ``True`` and YAML's
    ``true``): for matching a model's own classes with the spec's labels, in order. A model
    whose classes are ``['Defect', 'Good']`` and a spec ``[good, defect]`` is a swap."""
    return canonical_label(value).strip().casefold()


def parse_model_spec(raw: Any) -> ModelSpec:
    """Build a ModelSpec from a mapping (parsed YAML/JSON); raise InputError naming the bad field."""
    if not isinstance(raw, Mapping):
        raise InputError("spec: expected a mapping at the top level")
    _known_keys(
        raw,
        {
            "task",
            "labels",
            "input",
            "output",
            "threshold",
            "positive",
            "negative",
            "good",
            "trusted_types",
            "endpoint",
            "iou_threshold",
            "boundary_tolerance",
        },
        "",
    )
    task = _choice(raw.get("task", "classification"), TASKS, "task")
    labels = _require(raw, "labels", "")
    fewest = 1 if task == "detection" else 2
    if not isinstance(labels, list) or len(labels) < fewest:
        raise InputError(
            "spec: labels must be a list of at least "
            + ("one object class name" if fewest == 1 else "two class names")
        )
    names = tuple(str(label) for label in labels)
    if len(set(names)) != len(names):
        raise InputError("spec: labels must be distinct")
    inp = _require(raw, "input", "")
    if not isinstance(inp, Mapping):
        raise InputError("spec: input must be a mapping")
    kind = _choice(inp.get("kind"), ["image", "tabular", "recorded"], "input.kind")
    parsed_input: ModelInput
    if kind == "image":
        parsed_input = _parse_image_input(inp)
    elif kind == "tabular":
        parsed_input = _parse_tabular_input(inp)
    else:
        _known_keys(inp, {"kind"}, "input.")
        parsed_input = RecordedInput()
    out = raw.get("output", {}) or {}
    if not isinstance(out, Mapping):
        raise InputError("spec: output must be a mapping")
    recorded = isinstance(parsed_input, RecordedInput)
    if recorded and task == "segmentation":
        raise InputError("spec: recorded predictions serve classification, detection, anomaly")
    if task != "classification" and not (isinstance(parsed_input, ImageInput) or recorded):
        raise InputError(f"spec: task {task} takes images (input.kind image)")
    if task == "detection":
        if recorded:  # recorded boxes are COCO's: [x, y, width, height] in the image's pixels
            out = {"boxes": "boxes", "scores": "scores", "classes": "classes", **out}
            if out.setdefault("box_format", "xywh") != "xywh" or out.get("normalized", False):
                raise InputError("spec: recorded boxes are COCO's [x, y, w, h] in image pixels")
        return _task_spec(raw, task, names, parsed_input, _parse_detection_output(out))
    if task == "anomaly":
        if recorded:
            out = {"score": "score", **out}
            if "map" in out:
                raise InputError("spec: recorded anomaly predictions are image scores (no map)")
        return _task_spec(raw, task, names, parsed_input, _parse_anomaly_output(out))
    _known_keys(out, {"name", "kind", "embedding"}, "output.")
    if task == "segmentation":
        if "embedding" in out:
            raise InputError("spec: output.embedding applies to classification only")
        output = OutputSpec(
            name=_name(out.get("name"), "output.name"),
            kind=_choice(
                out.get("kind", "probabilities"), ["probabilities", "logits"], "output.kind"
            ),  # type: ignore[arg-type]
        )
        return _task_spec(raw, task, names, parsed_input, output)
    for key in ("iou_threshold", "good", "boundary_tolerance"):
        if key in raw:
            raise InputError(f"spec: {key} does not apply to task {task}")
    embedding = out.get("embedding")
    if embedding is not None and (not isinstance(embedding, str) or not embedding):
        raise InputError("spec: output.embedding must name a model output")
    if embedding is not None and embedding == out.get("name"):
        raise InputError("spec: output.embedding and output.name name the same output")
    kinds = ["probabilities", "logits"] + (["labels"] if recorded else [])
    output = OutputSpec(
        embedding=embedding,
        name=out.get("name"),
        kind=_choice(out.get("kind", "probabilities"), kinds, "output.kind"),  # type: ignore[arg-type]
    )
    if recorded and embedding is not None:
        raise InputError("spec: output.embedding needs a model to run; recorded ones have none")
    positive = raw.get("positive")
    if positive is not None:
        positive = str(positive)
        if positive not in names:
            raise InputError(f"spec: positive {positive!r} is not one of labels {list(names)}")
    negative = raw.get("negative")
    if negative is not None:
        negative = str(negative)
        if negative not in names:
            raise InputError(f"spec: negative {negative!r} is not one of labels {list(names)}")
        if negative == positive:
            raise InputError("spec: positive and negative name the same class")
    threshold = raw.get("threshold")
    if threshold is not None:
        threshold = _floats(threshold, "threshold")[0]
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"spec: threshold must lie in [0, 1], got {threshold}")
        if len(names) != 2:
            raise InputError("spec: threshold applies to binary models (two labels) only")
        if output.kind == "labels":
            raise InputError("spec: threshold needs class scores, and output.kind labels has none")
    trusted = raw.get("trusted_types", [])
    if not isinstance(trusted, list) or not all(
        isinstance(t, str) and _TYPE_NAME.fullmatch(t) for t in trusted
    ):
        raise InputError("spec: trusted_types is a list of dotted type names (module.Class)")
    return ModelSpec(
        labels=names,
        input=parsed_input,
        output=output,
        task=task,  # type: ignore[arg-type]
        threshold=threshold,
        positive=positive,
        negative=negative,
        trusted_types=tuple(sorted(set(trusted))),
        endpoint=_parse_endpoint(raw.get("endpoint")),
    )


def _parse_endpoint(raw: Any) -> EndpointSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InputError("spec: endpoint must be a mapping")
    _known_keys(raw, {"concurrency", "timeout_s", "retries", "backoff_s", "max_batch"}, "endpoint.")
    limits: dict[str, tuple[float, float, bool]] = {
        "concurrency": (1, 64, True),
        "timeout_s": (0.01, 600, False),
        "retries": (0, 10, True),
        "backoff_s": (0, 60, False),
        "max_batch": (1, 65_536, True),
    }
    values: dict[str, Any] = {}
    for key, value in raw.items():
        low, high, whole = limits[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (whole and value != int(value)) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise InputError(f"spec: endpoint.{key} must be {kind} from {low:g} to {high:g}")
        values[key] = int(value) if whole else float(value)
    return EndpointSpec(**values)


def _name(value: Any, where: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InputError(f"spec: {where} must name a model output")
    return value


def _parse_detection_output(out: Mapping[str, Any]) -> OutputSpec:
    _known_keys(out, {"boxes", "scores", "classes", "box_format", "normalized"}, "output.")
    names = {
        key: _name(_require(out, key, "output."), f"output.{key}")
        for key in ("boxes", "scores", "classes")
    }
    if len(set(names.values())) != 3:
        raise InputError(
            "spec: output.boxes, output.scores and output.classes must name three different outputs"
        )
    normalized = out.get("normalized", False)
    if not isinstance(normalized, bool):
        raise InputError("spec: output.normalized must be true or false")
    return OutputSpec(
        boxes=names["boxes"],
        scores=names["scores"],
        classes=names["classes"],
        box_format=_choice(
            out.get("box_format", "xyxy"), ["xyxy", "xywh", "cxcywh"], "output.box_format"
        ),  # type: ignore[arg-type]
        normalized=normalized,
    )


def _parse_anomaly_output(out: Mapping[str, Any]) -> OutputSpec:
    _known_keys(out, {"score", "map"}, "output.")
    score = _name(out.get("score"), "output.score")
    amap = _name(out.get("map"), "output.map")
    if score is None and amap is None:
        raise InputError("spec: an anomaly model names output.score, output.map or both")
    if score is not None and score == amap:
        raise InputError("spec: output.score and output.map name the same output")
    return OutputSpec(score=score, map=amap)


def _task_spec(
    raw: Mapping[str, Any],
    task: str,
    names: tuple[str, ...],
    parsed_input: ModelInput,
    output: OutputSpec,
) -> ModelSpec:
    """The spec of a detection, segmentation or anomaly model."""
    for key in ("positive", "trusted_types") + (("negative",) if task == "anomaly" else ()):
        if key in raw:
            raise InputError(f"spec: {key} does not apply to task {task}")
    if "good" in raw and task != "anomaly":
        raise InputError(f"spec: good does not apply to task {task}")
    tolerance = raw.get("boundary_tolerance", 2)
    if "boundary_tolerance" in raw and task != "segmentation":
        raise InputError(f"spec: boundary_tolerance does not apply to task {task}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= 64:
        raise InputError("spec: boundary_tolerance is a whole number of pixels, 0 to 64")
    iou = raw.get("iou_threshold", 0.5)
    if task == "anomaly" and "iou_threshold" in raw:
        raise InputError("spec: iou_threshold does not apply to task anomaly")
    iou = _floats(iou, "iou_threshold")[0]
    if not 0.0 < iou <= 1.0:
        raise InputError(f"spec: iou_threshold must lie in (0, 1], got {iou}")
    threshold = raw.get("threshold")
    if threshold is not None:
        if task == "segmentation":
            raise InputError(
                "spec: threshold does not apply to task segmentation (see iou_threshold)"
            )
        threshold = _floats(threshold, "threshold")[0]
        if task == "detection" and not 0.0 <= threshold <= 1.0:
            raise InputError(f"spec: threshold (a box score) must lie in [0, 1], got {threshold}")
    negative = raw.get("negative")
    if task == "anomaly":
        if len(names) != 2:
            raise InputError(
                "spec: an anomaly model's labels are two: the good class and the defect class"
            )
        good = str(raw.get("good", "good"))
        if good not in names:
            raise InputError(f"spec: good {good!r} is not one of labels {list(names)}")
        negative = good
    elif negative is not None:
        negative = str(negative)
        if negative not in names:
            raise InputError(f"spec: negative {negative!r} is not one of labels {list(names)}")
        if task == "detection":
            raise InputError(
                "spec: negative does not apply to task detection (no box is the good class)"
            )
    return ModelSpec(
        labels=names,
        input=parsed_input,
        output=output,
        task=task,  # type: ignore[arg-type]
        threshold=threshold,
        negative=negative,
        iou_threshold=iou,
        boundary_tolerance=tolerance,
    )


_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
