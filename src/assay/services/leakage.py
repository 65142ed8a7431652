"""The leakage audit: did items of a validation set also serve to train the model?

A training set is registered with ``--role training``. The audit compares it with a validation
dataset version and finds:

- **exact duplicates**: the same content (an image file's SHA-256; for tables, the digest of the
  values of the compared columns: those given (a validation compares the model's input columns:
  rows the model reads alike are one item to it, whatever their operator or time stamp), else
  every column both tables hold but ids, labels and dates and times, which the time-range check
  compares);
- **near-duplicate rows**: the same digest once numbers are rounded to float32 (what a model's
  float32 input reads), or once fractional numbers are rounded to 6 significant digits and text
  trimmed and lower-cased (what a CSV or spreadsheet export writes: ``%g``, a category typed
  again), exact duplicates left out;
- **near-duplicate images**: a 64-bit perceptual hash (imagehash's pHash) within a Hamming
  distance (``max_hamming``, 6 of 64 bits by default) confirmed by the correlation of 64x64
  thumbnails (``min_correlation``), exact duplicates left out; every image is read and checked
  against its registered digest first;
- with a model that has an embedding output, **embedding neighbours**: each validation item's
  nearest training item in that embedding, within a stated cosine distance;
- **overlapping item ids** (not for tables numbered by row: those ids say nothing);
- **overlapping time ranges**, on a time column both hold (a column of a date/time type, or
  ``time_column``): each range, and how many validation items fall inside training's.

An item of the validation set is *leaked* when it is an exact or near duplicate (or an embedding
neighbour) of a training item. The audit is kept in the store (``audits/leakage/``), keyed by
both versions and its settings, so that a validation given ``--train`` uses it without
computing it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.analysis.perceptual_hash import phash64, thumbnail_vector
from assay.core.accumulators import ConfusionAccumulator
from assay.core.batch import ScoredBatch
from assay.core.errors import InputError, describe_exception, did_you_mean
from assay.core.intervals import IntervalConfig
from assay.core.near_duplicates import hamming_pairs
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.spec import parse_model_spec
from assay.datasets import columns as cols
from assay.datasets.images import ImageError, verified_bytes
from assay.datasets.row_digests import plain, row_digests
from assay.services.audit_files import copy_out, publish
from assay.services.datasets import compared_columns, get_dataset, id_of, time_columns
from assay.services.integrity import verify_manifest, verify_model_file
from assay.services.models import get_model
from assay.services.out_folder import check_out
from assay.services.task_inputs import check_compatible
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema, read_manifest

# Rows of the validation table the shared columns must tell apart, at least this share of them
# distinct (checked from this many rows on): fewer, and they are no way to recognise a row.
MIN_ROWS_TO_TELL = 20
MIN_DISTINCT_SHARE = 0.5

DEFAULT_MAX_HAMMING = 6
DEFAULT_MIN_CORRELATION = 0.99
# Cosine distance between two items' embeddings at or below which they count as one item seen
# twice (through the model's own eyes): stated with every pair, settable per audit.
DEFAULT_MAX_EMBEDDING_DISTANCE = 0.01
SHOWN = 50
FILES = ("leakage.json", "leakage_pairs.parquet", "leakage.html")
PAIRS_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),  # exact | near | embedding
        ("item_id", pa.string()),
        ("train_item_id", pa.string()),
        ("distance", pa.float64()),  # bits of 64 (near), cosine (embedding), 0 (exact)
        ("correlation", pa.float64()),  # of the 64x64 thumbnails (near), 1 (exact)
    ]
)


@dataclass
class LeakageAudit:
    """What the audit found; ``summary()`` is leakage.json."""

    train: DatasetVersion
    dataset: DatasetVersion
    pairs: pa.Table  # PAIRS_SCHEMA, sorted by kind then item
    settings: dict[str, Any]
    id_overlap: dict[str, Any]
    time_overlap: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None

    @property
    def leaked_ids(self) -> pa.Array:
        """The validation items that are exact or near duplicates of a training item."""
        return pc.unique(self.pairs.column("item_id").combine_chunks())

    def count(self, kind: str) -> int:
        return int(pc.sum(pc.equal(self.pairs.column("kind"), kind)).as_py() or 0)

    def summary(self) -> dict[str, Any]:
        shown = self.pairs.slice(0, SHOWN * 2).to_pylist()
        return {
            "train": self.train.ref,
            "train_version": self.train.version,
            "dataset": self.dataset.ref,
            "dataset_version": self.dataset.version,
            "n_train_items": self.train.n_items,
            "n_items": self.dataset.n_items,
            "n_exact_duplicates": self.count("exact"),
            "n_near_duplicates": self.count("near"),
            "n_embedding_neighbours": self.count("embedding"),
            "n_leaked_items": len(self.leaked_ids),
            "pairs": shown,
            "pairs_file": "leakage_pairs.parquet",
            "id_overlap": self.id_overlap,
            "time_overlap": self.time_overlap,
            "settings": self.settings,
            "notes": self.notes,
        }


def check_roles(train: DatasetVersion, dataset: DatasetVersion) -> None:
    if train.role != "training":
        raise InputError(
            f"--train {train.ref} is a {train.role} set: register the model's training set with "
            "`assay dataset add NAME PATH --role training`"
        )
    if dataset.role == "training":
        raise InputError(f"--dataset {dataset.ref} is a training set: audit a validation set")
    if train.kind != dataset.kind:
        raise InputError(
            f"{train.ref} holds {train.kind} items and {dataset.ref} {dataset.kind} items: "
            "there is nothing to compare"
        )


def _settings(train: DatasetVersion, dataset: DatasetVersion, max_hamming: int,
              min_correlation: float, time_column: str | None, model: ModelVersion | None,
              max_embedding_distance: float) -> dict[str, Any]:  # fmt: skip
    if not 0 <= max_hamming <= 20:
        raise InputError("--max-hamming must be between 0 and 20 (bits of 64)")
    if not 0 < min_correlation <= 1:
        raise InputError("--min-correlation must lie in (0, 1]")
    image = dataset.kind == "image"
    return {
        "exact": "file SHA-256" if image else "digest of the values of the shared columns",
        "near": f"pHash (imagehash, 64 bits) within {max_hamming} bits, and 64x64 grayscale "
        f"thumbnails correlating at {min_correlation:g} or more"
        if image
        else "the same digest once numbers are rounded to float32 (what a model's float32 input "
        "reads: a float32 copy of a float64 row), or to 6 significant digits with text trimmed "
        "and lower-cased (what a CSV or spreadsheet export writes)",
        "max_hamming": max_hamming if image else None,
        "min_correlation": min_correlation if image else None,
        "time_column": time_column,
        "embedding": None
        if model is None
        else {
            "model": model.ref,
            "model_version": model.version,
            "metric": "cosine distance",
            "max_distance": max_embedding_distance,
        },
    }


def _folder(ws: Workspace, train: DatasetVersion, dataset: DatasetVersion,
            settings: dict[str, Any]) -> Path:  # fmt: skip
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return ws.home / "audits" / "leakage" / f"{train.version[:16]}-{dataset.version[:16]}-{key}"


def audit_leakage(
    ws: Workspace,
    train: str | DatasetVersion,
    dataset: str | DatasetVersion,
    out: Path | None = None,
    max_hamming: int = DEFAULT_MAX_HAMMING,
    time_column: str | None = None,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    model: str | ModelVersion | None = None,
    max_embedding_distance: float = DEFAULT_MAX_EMBEDDING_DISTANCE,
    columns: Sequence[str] | None = None,
) -> LeakageAudit:
    """Audit ``dataset`` against the training set ``train``; the files go to the store (and to
    ``out``). An audit already kept for both versions and these settings is read back, after
    its files are checked. ``columns``: the table columns rows are compared on (default: the
    shared ones, dates and times aside)."""
    if out is not None:
        check_out(out, ws.home)  # before the work, not after it
    tv = train if isinstance(train, DatasetVersion) else get_dataset(ws, train)
    dv = dataset if isinstance(dataset, DatasetVersion) else get_dataset(ws, dataset)
    check_roles(tv, dv)
    mv = None
    if model is not None:
        mv = model if isinstance(model, ModelVersion) else get_model(ws, model)
        spec = parse_model_spec(mv.spec)
        if spec.output.embedding is None:
            raise InputError(
                f"{mv.ref} has no embedding output (output.embedding in its spec): the audit "
                "compares items through a model's embeddings"
            )
        verify_model_file(mv)
        check_compatible(spec, tv)
        check_compatible(spec, dv)
    if not 0 <= max_embedding_distance <= 2:
        raise InputError("--max-embedding-distance must lie in [0, 2] (cosine distance)")
    settings = _settings(tv, dv, max_hamming, min_correlation, time_column, mv,
                         max_embedding_distance)  # fmt: skip
    verify_manifest(ws, tv)
    verify_manifest(ws, dv)
    if dv.kind != "image":
        settings["columns"], times = _compared(tv, dv, columns)
        if times:
            settings["times_left_out"] = times
    folder = _folder(ws, tv, dv, settings)
    audit = _kept(folder, tv, dv, settings)
    if audit is None:
        audit = _run(tv, dv, settings, mv)
        _write(audit, folder)
    audit.folder = folder
    copy_out(folder, FILES, out)
    return audit


def _kept(folder: Path, tv: DatasetVersion, dv: DatasetVersion,
          settings: dict[str, Any]) -> LeakageAudit | None:  # fmt: skip
    try:
        doc = json.loads((folder / "leakage.json").read_text(encoding="utf-8"))
        digest = hashlib.sha256((folder / "leakage_pairs.parquet").read_bytes()).hexdigest()
        if doc.get("pairs_sha256") != digest or doc.get("settings") != settings:
            return None  # changed or half-written: compute it again
        pairs = pq.read_table(folder / "leakage_pairs.parquet")
    except (OSError, ValueError):
        return None
    return LeakageAudit(
        tv, dv, pairs, settings, doc["id_overlap"], doc["time_overlap"], list(doc["notes"])
    )


def _run(tv: DatasetVersion, dv: DatasetVersion, settings: dict[str, Any],
         model: ModelVersion | None = None) -> LeakageAudit:  # fmt: skip
    notes: list[str] = []
    if dv.kind == "image":
        train_keys = _column(tv, cols.SHA256)
        keys = _column(dv, cols.SHA256)
    else:
        shared = list(settings["columns"])
        notes.append(f"rows compared on {len(shared)} shared column(s): " + ", ".join(shared[:8])
                     + (", ..." if len(shared) > 8 else ""))  # fmt: skip
        left_out = settings.get("times_left_out") or {}
        if left_out:
            notes.append(
                "left out as times (a copy taken at another time is the same item; --column "
                "compares them): " + ", ".join(f"{c} ({how})" for c, how in left_out.items())
            )
        train_keys, keys = _digests(tv, shared), _digests(dv, shared)
        distinct = int(pc.count_distinct(keys).as_py() or 0)
        if len(keys) >= MIN_ROWS_TO_TELL and distinct < len(keys) * MIN_DISTINCT_SHARE:
            # Sets sharing only a line number or a shift: every row would be a 'duplicate'.
            raise InputError(
                f"the columns {tv.ref} and {dv.ref} share ({', '.join(shared[:5])}"
                f"{', ...' if len(shared) > 5 else ''}) cannot tell rows apart: {distinct:,} "
                f"distinct value(s) over {len(keys):,} rows of {dv.ref}; a leakage audit of "
                "tables needs the features both hold"
            )
    train_ids, ids = _column(tv, cols.ITEM_ID), _column(dv, cols.ITEM_ID)
    exact = _exact(keys, train_keys, ids, train_ids)
    tables = [exact]
    if dv.kind != "image":
        found = exact.column("item_id").combine_chunks()
        for how, said in ((_as_float32, "at float32"), (_as_written, "as an export writes")):
            chance = _chance_matches(tv, dv, shared, how)
            if chance > MAX_CHANCE_MATCHES:
                # Rounded, the columns hold too few values to recognise a row: rows of the two
                # sets would meet by chance (a single fractional column at 6 digits).
                notes.append(
                    f"near duplicates {said} not looked for: rounded so, {chance:,.1f} pairs of "
                    "rows would agree on every compared column by chance"
                )
                continue
            rounded = _exact(_digests(dv, shared, how), _digests(tv, shared, how), ids, train_ids)
            rounded = rounded.filter(pc.invert(pc.is_in(rounded.column("item_id"),
                                                        value_set=found)))  # fmt: skip
            found = pa.concat_arrays([found, rounded.column("item_id").combine_chunks()])
            kind = pa.array(["near"] * rounded.num_rows, pa.string())
            tables.append(rounded.set_column(0, "kind", kind))
    if dv.kind == "image":
        near, unreadable = _near(
            tv, dv, int(settings["max_hamming"]), float(settings["min_correlation"]), exact
        )
        tables.append(near)
        if unreadable:
            notes.append(unreadable)
    if model is not None:
        found, unreadable = _embedding_neighbours(
            tv, dv, model, settings["embedding"]["max_distance"], exact
        )
        tables.append(found)
        if unreadable:
            notes.append(unreadable)
    pairs = pa.concat_tables(tables)
    return LeakageAudit(
        tv, dv, pairs, settings, _id_overlap(tv, dv, ids, train_ids),
        _time_overlap(tv, dv, settings["time_column"], settings.get("times_left_out") or {}),
        notes,
    )  # fmt: skip


def _column(d: DatasetVersion, name: str) -> pa.Array:
    return pq.ParquetFile(d.manifest_path).read(columns=[name]).column(name).combine_chunks()


def _compared(tv: DatasetVersion, dv: DatasetVersion,
              columns: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    """The columns rows are compared on: ``columns``, each held by both tables; else the ones
    both hold but dates and times (a row copied into training at another time stamp is the
    same item: a review's 20 copies went unfound, their times moved back a year; so were copies
    whose times a CSV held as text or as Unix seconds), and those left out as times."""
    train = set(compared_columns(tv))
    held = [c for c in compared_columns(dv) if c in train]
    if columns is not None:
        missing = [c for c in columns if c not in held]
        if missing:
            raise InputError(
                f"leakage: column {missing[0]!r} is not held by both {tv.ref} and {dv.ref}"
                + did_you_mean(missing[0], held)
            )
        if not columns:
            raise InputError("leakage: no column to compare rows on")
        return list(dict.fromkeys(columns)), {}
    times = time_columns(held, dv, tv)
    shared = [c for c in held if c not in times]
    if not shared:
        raise InputError(
            f"{tv.ref} and {dv.ref} have no column in common (besides ids, labels, dates and times)"
        )
    return shared, {c: times[c] for c in sorted(times)}


def _digests(
    d: DatasetVersion,
    shared: list[str],
    how: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> pa.Array:
    """Each row's digest over the ``shared`` columns (their types as this table holds them;
    with ``how``, its values as ``how`` makes them: the float32 a model's input would hold)."""
    parts = [
        row_digests(how(batch) if how is not None else batch, None, as_values=True)
        for batch in read_manifest(Path(d.manifest_path), 65_536, shared)
    ]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.binary(16))


# Near duplicates are looked for at a rounding only where fewer pairs of rows than this would
# agree on every compared column by chance (each column's values matched between the sets,
# the columns taken as independent).
MAX_CHANCE_MATCHES = 0.5


def _chance_matches(
    tv: DatasetVersion,
    dv: DatasetVersion,
    shared: list[str],
    how: Callable[[pa.RecordBatch], pa.RecordBatch],
) -> float:
    """Pairs of a validation and a training row expected to agree on every column once rounded
    by ``how``, if the columns were independent: the product over columns of the chance that
    two rows agree, times the pairs."""
    n_val, n_train = dv.n_items, tv.n_items
    if n_val == 0 or n_train == 0:
        return 0.0
    chance = 1.0
    for name in shared:
        val, train = (_value_counts(_rounded_column(d, name, how)) for d in (dv, tv))
        joined = val.join(train, "value", join_type="inner", right_suffix="_right")
        both = pc.multiply(
            pc.cast(joined.column("n"), pa.float64()),
            pc.cast(joined.column("n_right"), pa.float64()),
        )
        chance *= float(pc.sum(both).as_py() or 0.0) / (n_val * n_train)
    return chance * n_val * n_train


def _rounded_column(
    d: DatasetVersion, name: str, how: Callable[[pa.RecordBatch], pa.RecordBatch]
) -> pa.Array:
    parts = [how(b).column(0) for b in read_manifest(Path(d.manifest_path), 65_536, [name])]
    return pa.concat_arrays(parts) if parts else pa.array([])


def _value_counts(values: pa.Array) -> pa.Table:
    """How often each value occurs, as text (numbers through float64, so that the two sets'
    counts meet as the digests compare values: 1850 in a CSV is 1850.0 in Parquet)."""
    values = plain(values)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64())
    counts = pc.value_counts(pc.cast(values, pa.string()))
    return pa.table({"value": counts.field("values"), "n": counts.field("counts")})


def _as_float32(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its fractional number columns (floats, decimals) rounded to float32.
    Integers keep their values: rounded, every id above 2**24 met its neighbours, and tables
    with nothing in common had thousands of 'near duplicates' (a failed release gate)."""
    columns = [plain(c) for c in batch.columns]
    columns = [
        pc.cast(c, pa.float32(), safe=False) if pa.types.is_floating(c.type) else c for c in columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# Significant digits a number keeps in a CSV or spreadsheet export (C's and Python's %g).
SIGNIFICANT = 6


def _as_written(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as an export would write it: fractional numbers to ``SIGNIFICANT`` digits, text
    trimmed and lower-cased. A review's rows written with %.6g (float32 keeps about 7.2 digits),
    a category typed in lower case, a value with a trailing space, were not found."""
    columns = []
    for c in (plain(c) for c in batch.columns):
        if pa.types.is_floating(c.type):
            values = np.asarray(c.to_numpy(zero_copy_only=False), np.float64)
            null = np.asarray(c.is_null().to_numpy(zero_copy_only=False), bool)
            c = pa.array(_significant(values), pa.float64(), mask=null)
        elif pa.types.is_string(c.type) or pa.types.is_large_string(c.type):
            c = pc.utf8_lower(pc.utf8_trim_whitespace(c))
        columns.append(c)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _significant(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to ``SIGNIFICANT`` significant digits exactly as ``%g`` writes it: the
    decimal nearest to the binary value itself. ``round(x * 10**e) / 10**e`` rounded the
    product, which lands on a half where the value lies just below or above one: 109.4255 is
    109.42549999..., written 109.425 by %g and made 109.426 here, so a review's rows of 590
    four-decimal sensors copied into training through a %.6g CSV met no validation row and the
    gate passed. A product on a half is settled by its exact error (``_two_product``)."""
    out = x.astype(np.float64, copy=True)
    ok = np.flatnonzero(np.isfinite(out) & (out != 0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the far ones: below
        out[ok] = _rounded(out[ok])
    return out


def _rounded(v: np.ndarray) -> np.ndarray:
    """``_significant`` of finite non-zero values."""
    e = SIGNIFICANT - 1 - np.floor(np.log10(np.abs(v))).astype(np.int64)
    far = np.abs(e) > MAX_EXACT_POWER  # beyond exact powers of ten: as Python writes them
    e[far] = 0
    p = _scale(v, e)
    # log10 a hair off at a decade's edge: one step back for those few.
    off = (np.abs(p) < 10.0 ** (SIGNIFICANT - 1)).astype(np.int64)
    off -= np.abs(p) >= 10.0**SIGNIFICANT
    if off.any():
        e = np.clip(e + off, -MAX_EXACT_POWER, MAX_EXACT_POWER)
        p = _scale(v, e)
    r = np.round(p)  # half to even: %g's rule where the value is exactly on a half
    half = np.flatnonzero(np.abs(p - np.trunc(p)) == 0.5)  # the product on one: which side?
    if half.size:
        side, below = _side(v[half], e[half], p[half]), np.floor(p[half])
        r[half] = np.where(side > 0, below + 1, np.where(side < 0, below, r[half]))
    out: np.ndarray = np.where(e >= 0, r / _POWERS[np.abs(e)], r * _POWERS[np.abs(e)])
    if far.any():
        out[far] = [float(f"{a:.{SIGNIFICANT}g}") for a in v[far]]
    return out


# Powers of ten float64 holds exactly (10**22 is the last), indexed by their exponent.
MAX_EXACT_POWER = 22
_POWERS = 10.0 ** np.arange(MAX_EXACT_POWER + 1)


def _scale(v: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``v * 10**e``, correctly rounded (a product by an exact power, or a quotient by one)."""
    scaled: np.ndarray = np.where(e >= 0, v * _POWERS[np.abs(e)], v / _POWERS[np.abs(e)])
    return scaled


def _side(v: np.ndarray, e: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The sign of ``v * 10**e - p``, exactly: on which side of the rounded ``p`` (a half) the
    exact value lies. For ``e >= 0`` the product's error; else ``v - p * 10**-e``, whose two
    terms lie within a factor of two of each other, so that their difference is exact."""
    power = _POWERS[np.abs(e)]
    _, err = _two_product(v, power)
    m, merr = _two_product(p, power)
    return np.sign(np.where(e >= 0, err, (v - m) - merr))


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a * b`` as ``p + err`` exactly (Dekker's product with Veltkamp's split), ``p`` the
    float64 product; exact for the magnitudes here, far from overflow and underflow."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    err = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, err


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = 134_217_729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _exact(keys: pa.Array, train_keys: pa.Array, ids: pa.Array, train_ids: pa.Array) -> pa.Table:
    """One pair per validation item whose content a training item has (the first such one)."""
    usable = train_keys.is_valid()  # a missing file has no digest: it duplicates nothing
    pool, pool_ids = train_keys.filter(usable), train_ids.filter(usable)
    at = pc.index_in(keys, value_set=pool)
    rows = pc.indices_nonzero(pc.is_valid(at))
    return pa.table(
        {
            "kind": pa.array(["exact"] * len(rows), pa.string()),
            "item_id": pc.take(ids, rows).cast(pa.string()),
            "train_item_id": pc.take(pool_ids, pc.take(at, rows)).cast(pa.string()),
            "distance": pa.array(np.zeros(len(rows))),
            "correlation": pa.array(np.ones(len(rows))),
        },
        schema=PAIRS_SCHEMA,
    )


def _hashes(d: DatasetVersion) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """pHash of every image (verified against its digest), whether it could be read, and the
    reasons of those that could not."""
    table = pq.ParquetFile(d.manifest_path).read(columns=[cols.PATH, cols.SHA256])
    paths = table.column(cols.PATH).to_pylist()
    shas = table.column(cols.SHA256).to_pylist()

    def one(args: tuple[str | None, str | None]) -> int | str:
        path, sha = args
        if path is None or sha is None:
            return "no readable file"
        try:
            return phash64(verified_bytes(path, sha))
        except ImageError as exc:
            return str(exc)
        except Exception as exc:  # whatever a damaged file makes Pillow raise
            return f"image cannot be decoded ({describe_exception(exc)})"

    with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 1)) as pool:
        found = list(pool.map(one, zip(paths, shas, strict=True)))
    ok = np.array([isinstance(f, int) for f in found], bool)
    hashes = np.array([f if isinstance(f, int) else 0 for f in found], np.uint64)
    return hashes, ok, [f for f in found if isinstance(f, str)]


def _thumbnails(d: DatasetVersion, rows: np.ndarray) -> dict[int, np.ndarray]:
    """Zero-mean, unit-norm 64x64 grayscale thumbnails of the images at ``rows`` (verified
    against their digests; an image that cannot be read is left out)."""
    table = pq.ParquetFile(d.manifest_path).read(columns=[cols.PATH, cols.SHA256])
    paths, shas = table.column(cols.PATH), table.column(cols.SHA256)

    def one(row: int) -> tuple[int, np.ndarray | None]:
        try:
            return row, thumbnail_vector(verified_bytes(paths[row].as_py(), shas[row].as_py()))
        except Exception:  # damaged or changed since its hash: no thumbnail, no pair
            return row, None

    with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 1)) as pool:
        found = dict(pool.map(one, rows.tolist()))
    return {k: v for k, v in found.items() if v is not None}


def _near(tv: DatasetVersion, dv: DatasetVersion, max_hamming: int, min_correlation: float,
          exact: pa.Table) -> tuple[pa.Table, str | None]:  # fmt: skip
    """Validation images within ``max_hamming`` bits of a training image's pHash whose 64x64
    thumbnails also correlate at ``min_correlation`` or more, exact duplicates left out: each
    with its most similar training image.

    The second test is needed because a perceptual hash cannot tell apart images of one product:
    synthetic cable scans differ from one another by a few bits of pHash (their 64x64 thumbnails
    still correlate at up to 0.984: the cable's profile dominates), while a re-encoded,
    brightened or resized copy keeps a correlation above 0.996."""
    train_hash, train_ok, train_bad = _hashes(tv)
    hashes, ok, bad = _hashes(dv)
    train_rows, rows = np.flatnonzero(train_ok), np.flatnonzero(ok)
    i, j, dist = hamming_pairs(hashes[rows], train_hash[train_rows], max_hamming)
    ids, train_ids = _column(dv, cols.ITEM_ID), _column(tv, cols.ITEM_ID)
    item, train_item = rows[i], train_rows[j]
    exact_ids = set(exact.column("item_id").to_pylist())
    mine, theirs = _thumbnails(dv, np.unique(item)), _thumbnails(tv, np.unique(train_item))
    corr = np.array(
        [
            float(mine[a] @ theirs[b]) if a in mine and b in theirs else -1.0
            for a, b in zip(item.tolist(), train_item.tolist(), strict=True)
        ]
    )
    close = corr >= min_correlation
    item, train_item, dist, corr = item[close], train_item[close], dist[close], corr[close]
    # The most similar training image per validation image (ties: the closer hash, the first).
    order = np.lexsort((train_item, dist, -corr, item))
    item, train_item, dist, corr = item[order], train_item[order], dist[order], corr[order]
    first = np.ones(item.size, bool)
    first[1:] = item[1:] != item[:-1]
    item, train_item, dist, corr = item[first], train_item[first], dist[first], corr[first]
    item_ids = (
        ids.take(pa.array(item)).cast(pa.string()) if item.size else pa.array([], pa.string())
    )
    keep = np.array([x not in exact_ids for x in item_ids.to_pylist()], bool)
    table = pa.table(
        {
            "kind": pa.array(["near"] * int(keep.sum()), pa.string()),
            "item_id": item_ids.filter(pa.array(keep)),
            "train_item_id": train_ids.take(pa.array(train_item[keep])).cast(pa.string()),
            "distance": pa.array(dist[keep].astype(np.float64)),
            "correlation": pa.array(corr[keep].astype(np.float64)),
        },
        schema=PAIRS_SCHEMA,
    )
    note = None
    if train_bad or bad:
        note = (
            f"{len(bad)} validation and {len(train_bad)} training image(s) could not be read "
            f"for their perceptual hash (first: {(bad or train_bad)[0]}); they are left out "
            "of the near-duplicate search"
        )
    return table, note


def _embeddings(d: DatasetVersion, model: ModelVersion) -> tuple[np.ndarray, np.ndarray]:
    """The model's embedding of every item it can read, and the rows they belong to."""
    from assay.core.ports import EmbeddingRuntime, model_batch
    from assay.runtimes import load_model
    from assay.services.task_inputs import decoder_columns, decoder_factory

    spec = parse_model_spec(model.spec)
    runtime = load_model(Path(model.file_path), spec, model.runtime, spin=False)
    decoder = decoder_factory(spec)()
    columns = decoder_columns(spec, manifest_schema(Path(d.manifest_path)))
    vectors, rows = [], []
    offset = 0
    try:
        for raw in read_manifest(Path(d.manifest_path), 256, columns):
            prepared = decoder(raw)
            readable = np.flatnonzero(prepared.readable)
            if readable.size:
                _, emb = cast(EmbeddingRuntime, runtime).predict_with_embedding(
                    model_batch(prepared, readable, offset)
                )
                finite = np.isfinite(emb).all(axis=1)
                vectors.append(np.asarray(emb, np.float64)[finite])
                rows.append(readable[finite] + offset)
            offset += prepared.n_items
    finally:
        decoder.close()
        runtime.close()
    if not vectors:
        return np.zeros((0, 1)), np.zeros(0, np.int64)
    return np.vstack(vectors), np.concatenate(rows)


def _embedding_neighbours(tv: DatasetVersion, dv: DatasetVersion, model: ModelVersion,
                          max_distance: float, exact: pa.Table) -> tuple[pa.Table, str | None]:  # fmt: skip
    """Each validation item's nearest training item in the model's embedding (cosine distance,
    scikit-learn's exact NearestNeighbors), kept when within ``max_distance``; exact duplicates
    left out."""
    from sklearn.neighbors import NearestNeighbors

    train_vec, train_rows = _embeddings(tv, model)
    vec, rows = _embeddings(dv, model)
    note = None
    unread = (dv.n_items - rows.size) + (tv.n_items - train_rows.size)
    if unread:
        note = f"{unread} item(s) could not be embedded by {model.ref}; they are left out of the embedding search"
    if not len(train_vec) or not len(vec):
        return pa.table({k: [] for k in PAIRS_SCHEMA.names}, schema=PAIRS_SCHEMA), note
    index = NearestNeighbors(n_neighbors=1, metric="cosine").fit(train_vec)
    distance, nearest = index.kneighbors(vec)
    distance, nearest = distance[:, 0], nearest[:, 0]
    close = distance <= max_distance
    ids, train_ids = _column(dv, cols.ITEM_ID), _column(tv, cols.ITEM_ID)
    item_ids = ids.take(pa.array(rows[close])).cast(pa.string())
    keep = pc.invert(pc.is_in(item_ids, value_set=exact.column("item_id").combine_chunks()))
    table = pa.table(
        {
            "kind": pa.array(["embedding"] * int(pc.sum(keep).as_py() or 0), pa.string()),
            "item_id": item_ids.filter(keep),
            "train_item_id": train_ids.take(pa.array(train_rows[nearest[close]]))
            .cast(pa.string())
            .filter(keep),
            "distance": pa.array(distance[close]).filter(keep),
            "correlation": pa.nulls(int(pc.sum(keep).as_py() or 0), pa.float64()),
        },
        schema=PAIRS_SCHEMA,
    )
    return table, note


def _id_overlap(tv: DatasetVersion, dv: DatasetVersion, ids: pa.Array,
                train_ids: pa.Array) -> dict[str, Any]:  # fmt: skip
    numbered = [
        d.ref
        for d in (tv, dv)
        if d.format in ("table", "manifest", "secom") and not id_of(d.options)
    ]
    if numbered:
        return {"n": None, "examples": [],
                "note": f"{', '.join(numbered)} number(s) items by row: ids are not compared"}  # fmt: skip
    inside = pc.is_in(ids, value_set=train_ids)
    shared = ids.filter(inside)
    return {"n": len(shared), "examples": shared.slice(0, 20).cast(pa.string()).to_pylist(),
            "note": None}  # fmt: skip


def _time_overlap(tv: DatasetVersion, dv: DatasetVersion, column: str | None,
                  times: dict[str, str]) -> dict[str, Any] | None:  # fmt: skip
    """The two sets' ranges on ``column``, else on the first time column both hold of a type
    that orders (a date/time type, or Unix times); times written as text are not ordered."""
    a, b = manifest_schema(Path(tv.manifest_path)), manifest_schema(Path(dv.manifest_path))
    chosen = column is not None
    if column is None:
        both = [f.name for f in b if f.name in a.names and f.name not in cols.RESERVED]
        timed = [n for n in both if pa.types.is_temporal(b.field(n).type)]
        timed += [n for n in both if times.get(n, "").startswith("Unix") and n not in timed]
        if not timed:
            return None
        column = timed[0]
    for schema, d in ((a, tv), (b, dv)):
        if column not in schema.names:
            raise InputError(f"--time-column {column!r} is not a column of {d.ref}")
    train, mine = _column(tv, column), _column(dv, column)
    try:
        lo, hi = pc.min_max(train).values()
        my_lo, my_hi = pc.min_max(mine).values()
        inside = pc.and_(pc.greater_equal(mine, lo), pc.less_equal(mine, hi))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError) as exc:
        if chosen:
            raise InputError(f"--time-column {column!r} cannot be ordered ({exc})") from None
        # Found on its own (e.g. one set's times carry a time zone, the other's do not): the
        # comparison of ranges is information, not a reason to stop the audit.
        return {"column": column, "overlap": None,
                "note": f"{column}: the two sets' times cannot be compared ({type(exc).__name__})"}  # fmt: skip
    n_inside = int(pc.sum(inside.cast(pa.int64())).as_py() or 0)
    return {
        "column": column,
        "train_range": [str(lo.as_py()), str(hi.as_py())],
        "range": [str(my_lo.as_py()), str(my_hi.as_py())],
        "n_inside_train_range": n_inside,
        "overlap": n_inside > 0,
    }


def _write(audit: LeakageAudit, folder: Path) -> None:
    """The audit's files, into the store; leakage.json keeps the digest of the pairs file, which
    is checked before a kept audit is used again."""
    from assay.reports.leakage import render_leakage

    sink = pa.BufferOutputStream()
    pq.write_table(audit.pairs, sink)
    pairs = sink.getvalue().to_pybytes()
    doc = audit.summary() | {"pairs_sha256": hashlib.sha256(pairs).hexdigest()}
    publish(
        folder,
        {
            "leakage_pairs.parquet": pairs,
            "leakage.json": json.dumps(doc, indent=2, default=str).encode(),
            "leakage.html": render_leakage(doc, _side_by_side(audit)).encode(),
        },
    )


def _side_by_side(audit: LeakageAudit) -> list[dict[str, Any]]:
    """The first pairs with what the report shows of each side: thumbnails, or the rows."""
    from assay.reports.thumbnails import thumbnail_data_uri

    shown = audit.pairs.slice(0, SHOWN).to_pylist()
    if not shown:
        return []
    sides = []
    for d, key in ((audit.dataset, "item_id"), (audit.train, "train_item_id")):
        wanted = pa.array([p[key] for p in shown], pa.string())
        ids = _column(d, cols.ITEM_ID).cast(pa.string())
        rows = pc.index_in(wanted, value_set=ids)
        names = [n for n in manifest_schema(Path(d.manifest_path)).names
                 if n not in cols.RESERVED or n in (cols.PATH, cols.LABEL)]  # fmt: skip
        table = pq.ParquetFile(d.manifest_path).read(columns=names).take(rows)
        sides.append(table.to_pylist())
    out = []
    for pair, mine, theirs in zip(shown, sides[0], sides[1], strict=True):
        view: dict[str, Any] = {"pair": pair}
        for name, row in (("item", mine), ("train", theirs)):
            path = row.pop(cols.PATH, None)
            view[name] = {
                "label": row.pop(cols.LABEL, None),
                "image": thumbnail_data_uri(path, 160) if path else None,
                "values": row,
            }
        out.append(view)
    return out


def leakage_in_run(
    audit: LeakageAudit,
    predictions: Path,
    labels: tuple[str, ...],
    negative_index: int | None,
    intervals: IntervalConfig,
) -> dict[str, Any]:
    """``result.json`` ``leakage``: the audit's counts, and the confusion metrics of the run's
    judged items with the leaked ones left out (the same formulas and intervals as the run's)."""
    table = pq.read_table(predictions, columns=["item_id", "label", "predicted", "correct"])
    judged = np.asarray(table.column("correct").is_valid().to_numpy(zero_copy_only=False), bool)
    leaked = np.asarray(
        pc.is_in(table.column("item_id"), value_set=audit.leaked_ids).to_numpy(
            zero_copy_only=False
        ),
        bool,
    )
    keep = judged & ~leaked
    index = {label: k for k, label in enumerate(labels)}
    y_true = np.array([index[v] for v in table.column("label").filter(pa.array(keep)).to_pylist()],
                      np.int64)  # fmt: skip
    y_pred = np.array(
        [index[v] for v in table.column("predicted").filter(pa.array(keep)).to_pylist()], np.int64
    )
    acc = ConfusionAccumulator(labels, intervals, negative_index)
    state = acc.update(
        acc.empty(), ScoredBatch(y_true, y_pred, np.zeros((len(y_true), len(labels))))
    )
    metrics = acc.finalize(state).metrics if len(y_true) else {}
    s = audit.summary()
    return {
        "train": s["train"],
        "audit": None if audit.folder is None else str(audit.folder),
        "n_leaked_items": int(leaked.sum()),
        "n_leaked_judged": int((leaked & judged).sum()),
        "n_exact_duplicates": s["n_exact_duplicates"],
        "n_near_duplicates": s["n_near_duplicates"],
        "settings": s["settings"],
        "n_judged_without_leaked": int(keep.sum()),
        "metrics_without_leaked": {k: v.to_dict() for k, v in metrics.items()},
    }
