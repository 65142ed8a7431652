"""Model runtimes, one entry each: which files they take, which tasks, and how to load them.

Entries are loaded lazily (a runtime's package is imported only when one of its models is), and
third parties add theirs under the entry-point group ``assay.runtimes``: an entry point whose
object is a ``RuntimeEntry``. ``runtime_kind`` picks an entry by suffix; ``load_model`` loads and
checks a model file against its spec.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from assay.core.errors import InputError
from assay.core.ports import Runtime
from assay.core.spec import ModelSpec
from assay.runtimes.device import Device

ALL_TASKS = ("classification", "detection", "segmentation", "anomaly")


@dataclass(frozen=True)
class RuntimeEntry:
    """A runtime: its name, the file suffixes it reads, the tasks and spec features it serves,
    and ``load`` as ``module:function`` taking (path, spec, threads, spin)."""

    name: str
    suffixes: tuple[str, ...]
    load: str
    tasks: tuple[str, ...] = ALL_TASKS
    embeddings: bool = True
    extra: str | None = None  # the optional dependency group that installs it
    # Files that go with a model file of a suffix, beside it under the same stem (an OpenVINO
    # IR's .xml needs its .bin): stored, digested and checked with it.
    companions: tuple[tuple[str, str], ...] = ()
    # The device kinds ``--device`` may name (cuda covers cuda:N); None: the runtime's own names
    # (OpenVINO's GPU, NPU, AUTO...), checked by the runtime when it loads.
    devices: tuple[str, ...] | None = ("cpu",)

    def check_device(self, device: str) -> None:
        """InputError when ``device`` is no device of this runtime, by name: whether this
        machine has one is the loader's question (a worker elsewhere may)."""
        kind = Device.parse(device).kind
        if self.devices is None or kind in self.devices:
            return
        where = {
            "endpoint": "the server chooses",
            "sklearn": "it runs on the CPU only",
            "recorded": "its outputs are recorded",
        }.get(self.name, f"it runs on {' or '.join(self.devices)}")
        raise InputError(f"--device {device}: not for the {self.name} runtime ({where})")

    def companion_files(self, path: Path) -> list[Path]:
        """The files that must lie beside ``path``; InputError naming a missing one."""
        found = []
        for suffix, companion in self.companions:
            if path.suffix.lower() == suffix:
                other = path.with_suffix(companion)
                if not other.is_file():
                    raise InputError(
                        f"{path.name}: its {companion} file ({other.name}) must lie beside it"
                    )
                found.append(other)
        return found

    def loader(self) -> Callable[..., Runtime]:
        module, _, function = self.load.partition(":")
        try:
            found: Callable[..., Runtime] = getattr(importlib.import_module(module), function)
        except ImportError as exc:
            hint = f" (pip install 'assay[{self.extra}]')" if self.extra else ""
            raise InputError(f"the {self.name} runtime is not installed{hint}: {exc}") from None
        return found


RUNTIMES: dict[str, RuntimeEntry] = {
    e.name: e
    for e in (
        RuntimeEntry("onnx", (".onnx",), "assay.runtimes.onnx:load", devices=("cpu", "cuda")),
        RuntimeEntry(
            "sklearn",
            (".skops",),
            "assay.runtimes.sklearn:load",
            tasks=("classification",),
            embeddings=False,
        ),
        # OpenVINO IR; ONNX files too when asked (``assay model add --runtime openvino``).
        RuntimeEntry(
            "openvino",
            (".xml",),
            "assay.runtimes.openvino:load",
            extra="openvino",
            companions=((".xml", ".bin"),),
            devices=None,
        ),
        RuntimeEntry(
            "torchscript",
            (".pt", ".pts", ".torchscript"),
            "assay.runtimes.torchscript:load",
            extra="torch",
            devices=("cpu", "cuda"),
        ),
        # A URL http://host:port/v2/models/NAME (Open Inference Protocol), never a file.
        RuntimeEntry(
            "endpoint",
            (),
            "assay.runtimes.endpoint:load",
            tasks=("classification",),
            embeddings=False,
            extra="endpoint",
        ),
        # Chosen explicitly (``assay model add --predictions``), never by a file's suffix.
        RuntimeEntry(
            "recorded",
            (),
            "assay.runtimes.recorded:load",
            tasks=("classification", "detection", "anomaly"),
            embeddings=False,
        ),
    )
}
_PLUGINS_READ = False


_ENDPOINT = re.compile(r"^https?://[^/\s]+(/[^\s]*)?/v2/models/[^/\s]+(/versions/[^/\s]+)?/?$")


def is_endpoint(url: str) -> bool:
    """An Open Inference Protocol model URL: http(s)://host[:port][/prefix]/v2/models/NAME."""
    return bool(_ENDPOINT.match(url))


def register_runtime(entry: RuntimeEntry) -> RuntimeEntry:
    """Make a runtime available (plugins; tests)."""
    RUNTIMES[entry.name] = entry
    return entry


def runtimes() -> dict[str, RuntimeEntry]:
    """Every runtime: the built-in ones and those of the ``assay.runtimes`` entry points."""
    global _PLUGINS_READ
    if not _PLUGINS_READ:
        _PLUGINS_READ = True
        for point in entry_points(group="assay.runtimes"):
            entry: Any = point.load()
            if isinstance(entry, RuntimeEntry):
                RUNTIMES.setdefault(entry.name, entry)
    return RUNTIMES


def model_suffixes() -> tuple[str, ...]:
    """The file suffixes some runtime reads, sorted."""
    return tuple(sorted({s for e in runtimes().values() for s in e.suffixes}))


def runtime_kind(path: Path) -> str:
    """Which runtime loads a model file, from its suffix."""
    suffix = path.suffix.lower()
    for entry in runtimes().values():
        if suffix in entry.suffixes:
            return entry.name
    raise InputError(
        f"{path.name}: unsupported model format {suffix or '(none)'} "
        f"(use {', '.join(model_suffixes())})"
    )


def runtime_entry(kind: str) -> RuntimeEntry:
    entry = runtimes().get(kind)
    if entry is None:
        raise InputError(f"unknown runtime {kind!r} (runtimes: {', '.join(sorted(runtimes()))})")
    return entry


def load_model(
    path: Path,
    spec: ModelSpec,
    kind: str | None = None,
    threads: int | None = None,
    spin: bool = True,
    device: str = "cpu",
) -> Runtime:
    """Load and check a model file against its spec; raises InputError naming any mismatch.

    ``spin`` False: the runtime's threads sleep rather than busy-wait between calls (ONNX), for
    a model that shares the cores with other work. ``device``: cpu, cuda[:N], or a runtime's
    own device name (OpenVINO's GPU, NPU...)."""
    entry = runtime_entry(kind or runtime_kind(path))
    if spec.task not in entry.tasks:
        raise InputError(
            f"task {spec.task} is not supported by the {entry.name} runtime "
            f"({', '.join(entry.tasks)} only)"
        )
    if spec.output.embedding is not None and not entry.embeddings:
        raise InputError(f"spec output.embedding is not supported by the {entry.name} runtime")
    entry.check_device(device)
    if device == "cpu":  # loaders that know no devices keep their four arguments
        return entry.loader()(path, spec, threads, spin)
    return entry.loader()(path, spec, threads, spin, device)
