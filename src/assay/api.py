"""The Python API for notebooks and pipelines: the same services the CLI uses.

>>> import assay
>>> assay.add_dataset("tiles", "./tiles")
>>> assay.add_model("scanner", "scanner.onnx", spec="scanner.yaml")
>>> v = assay.validate(model="scanner", dataset="tiles")
>>> v.metrics["accuracy"].value
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.core.config import ValidationConfig
from assay.core.errors import InputError, did_you_mean
from assay.core.metric_value import MetricValue
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.results import ValidationResult
from assay.reports.notebook import render_notebook_html
from assay.reports.progress import progress_display
from assay.services import datasets as dataset_service
from assay.services import models as model_service
from assay.services import validation as validation_service
from assay.services.workspace import Workspace


def _ws(home: Path | str | None, create: bool = True) -> Workspace:
    """The store at ``home``; one to read from (``create`` False) must exist already."""
    return Workspace.open(home, create=create)


def _ref(value: object, what: str) -> str:
    """A model or dataset reference (NAME, NAME@N, NAME@alias), checked before any lookup."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} is a name like 'scanner' or 'scanner@3', got {value!r}")
    return value


def _path(value: object, what: str, hint: str = "", optional: bool = False) -> Any:
    """A path given as ``str`` or ``os.PathLike`` (``None`` when ``optional``); anything else
    is one line naming it, where pathlib raised a TypeError (a DataFrame passed as a dataset)."""
    if (value is None and optional) or isinstance(value, str | os.PathLike):
        return value
    kind = type(value).__name__
    raise InputError(
        f"{what} is a path (a str or a Path), got a {kind}" + (f": {hint}" if hint else "")
    )


def _name(value: object, what: str) -> Any:
    """An optional column name."""
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{what} is one column's name (a str), got {value!r}"[:300])


def _config(config: object) -> ValidationConfig | None:
    """``config`` as a ValidationConfig: a mapping of its fields is one (``{"engine": "spark"}``
    raised an AttributeError deep in a run), anything else is refused."""
    if config is None or isinstance(config, ValidationConfig):
        return config
    if isinstance(config, dict):
        known = {f.name for f in dataclasses.fields(ValidationConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise InputError(
                f"config: unknown field {unknown[0]!r}" + did_you_mean(unknown[0], sorted(known))
            )
        for key, value in config.items():
            _check_field(key, value)
        try:
            return ValidationConfig(**config)
        except TypeError as exc:
            raise InputError(f"config: {exc}") from None
    raise InputError(f"config is a ValidationConfig or a mapping of its fields, got {config!r}")


# What each plain field of ValidationConfig holds (its annotations are text here).
_KINDS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_field(key: str, value: object) -> None:
    """A config field's value of its declared kind: ``{"confidence": "high"}`` gave Python's
    "'<=' not supported between instances of 'float' and 'str'" (a review)."""
    declared = str(next(f.type for f in dataclasses.fields(ValidationConfig) if f.name == key))
    kinds = [k.strip() for k in declared.split("|")]
    if value is None and "None" in kinds:
        return
    plain = [k for k in kinds if k != "None"]
    if len(plain) != 1 or plain[0] not in _KINDS:
        return  # Literal and tuple fields: checked by ValidationConfig itself
    ok = isinstance(value, _KINDS[plain[0]]) and (plain[0] == "bool" or not isinstance(value, bool))
    if not ok:
        raise InputError(f"config: {key} is {' or '.join(kinds)}, got {value!r}"[:300])


def _slices(slices: object) -> tuple[str, ...]:
    """Slice specs as a tuple: one given as a string is one slice, not one per character
    (``slices="camera"`` became slices 'c', 'a', ...)."""
    if isinstance(slices, str):
        return (slices,)
    if not isinstance(slices, list | tuple) or not all(isinstance(s, str) for s in slices):
        raise InputError(f"slices is a list of slice specs like 'camera', got {slices!r}")
    return tuple(slices)


def add_dataset(
    name: str,
    path: Path | str,
    *,
    format: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    annotations: Path | str | None = None,
    home: Path | str | None = None,
) -> DatasetVersion:
    """Register a dataset version (identical content returns the existing version).

    ``annotations``: a long table (item_id, annotator, label) when several experts label each item.
    """
    path = _path(path, "path", "write a DataFrame to a file first (df.to_parquet('t.parquet'))")
    annotations = _path(annotations, "annotations", "a file of (item_id, annotator, label)", True)
    home = _path(home, "home", optional=True)
    label_column, id_column = _name(label_column, "label_column"), _name(id_column, "id_column")
    return dataset_service.register_dataset(
        _ws(home), name, path, format, label_column, id_column, annotations
    ).dataset


def add_model(
    name: str,
    file: Path | str,
    *,
    spec: Path | str | dict[str, Any],
    home: Path | str | None = None,
) -> ModelVersion:
    """Register a model version after checking it against its spec (a YAML path or a mapping)."""
    file = _path(
        file, "file", "save a fitted scikit-learn model with skops.io.dump(model, 'm.skops')"
    )
    if isinstance(spec, dict):
        spec = _plain(spec)
    else:
        spec = _path(spec, "spec", "a YAML file's path, or a mapping")
    home = _path(home, "home", optional=True)
    return model_service.register_model(_ws(home), name, file, spec).model


def _plain(value: Any) -> Any:
    """A mapping as YAML would give it: tuples and numpy arrays as lists, numpy numbers as
    Python's (``labels=model.classes_`` was refused as "must be a list")."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, pandas' Index
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return _plain(tolist())
    return value


@dataclass
class Validation:
    """A finished validation: the result plus its files; renders as HTML in Jupyter."""

    result: ValidationResult
    files: dict[str, Path]

    @property
    def metrics(self) -> dict[str, MetricValue]:
        return self.result.metrics

    @property
    def per_class(self) -> dict[str, dict[str, MetricValue]]:
        return self.result.per_class

    @property
    def passed(self) -> bool:
        """Whether the verdict passed (the default policy applies when none was given)."""
        return self.result.verdict is not None and self.result.verdict.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()

    def __repr__(self) -> str:
        report = self.files.get("report.html")
        return repr(self.result).replace("<ValidationResult", "<Validation", 1)[:-1] + (
            f", report {report}>" if report is not None else ">"
        )

    def _repr_html_(self) -> str:
        return render_notebook_html(self.result, self.files.get("report.html"))


def validate(
    *,
    model: str,
    dataset: str,
    out: Path | str | None = None,
    config: ValidationConfig | dict[str, Any] | None = None,
    baseline: str | None = None,
    policy: Path | str | dict[str, Any] | None = None,
    slices: tuple[str, ...] | list[str] | str = (),
    overwrite: bool = False,
    progress: bool | None = None,
    home: Path | str | None = None,
) -> Validation:
    """Validate ``model`` (NAME, NAME@VERSION or NAME@alias) on ``dataset``; see ``assay validate``.

    ``baseline`` is the model in production to compare with; ``policy`` a policy file or mapping;
    ``config`` a ValidationConfig or a mapping of its fields; ``slices`` slice specs (one may be
    given as a string).
    The verdict is in ``result.verdict`` (and ``passed``): a ``Verdict`` with ``status``,
    ``blocking``, ``summary`` and ``checks`` (each a ``CheckResult``: ``name``, ``status``,
    ``value``, ``reason``...); ``result.to_dict()["verdict"]`` is result.json's mapping. Nothing
    is raised when it fails.
    ``progress``: show how far the pass has got (default: in a Jupyter notebook only).
    """
    model, dataset = _ref(model, "model"), _ref(dataset, "dataset")
    if baseline is not None:
        baseline = _ref(baseline, "baseline")
    config = _config(config)
    slices = _slices(slices)
    out = _path(out, "out", optional=True)
    home = _path(home, "home", optional=True)
    if policy is not None and not isinstance(policy, dict):
        policy = _path(policy, "policy", "a YAML file's path, or a mapping")
    if not isinstance(overwrite, bool):  # "no" is truthy: it overwrote the folder
        raise InputError(f"overwrite is True or False, got {overwrite!r}")
    with progress_display(progress) as (on_start, on_progress, on_stage):
        outcome = validation_service.validate(
            _ws(home, create=False),
            model,
            dataset,
            out,
            config,
            on_start=on_start,
            on_progress=on_progress,
            on_stage=on_stage,
            baseline=baseline,
            policy=policy,
            slices=slices,
            overwrite=overwrite,
            origin="python",
        )
    return Validation(outcome.result, outcome.files)


def compare(
    *,
    candidate: str,
    baseline: str,
    policy: Path | str | dict[str, Any] | None = None,
    out: Path | str | None = None,
    overwrite: bool = False,
    home: Path | str | None = None,
) -> Validation:
    """Judge one finished run against another on the same dataset version, item by item (run
    ids, or unique prefixes); see ``assay compare``. The verdict is the candidate's under
    ``policy``; the files go to ``out`` (default: ``comparisons/`` in the store)."""
    from assay.services.compare_runs import compare_runs

    candidate, baseline = _ref(candidate, "candidate"), _ref(baseline, "baseline")
    out = _path(out, "out", optional=True)
    home = _path(home, "home", optional=True)
    if policy is not None and not isinstance(policy, dict):
        policy = _path(policy, "policy", "a YAML file's path, or a mapping")
    if not isinstance(overwrite, bool):
        raise InputError(f"overwrite is True or False, got {overwrite!r}")
    outcome = compare_runs(_ws(home, create=False), candidate, baseline, policy, out, overwrite)
    return Validation(outcome.result, outcome.files)


@dataclass
class History:
    """The item history of a dataset (see ``assay history``): ``summary`` is history.json's
    mapping (versions, broken, never right, flip-flops, churn with intervals); ``table()`` the
    whole matrix, an item per row (history.parquet)."""

    summary: dict[str, Any]
    _history: Any

    def table(self) -> Any:
        """The matrix as a pyarrow Table: ``item_id``, ``label``, ``outcome:<model>`` and
        ``predicted:<model>`` per version (``.to_pandas()`` for a DataFrame)."""
        return self._history.to_table()

    def __repr__(self) -> str:
        s = self.summary
        versions = ", ".join(v["model"] for v in s["versions"])
        return (
            f"<History {s['dataset']}: {s['n_items']:,} items, versions {versions}; "
            f"candidate {s['candidate']} breaks {s['broken']['n']}, never right "
            f"{s['never_right']['n']}, flip back and forth {s['flip_flop']['n']}>"
        )


def history(
    dataset: str,
    *,
    model: str | None = None,
    candidate: str | None = None,
    limit: int = 50,
    home: Path | str | None = None,
) -> History:
    """How each item of ``dataset`` (a name: every version) fared under every model version
    validated on it (or those named ``model``); ``candidate`` (NAME@N) is the version whose
    broken items are counted (default: the newest); ``limit`` items are listed per list."""
    from assay.services.history import item_history

    dataset = _ref(dataset, "dataset")
    model = _name(model, "model")
    if candidate is not None:
        candidate = _ref(candidate, "candidate")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InputError(f"limit is a whole number, 0 or more, got {limit!r}")
    home = _path(home, "home", optional=True)
    found = item_history(_ws(home, create=False), dataset, model, candidate)
    return History(found.summary(limit), found)


def list_runs(
    *,
    model: str | None = None,
    dataset: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
    limit: int = 50,
    home: Path | str | None = None,
) -> list[dict[str, Any]]:
    """The runs, newest first, as ``assay run list`` shows them (each a mapping: ``id``,
    ``status``, ``model``, ``dataset``, ``verdict``, ``headline``, ...); filtered by model
    (NAME or NAME@N), dataset, verdict (pass, fail, inconclusive, none) and status."""
    from assay.core.records import RunQuery
    from assay.services.runs import run_page

    for what, value in (("model", model), ("dataset", dataset), ("verdict", verdict),
                        ("status", status)):  # fmt: skip
        if value is not None and not isinstance(value, str):
            raise InputError(f"{what} is a str, got {value!r}"[:300])
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InputError(f"limit is a whole number, got {limit!r}")
    home = _path(home, "home", optional=True)
    query = RunQuery(model=model, dataset=dataset, verdict=verdict, status=status, limit=limit)
    return [row.to_dict() for row in run_page(_ws(home, create=False), query).runs]


def list_datasets(*, home: Path | str | None = None) -> list[DatasetVersion]:
    """Every registered dataset version, by name and number."""
    home = _path(home, "home", optional=True)
    return dataset_service.list_datasets(_ws(home, create=False))


def list_models(*, home: Path | str | None = None) -> list[ModelVersion]:
    """Every registered model version, by name and number."""
    home = _path(home, "home", optional=True)
    return model_service.list_models(_ws(home, create=False))
