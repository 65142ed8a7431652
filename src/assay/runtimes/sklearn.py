"""SklearnRuntime: scikit-learn estimators saved with skops (never plain pickle)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import sys
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError, one_line
from assay.core.ports import ModelBatch, ModelSignature, TensorInfo
from assay.core.spec import ModelSpec, TabularInput, same_classes
from assay.runtimes.base import check_smoke_output

# Data types and containers: constructing one runs no code of the file's choosing. skops itself
# already trusts the primitives, scikit-learn's estimators and their numpy/scipy state.
SAFE_TYPES = frozenset(
    {
        "builtins.slice",
        "builtins.complex",
        "builtins.frozenset",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.bool",
        "builtins.NoneType",
        "collections.OrderedDict",
    }
)
# Never trusted, even when asked: these reach the interpreter, the OS, the network or files.
FORBIDDEN_MODULES = frozenset(
    {
        "builtins",
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "importlib",
        "operator",
        "functools",
        "shutil",
        "pickle",
        "_pickle",
        "marshal",
        "ctypes",
        "runpy",
        "socket",
        "code",
        "codeop",
        "pty",
        "webbrowser",
        "io",
        "_io",
        "pathlib",
        "types",
        "inspect",
        "multiprocessing",
        "threading",
        "signal",
        "tempfile",
        "glob",
        "urllib",
        "http",
        "asyncio",
        "pdb",
        "timeit",
        "platform",
        "ast",
        "gc",
        "joblib",
        "dill",
        "cloudpickle",
        # Third-party packages whose classes open files, sockets or evaluate expressions when
        # constructed (a review truncated a file through pyarrow.lib.OSFile(path, "w")).
        "pyarrow",
        "pandas",
        "polars",
        "fsspec",
        "s3fs",
        "gcsfs",
        "adlfs",
        "h5py",
        "tables",
        "torch",
        "tensorflow",
        "keras",
        "requests",
        "httpx",
        "urllib3",
        "aiohttp",
        "boto3",
        "botocore",
        "paramiko",
        "sqlalchemy",
        "psycopg2",
        "numexpr",
        "sympy",
        "IPython",
        "jinja2",
        "yaml",
        # ... and more of what a scientific Python environment holds (a review reached a
        # network listener through docker.client.DockerClient, trusted by name).
        "docker",
        "kubernetes",
        "huey",
        "redis",
        "kombu",
        "celery",
        "mlflow",
        "mlserver",
        "git",
        "azure",
        "google",
        "databricks",
        "aiobotocore",
        "flask",
        "werkzeug",
        "fastapi",
        "starlette",
        "uvicorn",
        "tornado",
        "websockets",
        "grpc",
        "zmq",
        "pymongo",
        "psycopg",
        "pymysql",
        "filelock",
        "onnxruntime",
        "onnx",
        "openvino",
        "PIL",
        "imageio",
        "cv2",
        "matplotlib",
        "transformers",
        "huggingface_hub",
        "datasets",
        "dask",
        "distributed",
        "ray",
        "pyspark",
        "py4j",
        "pexpect",
        "sh",
        "invoke",
        "fabric",
        "nbformat",
        "nbclient",
        "jupyter_client",
        "ipykernel",
        "playwright",
        "selenium",
        "httplib2",
        "pycurl",
    }
)


def _resolve(name: str, import_modules: bool = False) -> Any:
    """The object ``module.attr[.attr]`` names.

    Names read from a file are looked up among modules already imported (scikit-learn, numpy and
    scipy are, with every estimator's module: skops imports them): importing a module the file
    names would run that module's code (``numpy.f2py.__main__`` runs a program). Only a name the
    user typed (``--trust``) may import its module, and never a ``__main__``.
    """
    parts = name.split(".")
    if "__main__" in parts:
        return None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        obj: Any = sys.modules.get(module_name)
        if obj is None and import_modules:
            try:
                obj = importlib.import_module(module_name)
            except Exception:  # a module the user named may fail to import in any way
                continue
        if obj is None:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


@functools.cache
def _import_estimator_modules() -> None:
    """Import scikit-learn's estimator modules (skops does, to list its trusted types), so that
    the classes a fitted model holds can be found without importing anything a file names."""
    with contextlib.suppress(ImportError):
        import skops.io  # noqa: F401


def _is_system_type(name: str) -> bool:
    """From the standard library (files, processes, the interpreter), and not a plain data type."""
    return name not in SAFE_TYPES and (
        name.split(".")[0] in FORBIDDEN_MODULES
        or name.split(".")[0].lstrip("_") in sys.stdlib_module_names
    )


def is_data_type(name: str) -> bool:
    """Whether a type named in a skops file is trusted by default: a class, never a function or
    method, from scikit-learn, numpy's arrays, scalars and random generators, or scipy.sparse.

    Such a class is created with ``__new__`` and its state set, or called with data arguments;
    none of them runs code or touches files (``numpy.memmap`` would, so it is left out).
    """
    if name in SAFE_TYPES:
        return True
    if name.split(".")[0] not in ("sklearn", "numpy", "scipy"):
        return False
    _import_estimator_modules()
    obj = _resolve(name)
    if not isinstance(obj, type):
        return False
    module = getattr(obj, "__module__", "") or ""
    if name.startswith("sklearn.") and module.startswith("sklearn"):
        return True
    if name.startswith("numpy."):
        if issubclass(obj, np.memmap):
            return False
        return (
            issubclass(obj, np.generic | np.ndarray | np.dtype)
            or module.startswith("numpy.random")
            or module == "numpy.dtypes"
        )
    return name.startswith("scipy.sparse.") and module.startswith("scipy.sparse")


@dataclass(frozen=True)
class TypeReview:
    """What a skops file would construct: trusted by skops, by Assay, by the user, or refused."""

    by_skops: tuple[str, ...]
    data_types: tuple[str, ...]
    by_user: tuple[str, ...]
    refused: tuple[str, ...]
    forbidden: tuple[str, ...]


# A skops file is a zip: its schema is parsed whole (by skops and by ``_named_types``), and a
# few megabytes of upload inflating to gigabytes of JSON took the server's memory (a review's
# 2 MB file: 2 GiB of schema, +2 GB resident; JSON takes several times its size parsed). Sizes
# are the archive's own declarations, which the zip reader holds every member to; a name
# given twice is refused, since the reader takes the last of them and a check the first. The
# arrays are loaded at their size, as any model's weights are: their whole is capped, not
# their compression (a nearest-neighbours model on one-hot features inflates 340 times).
MAX_SCHEMA_BYTES = 64 * 1024 * 1024
MAX_INFLATED_BYTES = 4 * 1024 * 1024 * 1024


def check_archive(path: Path) -> None:
    """InputError for a skops file whose schema, or whose whole, inflates past reason."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path.name} is not a valid skops file: {one_line(str(exc))}") from None
    twice = sorted(n for n, k in Counter(m.filename for m in members).items() if k > 1)
    if twice:
        raise InputError(f"{path.name} holds {twice[0]!r} twice: refused unread")
    schema = next((m for m in members if m.filename == "schema.json"), None)
    if schema is not None and schema.file_size > MAX_SCHEMA_BYTES:
        raise InputError(
            f"{path.name}: its schema.json would inflate to {schema.file_size / 2**20:,.0f} MiB "
            f"(at most {MAX_SCHEMA_BYTES // 2**20} MiB): refused unread"
        )
    inflated = sum(m.file_size for m in members)
    if inflated > MAX_INFLATED_BYTES:
        raise InputError(
            f"{path.name} would inflate to {inflated / 2**30:,.1f} GiB (at most "
            f"{MAX_INFLATED_BYTES // 2**30} GiB): refused unread"
        )


def review_types(path: Path, trusted: tuple[str, ...] = ()) -> TypeReview:
    """Sort the types of a skops file; reading the file's schema runs none of its code."""
    try:
        import skops.io as sio
    except ImportError:
        raise InputError(
            "scikit-learn models need the extra: pip install 'assay[sklearn]'"
        ) from None
    check_archive(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise InputError(
            f"{path.name} is not a valid skops file: {type(exc).__name__}: {one_line(str(exc))}"
        ) from None
    forbidden = [t for t in untrusted if _is_system_type(t)]
    rest = [t for t in untrusted if t not in forbidden]
    data = [t for t in rest if is_data_type(t)]
    # A type the user trusts must still be a class: a function named in the file is called with
    # the file's arguments while loading, whoever trusts it.
    by_user = [t for t in rest if t not in data and t in trusted and _is_class(t)]
    forbidden += [t for t in rest if t not in data and t in trusted and t not in by_user]
    refused = [t for t in rest if t not in data and t not in trusted]
    named = _named_types(path) - set(untrusted)
    return TypeReview(
        tuple(sorted(named)), tuple(data), tuple(by_user), tuple(refused), tuple(forbidden)
    )


def _named_types(path: Path) -> set[str]:
    """Every ``module.Class`` the file's schema names (read as JSON: nothing is constructed)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    try:
        with zipfile.ZipFile(path) as z:
            walk(json.loads(z.read("schema.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return set()
    return found


def _is_class(name: str) -> bool:
    """A class the user may trust: not a function, not from the standard library, no memmap."""
    obj = _resolve(name, import_modules=True)
    return isinstance(obj, type) and not issubclass(obj, np.memmap)


class SklearnRuntime:
    """``predict_proba`` of a skops-loaded estimator on the spec's columns."""

    def __init__(self, estimator: Any, spec: ModelSpec) -> None:
        self.estimator = estimator
        self.spec = spec
        n = len(spec.input.columns) if isinstance(spec.input, TabularInput) else 0
        self.signature = ModelSignature(
            (TensorInfo("X", (None, n), "float32"),),
            (TensorInfo("predict_proba", (None, spec.n_classes), "float64"),),
            {"runtime": "sklearn", "estimator": type(estimator).__name__},
        )

    @classmethod
    def load(cls, path: Path, spec: ModelSpec) -> SklearnRuntime:
        """Load after reviewing every type the file names: code from a model file never runs."""
        if not isinstance(spec.input, TabularInput):
            raise InputError("scikit-learn models take tabular input; the spec says image")
        inputs = spec.input
        review = review_types(path, spec.trusted_types)
        if review.forbidden:
            raise InputError(
                f"{path.name} names {', '.join(review.forbidden[:3])}: Assay never loads "
                "these, trusted or not (functions and system modules can run code)"
            )
        if review.refused:
            raise InputError(
                f"{path.name} names types Assay does not trust by default: "
                f"{', '.join(review.refused[:3])}"
                + (f" and {len(review.refused) - 3} more" if len(review.refused) > 3 else "")
                + "; review them with `assay model add --show-types`, then add the ones you "
                "trust to the spec's trusted_types"
            )
        import skops.io as sio

        allowed = [*review.data_types, *review.by_user]
        try:
            estimator = sio.load(path, trusted=allowed)
        except Exception as exc:
            raise InputError(
                f"{path.name} could not be loaded: {type(exc).__name__}: {one_line(str(exc))}"
            ) from None
        if not hasattr(estimator, "predict_proba"):
            raise InputError(
                f"{type(estimator).__name__} has no predict_proba; Assay needs class scores"
            )
        fitted = list(getattr(estimator, "classes_", []))
        classes = [str(c) for c in fitted]
        # In order, as both mean them: classes 0.0 and 1.0 (fitted on a float column) are the
        # spec's 0 and 1, which is how a float column's labels read (no spec both matched).
        if not same_classes(fitted, spec.labels):
            raise InputError(
                f"model classes {classes} differ from the spec's labels {list(spec.labels)}"
            )
        names = getattr(estimator, "feature_names_in_", None)
        if not inputs.columns:  # the spec leaves them to the model (a SECOM: 590 names)
            if names is None:
                raise InputError(
                    "spec: input.columns is left out, and the model was not fitted on a table "
                    "with column names (feature_names_in_): list its input columns in order"
                )
            inputs = dataclasses.replace(inputs, columns=tuple(str(n) for n in names))
            spec = dataclasses.replace(spec, input=inputs)
        if names is not None and [str(n) for n in names] != list(inputs.columns):
            raise InputError(
                f"model was fitted on columns {list(names)[:5]}... but the spec lists {list(inputs.columns)[:5]}..."
            )
        fitted_on = getattr(estimator, "n_features_in_", None)
        if fitted_on is not None and int(fitted_on) != len(inputs.columns):
            raise InputError(
                f"model was fitted on {fitted_on} columns but the spec lists {len(inputs.columns)}"
            )
        runtime = cls(estimator, spec)
        check_smoke_output(
            runtime.predict(ModelBatch.of(np.zeros((2, len(inputs.columns)), np.float32))),
            spec,
            "predict_proba",
        )
        return runtime

    def close(self) -> None:
        pass

    def predict(self, batch: ModelBatch) -> npt.NDArray[Any]:
        inputs = batch.inputs
        with warnings.catch_warnings():
            # Fitted on a DataFrame, fed an array in the same column order: the names were checked at load.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return np.asarray(self.estimator.predict_proba(inputs))


def load(
    path: Path, spec: ModelSpec, threads: int | None = None, spin: bool = True
) -> SklearnRuntime:
    """The runtime entry's loader (``assay.runtimes.RUNTIMES``); scikit-learn sets its own threads."""
    return SklearnRuntime.load(path, spec)
