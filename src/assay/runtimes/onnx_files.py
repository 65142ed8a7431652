"""ONNX files that must hold all their data: an ONNX model may keep tensors in other files
(external data), which onnxruntime and OpenVINO both read relative to the model's folder. The
store keeps one file per model, digested whole; these find every external reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.core.errors import InputError


def external_tensors(model: Any) -> list[str]:
    """The names of the tensors of ``model`` whose data lie in external files, wherever they
    are: initializers, sparse ones, constants in node attributes, subgraphs (If, Loop, Scan)
    and functions. A review's upload held a Constant whose data was "another stored model's
    file": only initializers were looked at, the reference stayed, and at run time
    onnxruntime read the other model's weights into the scores."""
    from onnx.external_data_helper import uses_external_data

    def graph(g: Any) -> Iterator[Any]:
        yield from g.initializer
        for sparse in g.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        for node in g.node:
            yield from attributes(node)

    def attributes(node: Any) -> Iterator[Any]:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sparse in [a.sparse_tensor] if a.HasField("sparse_tensor") else []:
                yield from (sparse.values, sparse.indices)
            for sparse in a.sparse_tensors:
                yield from (sparse.values, sparse.indices)
            if a.HasField("g"):
                yield from graph(a.g)
            for g in a.graphs:
                yield from graph(g)

    def everything() -> Iterator[Any]:
        yield from graph(model.graph)
        for function in model.functions:
            for node in function.node:
                yield from attributes(node)

    return [t.name or "(unnamed)" for t in everything() if uses_external_data(t)]


def check_self_contained(path: Path) -> None:
    """InputError when the model at ``path`` reads data from other files: the store keeps one
    file per model, digested whole, and a reference out of it reads whatever lies there when
    the model runs (a model registered before references in constants were joined). Only a
    file holding the word ``location`` (every external reference does) is parsed."""
    import mmap

    with path.open("rb") as f:
        if path.stat().st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            if view.find(b"location") < 0:
                return
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not a protobuf ONNX file (ORT's format): onnxruntime says what it is
        return
    left = external_tensors(model)
    if left:
        raise InputError(
            f"{path.name} reads tensor {left[0]!r} from an external file: a stored model must "
            "hold all its data (register the model again)"
        )
