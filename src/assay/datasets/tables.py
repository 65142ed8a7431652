"""CSV and Parquet tables, streamed in record batches (a table is never loaded whole).

The ``table`` reader serves tables without a ``path`` column: feature columns for a tabular model
and metadata for everything else. Labels and ids are read as strings; the item id defaults to the
0-based row number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay.arrow import null, strings
from assay.core.errors import InputError, did_you_mean
from assay.datasets import columns as cols
from assay.datasets.registry import Reader, ReadOptions, register_reader
from assay.datasets.source import DatasetSource

TABLE_SUFFIXES = {".csv", ".parquet", ".pq", ".tsv"}
BATCH_ROWS = 65_536


def table_schema(path: Path) -> pa.Schema:
    """The table's columns, reading only the header (CSV) or the footer (Parquet)."""
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            schema = pq.read_schema(path)
        else:
            with _open_csv(path, {}) as reader:
                schema = reader.schema
        schema.names  # noqa: B018  # decodes every column name: Arrow does not check CSV headers
        return schema
    except UnicodeDecodeError:
        raise InputError(f"cannot read table {path}: a column name is not UTF-8 text") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read table {path}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


SEPARATORS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")


def csv_dialect(path: Path) -> tuple[str, str]:
    """The separator and decimal mark of a CSV, from its first 64 KiB: the separator is the one
    of , ; tab | that the header holds most of (a .tsv file: tab); the decimal mark is a comma
    when the separator is not one and the sample's numbers are written 1850,5 and never 1.5
    (a spreadsheet saved in a German or French locale), else a point."""
    if path.suffix.lower() == ".tsv":
        return "\t", "."
    with path.open("rb") as f:
        raw = f.read(64 << 10)
    lines = raw.decode("utf-8-sig", errors="replace").splitlines()
    if len(raw) == 64 << 10:
        lines = lines[:-1]  # the sample may end mid-line
    header = re.sub(r'"[^"]*"', '""', lines[0]) if lines else ""  # not inside quoted names
    separator = max(SEPARATORS, key=lambda s: (header.count(s), s == ","))
    if separator == "," or header.count(separator) == 0:
        return ",", "."
    fields = [f.strip().strip('"') for line in lines[1:] for f in line.split(separator)]
    comma = any(_DECIMAL_COMMA.match(f) for f in fields)
    point = any(_DECIMAL_POINT.match(f) for f in fields)
    return separator, "," if comma and not point else "."


# What a CSV writes for a missing value (pyarrow's list: NA, N/A, NaN, null, #N/A, ...).
# (Built by assay.arrow: pa.array imports pandas, which a validation never needs.)
MISSING_TEXT = strings(pacsv.ConvertOptions().null_values)


def _open_csv(path: Path, string_columns: dict[str, pa.DataType]) -> pacsv.CSVStreamingReader:
    """A CSV streamed in batches. Text stays text here (``_missing`` says which is missing):
    numbers still read NA, NaN, an empty field as missing."""
    separator, decimal = csv_dialect(path)
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=4 << 20),
        parse_options=pacsv.ParseOptions(delimiter=separator),
        convert_options=pacsv.ConvertOptions(
            column_types=string_columns, strings_can_be_null=False, decimal_point=decimal
        ),
    )


def _missing(batch: pa.RecordBatch, kept: Sequence[str]) -> pa.RecordBatch:
    """``batch`` with its missing text as nulls: in the ``kept`` columns (labels and ids) only
    an empty field, since NA there is a name (a class "NA", for no anomaly, became 522 items
    without an expert label, left out of the accuracy, and a 0.45 model passed at 0.89: a
    review); in other text columns any of ``MISSING_TEXT``, as a CSV reader reads them."""
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            missing = (
                pc.equal(column, "")
                if name in kept
                else pc.is_in(column, value_set=MISSING_TEXT.cast(column.type))
            )
            column = pc.if_else(missing, null(column.type), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def iter_table(
    path: Path, string_columns: list[str], batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV/Parquet file; ``string_columns`` are read as text whatever they look like."""
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            # pre_buffer=False: pre-buffered ranges are kept until the iterator ends (memory
            # grows with the file); streaming must not.
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_rows):
                _check_text(batch)
                yield batch
            return
        with _open_csv(path, {c: pa.string() for c in string_columns}) as reader:
            for batch in reader:
                yield _missing(batch, string_columns)
    except pa.ArrowInvalid as exc:
        hint = (
            ""
            if path.suffix.lower() in {".parquet", ".pq"}
            else " (a column whose type changes part-way through a CSV reads reliably from Parquet)"
        )
        raise InputError(f"cannot read table {path}: {_first_line(exc)}{hint}") from None
    except OSError as exc:  # pyarrow's word for a damaged file (a page that does not decode)
        raise InputError(f"cannot read table {path}: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read table {path}: text that is not UTF-8") from None


def _check_text(batch: pa.RecordBatch) -> None:
    """Parquet does not check that its strings are UTF-8 (the CSV reader does): a damaged or
    foreign file must stop here, with its name, not as a decode error deep in a run."""
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column.validate(full=True)  # ArrowInvalid on bytes that are not UTF-8


def as_string(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Labels and ids as text. Floats: 1.0 -> "1" (spreadsheets write integers as floats), and
    NaN is a missing value, as pandas writes one into a float column."""
    if pa.types.is_floating(array.type):
        finite = pc.is_finite(array)
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
        as_int = pc.cast(
            pc.if_else(finite, array, pa.scalar(0.0, array.type)), pa.int64(), safe=False
        )
        exact = pc.and_(finite, pc.equal(pc.cast(as_int, array.type, safe=False), array))
        return pc.if_else(exact, pc.cast(as_int, pa.string()), pc.cast(array, pa.string()))
    return pc.cast(array, pa.string())


def with_reserved_columns(
    batch: pa.RecordBatch, start_row: int, label_column: str, id_column: str | None
) -> pa.RecordBatch:
    """Add the reserved item-id and label columns to a batch of source rows."""
    n = batch.num_rows
    if id_column is not None:
        ids = as_string(batch.column(id_column))
        if ids.null_count:
            first = start_row + int(pc.index(pc.is_null(ids), True).as_py())
            raise InputError(
                f"id column {id_column!r} has no value in row {first}: every item needs an id"
            )
    else:
        ids = pc.cast(pa.array(range(start_row, start_row + n), pa.int64()), pa.string())
    # No label column: the experts' label_<annotator> columns give the consensus later on.
    labels = (
        as_string(batch.column(label_column))
        if label_column in batch.schema.names
        else pa.nulls(n, pa.string())
    )
    arrays = [ids, labels, *batch.columns]
    names = [cols.ITEM_ID, cols.LABEL, *batch.schema.names]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def check_columns(
    schema: pa.Schema,
    path: Path,
    label_column: str,
    id_column: str | None,
    annotated: bool = False,
) -> None:
    """Raise InputError when a named column is missing or a reserved name is used.

    The label column may be absent when experts' labels (``label_<annotator>`` columns, or an
    annotations table: ``annotated``) will give the consensus instead.
    """
    names = set(schema.names)
    if len(names) < len(schema.names):
        twice = sorted(n for n in names if schema.names.count(n) > 1)
        raise InputError(f"{path}: column {twice[0]!r} appears more than once in the header")
    clash = names & set(cols.RESERVED)
    if clash:
        raise InputError(f"{path}: column name {sorted(clash)[0]!r} is reserved by Assay")
    if label_column not in names and not (annotated or cols.annotator_columns(schema.names)):
        raise InputError(
            f"{path}: label column {label_column!r} not found"
            + (did_you_mean(label_column, schema.names) or ", and no label_<annotator> columns")
            + f" (columns: {_preview(schema.names)})"
        )
    if id_column is not None and id_column not in names:
        raise InputError(
            f"{path}: id column {id_column!r} not found{did_you_mean(id_column, schema.names)} "
            f"(columns: {_preview(schema.names)})"
        )


def _preview(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _is_table(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in TABLE_SUFFIXES


def _detect(path: Path) -> bool:
    return _is_table(path) and not lists_image_files(path)


def lists_image_files(path: Path) -> bool:
    """A table whose ``path`` column names image files: an image manifest. A sensor table that
    happens to have a column called ``path`` (the route a part took) stays a table: a review's
    was read as 500 missing images."""
    from assay.datasets.images import IMAGE_SUFFIXES

    if not (_is_table(path) and "path" in table_schema(path).names):
        return False
    try:
        first = next(iter_table(path, ["path"], 256), None)
    except InputError:
        return True  # the manifest reader names what is wrong with it
    if first is None or first.num_rows == 0:
        return True
    values = [v for v in first.column("path").to_pylist() if isinstance(v, str)]
    return any(Path(v).suffix.lower() in IMAGE_SUFFIXES for v in values)


def open_table(path: Path, options: ReadOptions) -> DatasetSource:
    """A table of features and metadata, one item per row."""
    if not _is_table(path):
        raise InputError(f"{path} is not a CSV or Parquet file")
    label_column = options.label_column or "label"
    id_column = options.id_column
    schema = table_schema(path)
    check_columns(schema, path, label_column, id_column, options.annotated or options.unlabelled)
    # Labels (the experts' too) and ids as written: NA there is a name, never a missing value.
    keep_text = [label_column, *cols.annotator_columns(schema.names)]
    keep_text += [id_column] if id_column else []

    def batches() -> Iterator[pa.RecordBatch]:
        row = 0
        for batch in iter_table(path, keep_text):
            yield with_reserved_columns(_without_views(batch), row, label_column, id_column)
            row += batch.num_rows

    return DatasetSource(
        format="table",
        kind="tabular",
        root=path.parent,
        files=[path],
        batches=batches,
        options={"label_column": label_column, "id_column": id_column},
        has_label=label_column in schema.names,
    )


def _without_views(batch: pa.RecordBatch) -> pa.RecordBatch:
    """String and binary views (Arrow's newer layouts, which pandas and Polars may write) as
    plain strings and binaries: the manifest holds one layout, and compute kernels such as
    ``take`` have none for views (the leakage audit crashed on one)."""
    plain = {pa.types.is_string_view: pa.string(), pa.types.is_binary_view: pa.binary()}
    columns = [
        next((c.cast(kind) for test, kind in plain.items() if test(c.type)), c)
        for c in batch.columns
    ]
    if all(a is b for a, b in zip(columns, batch.columns, strict=True)):
        return batch
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


register_reader(
    Reader(
        name="table",
        description="CSV/Parquet table: one item per row, feature and metadata columns",
        detect=_detect,
        open=open_table,
        priority=90,
    )
)
