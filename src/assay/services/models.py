"""register_model: check a model file against its spec and store both, content-addressed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assay.core.errors import InputError
from assay.core.records import ModelAlias, ModelVersion, VersionRef, check_alias, check_name
from assay.core.spec import ModelSpec, TabularInput, parse_model_spec
from assay.digests import file_sha256
from assay.runtimes import is_endpoint, load_model, runtime_entry, runtime_kind
from assay.runtimes import model_suffixes as runtime_suffixes
from assay.runtimes.recorded import read_predictions
from assay.runtimes.sklearn import TypeReview, review_types
from assay.services.remote import fetch, is_url
from assay.services.workspace import Workspace
from assay.services.yaml_input import read_yaml_file
from assay.store.catalog import AlreadyStoredError


@dataclass(frozen=True)
class RegisteredModel:
    model: ModelVersion
    created: bool


def read_spec(spec: Path | str | dict[str, Any]) -> ModelSpec:
    """A spec from a YAML file or a mapping, as it is registered (a binary classifier's good
    class named where its labels say it: ``ModelSpec.with_good_class``); YAML errors name the
    line."""
    return parse_model_spec(_spec_mapping(spec)).with_good_class()


def _spec_mapping(spec: Path | str | dict[str, Any]) -> Any:
    if isinstance(spec, dict):
        return spec
    text = isinstance(spec, str) and ("\n" in spec or ": " in spec)
    if text and not Path(spec).expanduser().exists():
        # YAML text given where a path goes (the Python API): "spec file does not exist:
        # task: classification..." named no cause (a review).
        raise InputError(
            "spec: a str is a path to a YAML file; this one reads as YAML text: pass the "
            "mapping instead (yaml.safe_load(text)) or write it to a file"
        )
    return read_yaml_file(Path(spec).expanduser(), "spec")


def recorded_spec(spec: Path | str | dict[str, Any], predictions: Path) -> ModelSpec:
    """The spec of recorded predictions: fed nothing (any ``input`` section is replaced), and
    ``output.kind: labels`` when the file holds a class per item but no scores."""
    raw = _spec_mapping(spec)
    if not isinstance(raw, dict):
        raise InputError("spec: expected a mapping at the top level")
    raw = {**raw, "input": {"kind": "recorded"}}
    model_spec = parse_model_spec(raw)
    if model_spec.task == "classification" and not read_predictions(predictions, model_spec).scores:
        output = {**(raw.get("output") or {}), "kind": "labels"}
        model_spec = parse_model_spec({**raw, "output": output})
    return model_spec.with_good_class()


def register_model(
    ws: Workspace,
    name: str,
    file: Path | str,
    spec: Path | str | dict[str, Any],
    trust: tuple[str, ...] = (),
    predictions: bool = False,
    runtime: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Validate the model against its spec, then catalogue it. Same file + spec: a no-op.

    ``trust``: skops types the user reviewed (``review_model_types``) and accepts; they join the
    spec's ``trusted_types``, so every later load trusts exactly these. ``predictions``: the
    file holds predictions recorded elsewhere (``assay.runtimes.recorded``), not a model.
    ``runtime``: the runtime to load it with, when not the one its suffix names (an ONNX file
    through OpenVINO).
    """
    check_name(name, "model")
    if not predictions and is_endpoint(str(file)):
        return _register_endpoint(ws, name, str(file), read_spec(spec))
    if not predictions and str(file).startswith(("models:/", "runs:/")):
        return _register_mlflow(ws, name, str(file), read_spec(spec))
    path = _local_file(ws, file)
    model_spec = recorded_spec(spec, path) if predictions else read_spec(spec)
    if trust:
        merged = tuple(sorted({*model_spec.trusted_types, *trust}))
        model_spec = parse_model_spec(model_spec.to_dict() | {"trusted_types": list(merged)})
    kind = "recorded" if predictions else (runtime or runtime_kind(path))
    if path.suffix.lower() == ".onnx":  # read by onnxruntime or OpenVINO: both follow references
        from assay.runtimes.onnx import single_file

        (ws.home / "tmp").mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="onnx-", dir=ws.home / "tmp"))
        try:
            joined = single_file(path, folder)
            if joined != path:  # weights in external files: register one self-contained copy
                return register_model(
                    ws, name, joined, model_spec.to_dict(), provenance=provenance, runtime=runtime
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    unnamed = isinstance(model_spec.input, TabularInput) and not model_spec.input.columns
    if unnamed and kind != "sklearn":
        raise InputError(
            "spec: input.columns is required for this model: list its input columns in order "
            "(only a scikit-learn model fitted on a table names its own)"
        )
    companions = runtime_entry(kind).companion_files(path)
    loaded = load_model(path, model_spec, kind)
    if unnamed:  # the model's own names, in its order, kept in the stored spec
        model_spec = loaded.spec  # type: ignore[attr-defined]
    try:
        if kind == "onnx":
            from assay.runtimes.onnx import check_class_order, check_label_output

            check_class_order(path, model_spec, getattr(loaded, "output_name", None))
            check_label_output(loaded, path)  # type: ignore[arg-type]
    finally:
        loaded.close()
    spec_data = model_spec.to_dict()
    file_digest = file_sha256(path)
    companion_digests = {c.suffix.lower(): file_sha256(c) for c in companions}
    # The version covers the files and the spec: the same weights read differently are a new
    # version (and so is another runtime for the same file).
    version = hashlib.sha256(
        f"{file_digest}\n{yaml.safe_dump(spec_data, sort_keys=True)}".encode()
        + "".join(f"\n{k}:{v}" for k, v in sorted(companion_digests.items())).encode()
        + (f"\nruntime:{kind}".encode() if runtime else b"")
    ).hexdigest()
    existing = ws.catalog.find_model(name, version)
    if existing is not None:
        return RegisteredModel(existing, created=False)
    # Companions first, under the model file's stem: a model file is stored only once its
    # weights are (a crash between the two leaves no IR without its .bin).
    for c in companions:
        ws.files.put_file(c, ws.files.model_path(file_digest, c.suffix.lower()))
    stored = ws.files.put_file(path, ws.files.model_path(file_digest, path.suffix.lower()))
    try:
        record = ws.catalog.add_model(
            name=name,
            version=version,
            runtime=kind,
            file_path=str(stored),
            file_name=path.name,
            size_bytes=path.stat().st_size,
            spec=spec_data,
            signature=loaded.signature.to_dict()
            | {"file_sha256": file_digest, "resolved": _resolved(loaded)}
            | ({"companions": companion_digests} if companion_digests else {})
            | ({"mlflow": provenance} if provenance else {}),
        )
    except AlreadyStoredError as same:  # another process stored it first
        return RegisteredModel(same.record, created=False)
    return RegisteredModel(record, created=True)


def _resolved(loaded: Any) -> dict[str, Any]:
    """The tensors the runtime chose to read (what a spec that names none of them gets): two
    versions of one file that read the same tensors answer the same (``services.twins``)."""
    roles = getattr(loaded, "roles", None)
    return {
        "input": getattr(loaded, "input_name", None),
        "output": getattr(loaded, "output_name", None),
        "embedding": getattr(loaded, "embedding_name", None),
        "roles": dict(roles) if roles else None,
    }


def _register_mlflow(ws: Workspace, name: str, uri: str, spec: ModelSpec) -> RegisteredModel:
    """A model from an MLflow registry: resolved and downloaded once, then registered as its
    ONNX file with the registry's facts (name, version, alias, run id) beside it."""
    from assay.runtimes.mlflow import download

    fetched = download(uri, spec, ws.home / "tmp")
    try:
        file = fetched.onnx.with_name(f"{name}.onnx")
        fetched.onnx.rename(file)
        return register_model(ws, name, file, spec.to_dict(), provenance=fetched.provenance)
    finally:
        shutil.rmtree(fetched.folder, ignore_errors=True)


def _register_endpoint(ws: Workspace, name: str, url: str, spec: ModelSpec) -> RegisteredModel:
    """A model behind an inference server: its description (URL, the server's metadata, the
    model version a test request was answered by) is what is stored, digested and versioned."""
    from assay.runtimes.endpoint import describe

    description = describe(url, spec)
    tmp = ws.home / "tmp" / f"endpoint-{os.getpid()}.json"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.write_text(json.dumps(description, sort_keys=True))
        loaded = load_model(tmp, spec, "endpoint")
        loaded.close()
        description["served_version"] = loaded.signature.extra.get("served_version")
        tmp.write_text(json.dumps(description, sort_keys=True))
        digest = file_sha256(tmp)
        spec_data = spec.to_dict()
        version = hashlib.sha256(
            f"{digest}\n{yaml.safe_dump(spec_data, sort_keys=True)}".encode()
        ).hexdigest()
        existing = ws.catalog.find_model(name, version)
        if existing is not None:
            return RegisteredModel(existing, created=False)
        stored = ws.files.put_file(tmp, ws.files.model_path(digest, ".json"))
    finally:
        tmp.unlink(missing_ok=True)
    try:
        record = ws.catalog.add_model(
            name=name,
            version=version,
            runtime="endpoint",
            file_path=str(stored),
            file_name=description["url"],
            size_bytes=0,
            spec=spec_data,
            signature=loaded.signature.to_dict() | {"file_sha256": digest},
        )
    except AlreadyStoredError as same:  # another process stored it first
        return RegisteredModel(same.record, created=False)
    return RegisteredModel(record, created=True)


def _local_file(ws: Workspace, file: Path | str) -> Path:
    path = fetch(str(file), ws.home / "cache") if is_url(str(file)) else Path(file).expanduser()
    if not path.is_file():
        raise InputError(f"model file does not exist: {path}")
    return path


def review_model_types(ws: Workspace, file: Path | str) -> TypeReview:
    """What a skops file would construct, sorted by who trusts it; nothing in it runs."""
    path = _local_file(ws, file)
    if runtime_kind(path) != "sklearn":
        raise InputError(f"{path.name}: --show-types reads skops files (.skops) only")
    return review_types(path)


def get_model(ws: Workspace, ref: str) -> ModelVersion:
    return ws.catalog.get_model(VersionRef.parse(ref, "model"))


def list_models(ws: Workspace) -> list[ModelVersion]:
    return ws.catalog.list_models()


def model_suffixes() -> list[str]:
    """The file types a model may be uploaded as (each runtime's suffixes)."""
    return list(runtime_suffixes())


def set_alias(ws: Workspace, ref: str, alias: str, by: str) -> ModelAlias:
    """Point ``NAME@alias`` at the version ``ref`` names (``scanner@3``), moving it if it
    pointed elsewhere. ``--baseline scanner@production`` then means that version."""
    check_alias(alias)
    model = get_model(ws, ref)
    return ws.catalog.set_alias(model.name, alias, model.id, by)


def remove_alias(ws: Workspace, name: str, alias: str) -> None:
    ws.catalog.remove_alias(name, alias)


def aliases(ws: Workspace, name: str | None = None) -> list[ModelAlias]:
    """Every alias (of one model name), with the version it points at."""
    return ws.catalog.aliases(name)
