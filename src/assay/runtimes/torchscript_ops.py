"""What a TorchScript archive may do: tensor operators, not files.

TorchScript is a language, and its interpreter has operators that reach outside the tensors:
``torch.from_file`` maps any file the process can open into a tensor (read it into the scores,
or write into it through a shared mapping), ``aten::save`` writes one. A validator who uploads
such a model could overwrite the catalog or plant code where the server would run it. So before
a ``.pt`` file is loaded (loading runs a module's ``__setstate__``), its code is read for those
operators, and after loading, every method of every submodule, with the functions it calls
inlined, is walked: an operator outside ``aten``, ``prim`` and the quantized namespaces, or one
of the file operators, refuses the model.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.core.errors import InputError

# Operators that read or write files (from torch's registered schemas: those taking a file name).
FILE_OPERATORS = frozenset({"aten::from_file", "aten::save"})
ALLOWED_NAMESPACES = frozenset({"aten", "prim", "quantized", "_quantized"})
# In an archive's code: the file operators under any spelling TorchScript accepts
# (``torch.from_file``, ``ops.aten.from_file``, ``torch.save``), and namespaces of tools that
# load or resize storage by name.
_CODE_PATTERN = re.compile(
    r"\bfrom_file\b|(?:torch|aten)\s*\.\s*save\b|\bops\s*\.\s*(?!aten\b|prim\b|quantized\b|_quantized\b)(\w+)"
)
MAX_CODE_BYTES = 64 * 1024 * 1024


def check_archive(path: Path) -> None:
    """Refuse an archive whose code names a file operator or another namespace's operators,
    before ``torch.jit.load`` runs any of it."""
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        # Fail closed: torch's own reader accepts archives Python's rejects (a corrupt extra
        # field), and one whose code cannot be read here must not be loaded to find out.
        raise InputError(
            f"{path.name} is not a TorchScript file whose code can be read (save it with "
            f"torch.jit.save; a pickled nn.Module is refused, it could run code): {exc}"
        ) from None
    with archive:
        read = 0
        for info in infos:
            if "/code/" not in f"/{info.filename}" or not info.filename.endswith(".py"):
                continue
            read += info.file_size
            if read > MAX_CODE_BYTES:
                raise InputError(f"{path.name}: more than 64 MiB of TorchScript code, refused")
            try:
                text = archive.read(info).decode("utf-8", errors="replace")
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InputError(
                    f"{path.name}: its TorchScript code {info.filename} cannot be read "
                    f"({exc}): refused"
                ) from None
            found = _CODE_PATTERN.search(text)
            if found is not None:
                raise InputError(
                    f"{path.name}: its TorchScript code calls {found.group(0).strip()!r} "
                    f"({info.filename}); a model may compute on tensors, not open files or "
                    "call other libraries' operators: refused"
                )


def check_module(module: Any, name: str) -> None:
    """Refuse a loaded module whose methods use an operator outside the allowed ones."""
    for kind in _operators(module):
        namespace = kind.split("::", 1)[0]
        if kind in FILE_OPERATORS or namespace not in ALLOWED_NAMESPACES:
            raise InputError(
                f"{name}: its TorchScript graph uses {kind}; a model may compute on tensors, "
                "not open files or call other libraries' operators: refused"
            )


def _operators(module: Any) -> Iterator[str]:
    import torch

    for sub in module.modules():
        for name in sub._c._method_names():
            graph = sub._c._get_method(name).graph.copy()
            torch._C._jit_pass_inline(graph)
            yield from _kinds(graph.nodes())


def _kinds(nodes: Any) -> Iterator[str]:
    for node in nodes:
        yield node.kind()
        for block in node.blocks():
            yield from _kinds(block.nodes())
