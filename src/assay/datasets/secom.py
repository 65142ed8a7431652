"""Importer for UCI SECOM: ``secom.data`` (590 sensor values, NaN for missing) and
``secom_labels.data`` (``-1``/``1`` and a day-first timestamp per line).

Features become columns ``f000`` .. ``f589``; the label is ``pass`` (-1) or ``fail`` (1); the
timestamp is metadata. The item id is the 0-based line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import Reader, ReadOptions, register_reader
from assay.datasets.source import DatasetSource

BATCH_ROWS = 8192
_LABELS = {"-1": "pass", "1": "fail"}
_LINE = re.compile(r'^\s*(?P<label>-?1)\s+"(?P<ts>[^"]+)"\s*$')


def _files(path: Path) -> tuple[Path, Path]:
    folder = path if path.is_dir() else path.parent
    return folder / "secom.data", folder / "secom_labels.data"


def _detect(path: Path) -> bool:
    data, labels = _files(path)
    return (path.is_dir() or path.name == "secom.data") and data.is_file() and labels.is_file()


def open_secom(path: Path, options: ReadOptions) -> DatasetSource:
    """SECOM production entities, one item per line."""
    data_path, labels_path = _files(path)
    if not (data_path.is_file() and labels_path.is_file()):
        raise InputError(f"{path}: SECOM needs secom.data and secom_labels.data side by side")
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to SECOM")

    def batches() -> Iterator[pa.RecordBatch]:
        with data_path.open() as data, labels_path.open() as labels:
            row = 0
            while True:
                lines = [line for _, line in zip(range(BATCH_ROWS), data, strict=False)]
                if not lines:
                    break
                label_lines = [next(labels, "") for _ in lines]
                yield _batch(lines, label_lines, row, data_path)
                row += len(lines)
            if next(labels, "").strip():
                raise InputError(f"{labels_path} has more lines than {data_path}")

    return DatasetSource(
        "secom", "tabular", data_path.parent.resolve(), [data_path, labels_path], batches
    )


def _batch(lines: list[str], label_lines: list[str], start: int, where: Path) -> pa.RecordBatch:
    try:
        values = np.array([[float(v) for v in line.split()] for line in lines], dtype=np.float64)
    except ValueError:
        raise InputError(
            f"{where}: lines {start}-{start + len(lines)} hold a value that is not a number"
        ) from None
    if values.ndim != 2:
        raise InputError(
            f"{where}: lines {start}-{start + len(lines)} have differing numbers of values"
        )
    labels, stamps = [], []
    for i, text in enumerate(label_lines):
        match = _LINE.match(text)
        if match is None:
            raise InputError(
                f'secom_labels.data line {start + i + 1}: expected -1|1 "dd/mm/yyyy HH:MM:SS"'
            )
        labels.append(_LABELS[match["label"]])
        stamps.append(datetime.strptime(match["ts"], "%d/%m/%Y %H:%M:%S"))
    arrays = [
        pa.array([str(start + i) for i in range(len(lines))], pa.string()),
        pa.array(labels, pa.string()),
        pa.array(stamps, pa.timestamp("s")),
        *(pa.array(values[:, j]) for j in range(values.shape[1])),
    ]
    names = [cols.ITEM_ID, cols.LABEL, "timestamp", *(f"f{j:03d}" for j in range(values.shape[1]))]
    return pa.RecordBatch.from_arrays(arrays, names=names)


register_reader(
    Reader(
        name="secom",
        description="UCI SECOM semiconductor data (secom.data + secom_labels.data)",
        detect=_detect,
        open=open_secom,
        priority=10,
    )
)
