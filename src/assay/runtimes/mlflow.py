"""Models from an MLflow registry: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or
``runs:/RUN_ID/PATH``, from the tracking server that ``MLFLOW_TRACKING_URI`` names.

The model is resolved once, at ``assay model add``: the registry says which version an alias
points at and which run made it, the artifacts are downloaded, and the model's ONNX file is stored,
digested and checked like any model file, with its provenance (registry name, version, alias, run
id) in its signature. Later validations never call the registry again: they judge what was
registered, even offline, and a moved alias is a new registration, not a silent change.

Only the ``onnx`` flavour is loaded: MLflow's other flavours (``sklearn``, ``pytorch``,
``python_function``) load by unpickling, which runs code from the file; they are refused with the
way out (log the model with ``mlflow.onnx``). The MLmodel's signature, when it has one, is checked
against the spec: column names and order, or the tensor's shape, and the number of scores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assay.core.errors import InputError, one_line
from assay.core.spec import ModelSpec, TabularInput
from assay.runtimes.base import expected_input_shape

SCHEMES = ("models:/", "runs:/")


def is_mlflow_uri(text: str) -> bool:
    return text.startswith(SCHEMES)


@dataclass(frozen=True)
class MlflowModel:
    onnx: Path  # the downloaded ONNX file (inside ``folder``)
    provenance: dict[str, Any]
    folder: Path


def fetch(uri: str, spec: ModelSpec, folder: Path) -> MlflowModel:
    """Resolve ``uri`` in the registry, download it into ``folder`` and check it against the
    spec; InputError naming what is wrong (an unknown alias, an unsafe flavour, a mismatch)."""
    # Plants are offline: MLflow's usage telemetry stays off unless the user turned it on.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Its progress bars would break the CLI's one line per problem.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        import mlflow
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise InputError(
            "models from MLflow need the mlflow client (pip install 'assay[mlflow]')"
        ) from None
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking:
        raise InputError(f"{uri}: set MLFLOW_TRACKING_URI to the tracking server's URL")
    client = MlflowClient(tracking_uri=tracking)
    provenance: dict[str, Any] = {"uri": uri, "tracking_uri": tracking}
    try:
        source = _resolve(client, uri, provenance)
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(folder), tracking_uri=tracking
        )
    except MlflowException as exc:
        raise InputError(f"{uri}: {one_line(exc.message, 300)}") from None
    except OSError as exc:
        raise InputError(f"{uri}: cannot reach {tracking} ({one_line(str(exc), 200)})") from None
    root = Path(path)
    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        raise InputError(f"{uri} is not an MLflow model (no MLmodel file)")
    try:
        meta = yaml.safe_load(mlmodel.read_text()) or {}
        if not isinstance(meta, dict):
            raise yaml.YAMLError("not a mapping")
        _check_signature(meta.get("signature"), spec, uri)
    except yaml.YAMLError as exc:
        raise InputError(
            f"{uri}: its MLmodel file cannot be read ({one_line(str(exc), 200)})"
        ) from None
    flavors = sorted((meta.get("flavors") or {}).keys())
    provenance["flavors"] = flavors
    onnx = (meta.get("flavors") or {}).get("onnx")
    if onnx is None:
        raise InputError(
            f"{uri} has flavours {flavors}, which load by unpickling (code from the file runs); "
            "log it with mlflow.onnx.log_model, or export it to ONNX and add the file"
        )
    file = root / str(onnx.get("data", "model.onnx"))
    if not file.is_file() or root.resolve() not in file.resolve().parents:
        raise InputError(f"{uri}: its ONNX file {onnx.get('data')!r} is missing")
    provenance["signature"] = meta.get("signature")
    return MlflowModel(file, provenance, folder)


def _resolve(client: Any, uri: str, provenance: dict[str, Any]) -> str:
    """The artifact URI of the model ``uri`` names; the registry's facts into ``provenance``."""
    if uri.startswith("runs:/"):
        run_id = uri.removeprefix("runs:/").split("/", 1)[0]
        client.get_run(run_id)  # an unknown run fails here, with MLflow's message
        provenance["run_id"] = run_id
        return uri
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        try:
            version = client.get_model_version_by_alias(name, alias)
        except Exception as exc:  # MlflowException: re-raised with the aliases that exist
            aliases = _aliases(client, name)
            raise InputError(
                f"{uri}: model {name!r} has no alias {alias!r}"
                + (f" (aliases: {', '.join(aliases)})" if aliases else "")
                + f" [{type(exc).__name__}]"
            ) from None
        provenance["alias"] = alias
    else:
        name, _, number = rest.partition("/")
        if not number.isdigit():
            raise InputError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        version = client.get_model_version(name, number)
    provenance |= {"name": name, "version": str(version.version), "run_id": version.run_id}
    return f"models:/{name}/{version.version}"


def _aliases(client: Any, name: str) -> list[str]:
    try:
        return sorted(client.get_registered_model(name).aliases)
    except Exception:  # the model itself does not exist: no aliases to list
        return []


def _check_signature(signature: dict[str, Any] | None, spec: ModelSpec, uri: str) -> None:
    """The MLmodel's input and output schemas against the spec (none: nothing to check)."""
    if not signature:
        return
    inputs = yaml.safe_load(signature.get("inputs") or "[]") or []
    columns = [c.get("name") for c in inputs if c.get("type") != "tensor"]
    if columns and isinstance(spec.input, TabularInput) and columns != list(spec.input.columns):
        raise InputError(
            f"{uri}: its signature takes columns {columns[:6]}, the spec lists "
            f"{list(spec.input.columns)[:6]}"
        )
    tensors = [c for c in inputs if c.get("type") == "tensor"]
    if tensors:
        shape = list(tensors[0].get("tensor-spec", {}).get("shape", []))
        want = list(expected_input_shape(spec))
        fits = len(shape) == len(want) + 1 and all(
            d in (-1, w) for d, w in zip(shape[1:], want, strict=True)
        )
        if shape and not fits:
            raise InputError(
                f"{uri}: its signature takes tensors {shape}, the spec gives [-1, {want}]"
            )
    outputs = yaml.safe_load(signature.get("outputs") or "[]") or []
    for out in outputs:
        dims = out.get("tensor-spec", {}).get("shape") if out.get("type") == "tensor" else None
        if dims and len(dims) == 2 and dims[1] not in (-1, spec.n_classes):
            raise InputError(
                f"{uri}: its signature gives {dims[1]} scores per item, the spec lists "
                f"{spec.n_classes} labels"
            )


def download(uri: str, spec: ModelSpec, home: Path) -> MlflowModel:
    """``fetch`` into a fresh folder under ``home`` (the caller stores the file and removes it)."""
    home.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="mlflow-", dir=home))
    try:
        return fetch(uri, spec, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
