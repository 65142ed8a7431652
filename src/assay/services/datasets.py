"""register_dataset and friends: turn a path into an immutable, versioned dataset."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.arrow import strings
from assay.core.errors import InputError
from assay.core.records import DATASET_ROLES, DatasetVersion, VersionRef, check_name
from assay.core.spec import canonical_label, label_key
from assay.datasets import columns as cols
from assay.datasets.annotations import (
    LongAnnotations,
    annotator_name,
    consensus,
    with_consensus,
)
from assay.datasets.corrections import Corrections
from assay.datasets.images import add_image_properties
from assay.datasets.registry import ReadOptions, detect_reader, get_reader
from assay.datasets.row_digests import input_columns, with_row_digests
from assay.datasets.tables import as_string
from assay.datasets.time_columns import named_as_time, time_kind
from assay.datasets.versioning import VersionDigest, add_file_digests
from assay.digests import file_sha256
from assay.services.remote import fetch, is_url
from assay.services.workspace import Workspace
from assay.store.catalog import AlreadyStoredError
from assay.store.manifests import (
    count_nulls,
    duplicate_ids,
    manifest_schema,
    read_manifest,
    write_manifest,
)

# Distinct values kept per label column to check experts' classes (more: not class names).
MAX_CLASSES = 1000


@dataclass(frozen=True)
class Registered:
    dataset: DatasetVersion
    created: bool  # False: identical content was already registered under this name


def register_dataset(
    ws: Workspace,
    name: str,
    path: Path | str,
    fmt: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    annotations: Path | str | None = None,
    allow_outside: bool = False,
    corrections: Path | str | None = None,
    role: str = "validation",
) -> Registered:
    """Read ``path``, store its manifest and catalogue it; identical content is a no-op.

    ``role``: ``validation`` (models are judged on it) or ``training`` (audited for leakage
    against validation sets, never validated on); every version of a name has the same role.

    ``annotations``: a long table (item_id, annotator, label) of several experts' labels, joined
    to the items by id; see ``assay.datasets.annotations`` for how the reference label follows.
    ``corrections``: labels corrected by a review (item_id, label[, previous_label]), applied
    on the way in; see ``assay.datasets.corrections``.
    """
    check_name(name, "dataset")
    _check_role(ws, name, role)
    url = str(path) if is_url(str(path)) else None
    src = fetch(str(path), ws.home / "cache") if url else Path(path).expanduser()
    if not src.exists():
        raise InputError(f"path does not exist: {src}")
    long = LongAnnotations.load(Path(annotations)) if annotations is not None else None
    reader = get_reader(fmt) if fmt else detect_reader(src)
    source = reader.open(
        src,
        ReadOptions(
            label_column=label_column,
            id_column=id_column,
            annotated=long is not None,
            allow_outside=allow_outside,
            unlabelled=role == "production",
        ),
    )
    options = dict(source.options)
    if long is not None:
        options["annotations"] = str(long.path.resolve())

    def new_digest() -> VersionDigest:
        digest = VersionDigest(source.format, dict(source.options))
        for f in source.files:
            digest.add_file(f, source.root)
        if long is not None:
            digest.add_file(long.path, long.path.parent)
        return digest

    def new_fixes() -> Corrections | None:
        if corrections is None:
            return None
        fixes = Corrections.load(Path(corrections).expanduser())
        fixes.source_column = str(options.get("label_column") or "label")
        return fixes

    def hashed(
        pool: ThreadPoolExecutor,
        experts: Experts,
        digest: VersionDigest,
        fixes: Corrections | None,
    ) -> Iterator[pa.RecordBatch]:
        for batch in source.batches():
            if source.kind == "image":
                batch = add_file_digests(batch, pool)
                batch = add_image_properties(batch, pool)
            else:  # what recognises an unchanged row in a later version
                batch = with_row_digests(batch, label_of(options), id_of(options))
            batch = experts.apply(batch, source.has_label)
            digest.add_items(batch)  # the items as read: corrections come on top
            if fixes is not None:
                batch = fixes.apply(batch)
            yield batch

    tmp = ws.files.temp_dir()
    try:
        seed: dict[str, str] | None = None
        while True:
            digest, experts, fixes = new_digest(), Experts(long, seed), new_fixes()
            with ThreadPoolExecutor(4, thread_name_prefix="assay-hash") as pool:
                stats = write_manifest(
                    hashed(pool, experts, digest, fixes), tmp / "manifest.parquet"
                )
            if seed is not None or not experts.late:
                break
            # An expert wrote a class in another spelling before the label column first wrote
            # it (a rare class, a wide table's small batches): read once more, the label
            # column's spellings known from the start (a review: refused by row order).
            seed = experts.label_spellings
        if fixes is not None:
            options["corrections"] = fixes.finish()
        if stats.n_items == 0:
            raise InputError(f"dataset {src} is empty: the {source.format} reader found no items")
        duplicates = duplicate_ids(tmp / "manifest.parquet")
        if duplicates:
            n, examples = duplicates
            raise InputError(
                f"{n} item id(s) occur more than once in {src.name}, e.g. "
                + ", ".join(repr(e) for e in examples)
                + ": ids must be unique (choose another --id-column, or none for row numbers)"
            )
        version = digest.hexdigest()
        if fixes is not None:  # the same as correcting the version registered without them
            version = corrected_version(version, fixes.sha256)
        existing = ws.catalog.find_dataset(name, version)
        if existing is not None:
            return Registered(existing, created=False)
        final = _put_manifest(ws, tmp, version)
        assert stats.schema is not None
        notes = list(source.notes) + experts.notes() + _correction_notes(options)
        if experts.annotators:
            options["annotators"] = list(experts.annotators)
            options["reference_label"] = (
                f"the dataset's {options.get('label_column') or 'label'} column (adjudicated)"
                if source.has_label
                else f"the consensus (strict majority) of {len(experts.annotators)} experts"
            )
        if stats.n_unlabelled and role == "validation":  # a production sample has none
            notes.append(
                f"{stats.n_unlabelled} item(s) have no label and will be reported as not judged"
            )
        if source.kind == "image":
            missing = count_nulls(final / "manifest.parquet", cols.SHA256)
            if missing:
                notes.append(f"{missing} referenced file(s) are missing or unreadable")
            notes += _mask_notes(final / "manifest.parquet") + _box_notes(
                final / "manifest.parquet"
            )
        try:
            record = ws.catalog.add_dataset(
                name=name,
                version=version,
                format=source.format,
                kind=source.kind,
                source=url or str(src.resolve()),
                options=options,
                n_items=stats.n_items,
                label_counts=dict(sorted(stats.label_counts.items())),
                columns=[
                    {"name": f.name, "type": str(f.type)}
                    for f in stats.schema
                    if f.name not in cols.RESERVED
                ],
                manifest_path=str(final / "manifest.parquet"),
                manifest_sha256=file_sha256(final / "manifest.parquet"),
                notes=notes,
                role=role,
            )
        except AlreadyStoredError as same:  # another process stored it first
            return Registered(same.record, created=False)
        return Registered(record, created=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _put_manifest(ws: Workspace, tmp: Path, version: str) -> Path:
    """The stored folder of a new version's manifest: named by the version, unless a manifest
    of the same content with other file locations lies there (the same images registered from
    another folder, under another name), which the new version must not read: a review's copy
    registered as ``tiles-b`` read the first folder's paths, every image 'not found'."""
    final = ws.files.dataset_dir(version)
    if final.exists():
        mine = file_sha256(tmp / "manifest.parquet")
        if file_sha256(final / "manifest.parquet") != mine:
            final = ws.files.dataset_dir(f"{version}-{mine[:16]}")
    return ws.files.put_dir(tmp, final)


def _correction_notes(options: dict[str, object]) -> list[str]:
    done = options.get("corrections")
    if not isinstance(done, dict):
        return []
    return [
        f"labels corrected by review: {done['n_changed']} of {done['n_corrections']} reviewed "
        f"item(s) relabelled ({done['file']}, sha256 {str(done['sha256'])[:12]})"
    ]


def _mask_notes(manifest: Path) -> list[str]:
    """Expert masks named but missing or unreadable: their images will not be judged (a
    review's manifest registered without a word, the image unjudged later)."""
    if not {cols.MASK, cols.MASK_SHA256} <= set(pq.read_schema(manifest).names):
        return []
    table = pq.read_table(manifest, columns=[cols.MASK, cols.MASK_SHA256])
    named = pc.is_valid(table.column(cols.MASK))
    lost = pc.sum(pc.and_(named, pc.is_null(table.column(cols.MASK_SHA256)))).as_py() or 0
    return (
        [f"{lost} expert mask file(s) are missing or unreadable: those images will not be judged"]
        if lost
        else []
    )


def _box_notes(manifest: Path) -> list[str]:
    """What no detector can find among the experts' boxes (scored as misses, as pycocotools
    does): boxes wholly outside their image, boxes of no area (a review's hostile
    annotations were scored so without a word)."""
    from assay.datasets.boxes import BOXES, unfindable_boxes

    names = set(pq.read_schema(manifest).names)
    if BOXES not in names or not {"image_width", "image_height"} <= names:
        return []
    table = pq.read_table(manifest, columns=[BOXES, "image_width", "image_height"])
    outside, empty = unfindable_boxes(
        table.column(BOXES), table.column("image_width"), table.column("image_height")
    )
    found = [
        *([f"{outside} lie wholly outside their image"] if outside else []),
        *([f"{empty} have no area"] if empty else []),
    ]
    if not found:
        return []
    return [
        f"expert boxes no detector can find, each scored as a miss: {' and '.join(found)} "
        "(check the annotations)"
    ]


def _check_role(ws: Workspace, name: str, role: str) -> None:
    """A known role, and the one the name's earlier versions have."""
    if role not in DATASET_ROLES:
        raise InputError(f"--role must be one of {', '.join(DATASET_ROLES)}, got {role!r}")
    earlier = {d.role for d in ws.catalog.list_datasets() if d.name == name}
    if earlier and role not in earlier:
        raise InputError(
            f"dataset {name} is registered as a {earlier.pop()} set; every version of a name "
            f"has one role (register the {role} set under another name)"
        )


def label_of(options: dict[str, object]) -> str | None:
    """The source's label column, when it names one."""
    label = options.get("label_column")
    return str(label) if label else None


def id_of(options: dict[str, object]) -> str | None:
    """The source's id column, when it names one (else items are numbered by row)."""
    name = options.get("id_column")
    return str(name) if name else None


def compared_columns(d: DatasetVersion) -> list[str]:
    """The columns that describe an item, for comparing two datasets (leakage, coverage): not
    its id, its label, the experts' labels, nor an image manifest's file paths."""
    schema = manifest_schema(Path(d.manifest_path))
    names = input_columns(schema, label_of(d.options), id_of(d.options))
    skip = set(cols.annotator_columns(schema.names)) | ({"path"} if d.kind == "image" else set())
    return [n for n in names if n not in skip]


def time_columns(names: list[str], *versions: DatasetVersion) -> dict[str, str]:
    """Which of ``names`` hold times in any of ``versions``, and how (see
    ``assay.datasets.time_columns``): a column typed as a time in one set and written as text
    in the other is a time in both."""
    found: dict[str, str] = {}
    for d in versions:
        schema = manifest_schema(Path(d.manifest_path))
        for name in names:
            if name in found or name not in schema.names:
                continue
            t = schema.field(name).type
            t = t.value_type if pa.types.is_dictionary(t) else t
            if pa.types.is_temporal(t):
                found[name] = "a date/time type"
                continue
            text = pa.types.is_string(t) or pa.types.is_large_string(t)
            number = pa.types.is_integer(t) or pa.types.is_floating(t)
            if not (text or (number and named_as_time(name))):
                continue  # read no other column: a sensor table holds hundreds
            column = pq.ParquetFile(d.manifest_path).read(columns=[name]).column(name)
            kind = time_kind(name, column)
            if kind is not None:
                found[name] = kind
    return found


def corrected_version(base: str, corrections_sha256: str) -> str:
    """The version of a dataset version with corrections applied, whichever way it is made
    (``--corrections`` at registration, or from a review in the web app)."""
    return hashlib.sha256(f"{base}:corrections:{corrections_sha256}".encode()).hexdigest()


def correct_dataset(ws: Workspace, parent: DatasetVersion, corrections: Path) -> Registered:
    """A new version of ``parent`` with the labels a review corrected: the same items, files
    and columns, the reference labels replaced. Registering the same corrections twice returns
    the version made the first time."""
    fixes = Corrections.load(corrections)
    fixes.source_column = str(parent.options.get("label_column") or "label")
    version = corrected_version(parent.version, fixes.sha256)
    existing = ws.catalog.find_dataset(parent.name, version)
    if existing is not None:
        return Registered(existing, created=False)
    tmp = ws.files.temp_dir()
    try:
        stats = write_manifest(
            (fixes.apply(b) for b in read_manifest(Path(parent.manifest_path), 65_536)),
            tmp / "manifest.parquet",
        )
        options = dict(parent.options) | {
            "corrections": fixes.finish() | {"parent": parent.ref},
        }
        shutil.copyfile(corrections, tmp / f"corrections{corrections.suffix.lower() or '.csv'}")
        final = _put_manifest(ws, tmp, version)
        try:
            record = ws.catalog.add_dataset(
                name=parent.name,
                version=version,
                format=parent.format,
                kind=parent.kind,
                source=parent.source,
                options=options,
                n_items=stats.n_items,
                label_counts=dict(sorted(stats.label_counts.items())),
                columns=parent.columns,
                manifest_path=str(final / "manifest.parquet"),
                manifest_sha256=file_sha256(final / "manifest.parquet"),
                notes=[n for n in parent.notes if not n.startswith("labels corrected by review")]
                + _correction_notes(options)
                + [f"derived from {parent.ref}"],
                role=parent.role,
            )
        except AlreadyStoredError as same:  # another process stored it first
            return Registered(same.record, created=False)
        return Registered(record, created=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Experts:
    """Several experts' labels on the way into the manifest: joined, counted, and turned into the
    consensus label (or, beside an adjudicated label column, into the disputed flag only)."""

    def __init__(self, long: LongAnnotations | None, seed: dict[str, str] | None = None) -> None:
        self.long = long
        self.annotators: tuple[str, ...] = ()
        self.n_disputed = 0
        self.has_label = True
        self._unique = long.unique_ids() if long is not None else None
        self._matched = np.zeros(0 if self._unique is None else len(self._unique), dtype=bool)
        self._values: dict[str, set[str]] = {}  # distinct labels per column (up to MAX_CLASSES)
        # canonical_label -> the spelling kept: the label column's (``seed``: all of them, known
        # from a first reading), else the first seen
        self._spelling: dict[str, str] = dict(seed or {})
        self.label_spellings: dict[str, str] = {}  # canonical_label -> the label column's
        self.late = False  # a label spelling came after an expert's other one for its class
        self._respelt: dict[tuple[str, str], str] = {}  # (column, as written) -> as kept

    def apply(self, batch: pa.RecordBatch, has_label: bool) -> pa.RecordBatch:
        if self.long is not None:
            assert self._unique is not None
            ids = batch.column(cols.ITEM_ID)
            self._matched |= np.asarray(
                pc.is_in(self._unique, value_set=ids).to_numpy(zero_copy_only=False), dtype=bool
            )
            batch = self.long.join(batch)
        names = cols.annotator_columns(batch.schema.names)
        if not names:
            return batch
        self.annotators = tuple(annotator_name(c) for c in names)
        self.has_label = has_label
        batch = self._respell(batch, names, has_label)
        for name in names:
            self._seen(name, as_string(batch.column(name)))
        if has_label:
            self._seen(cols.LABEL, batch.column(cols.LABEL))
        if has_label:  # an adjudicated label stays the reference; disputes are only counted
            _, disputed = consensus([batch.column(c) for c in names])
            self.n_disputed += int(disputed.sum())
            return batch
        batch = with_consensus(batch)
        self.n_disputed += int(pc.sum(batch.column(cols.DISPUTED)).as_py() or 0)
        return batch

    def _respell(self, batch: pa.RecordBatch, names: list[str], has_label: bool) -> pa.RecordBatch:
        """The experts' columns with each class in the spelling first seen for it, the label
        column's first: a CSV's expert column with one empty field is written ``1.0`` by pandas
        beside a label column's ``1``, one class that, compared as written, agreed with nothing.
        Only spellings of one value (``canonical_label``: ``1``/``1.0``, ``True``/``true``) are
        taken for each other; ``Good`` beside ``good`` is still refused (``_check_spellings``).
        A spelling an expert wrote in a batch before the label column wrote its own is kept,
        and refused there too. Columns of numbers or booleans keep their type (a stored
        dataset's digest reads them so), hence only text is respelt."""
        if has_label:
            for value in _distinct(batch.column(cols.LABEL)):
                key = canonical_label(value)
                self.label_spellings.setdefault(key, value)
                self.late |= self._spelling.setdefault(key, value) != value
        for name in names:
            column = batch.column(name)
            t = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            written = _distinct(column)
            kept = [self._spelling.setdefault(canonical_label(v), v) for v in written]
            if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                continue  # numbers keep their type: their spelling only counts (first seen)
            if kept == written:
                continue
            for value, spelling in zip(written, kept, strict=True):
                if value != spelling:
                    self._respelt[(name, value)] = spelling
            plain = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
            index = pc.index_in(plain, value_set=strings(written))
            respelt = pc.take(strings(kept), index).cast(column.type)
            batch = batch.set_column(batch.schema.get_field_index(name), name, respelt)
        return batch

    def _seen(self, name: str, values: pa.Array) -> None:
        """The distinct values of a label column, as written (labels are matched so)."""
        held = self._values.setdefault(name, set())
        if len(held) <= MAX_CLASSES:
            found = pc.unique(pc.cast(values, pa.string())).to_pylist()
            held.update(v for v in found if v is not None)

    def check_classes(self) -> None:
        """Beside a label column, every ``label_<name>`` column must name some of its classes:
        a review's SECOM table had ``label_int`` (0/1) and ``label_pm`` (-1/1) next to
        ``label`` (fail/pass), read as two experts who never agreed with it."""
        classes = self._values.get(cols.LABEL, set())
        if not self.has_label or not classes:
            return
        for expert in self.annotators:
            given = self._values.get(f"{cols.ANNOTATOR_PREFIX}{expert}", set())
            if not given or given & classes:
                continue
            column = f"{cols.ANNOTATOR_PREFIX}{expert}"
            shown = ", ".join(sorted(given)[:5])
            if {canonical_label(v) for v in given} & {canonical_label(c) for c in classes}:
                # Compared as written, 0/1 beside 0.0/1.0 agreed on nothing (kappa 0).
                raise InputError(
                    f"column {column} writes the label column's classes otherwise ({shown} "
                    f"against {', '.join(sorted(classes)[:5])}): labels are compared as "
                    "written; store the expert's labels as the label column does"
                )
            raise InputError(
                f"column {column} reads as the labels of expert {expert}, but none of its "
                f"values ({shown}) is a class of the label column "
                f"({', '.join(sorted(classes)[:5])}): rename it if it is not an expert's"
            )

    def _check_spellings(self) -> None:
        """One class written two ways among the experts (and the label column): compared as
        written, an expert writing Good where the others write good agreed with no one, 29
        items were disputed and left out, and the experts' kappa fell to 0.29 (a review)."""
        if not self.annotators:
            return
        columns = [f"{cols.ANNOTATOR_PREFIX}{e}" for e in self.annotators]
        if self.has_label:
            columns.append(cols.LABEL)
        written: dict[str, tuple[str, str]] = {}  # key -> (value, column) first seen
        for column in columns:
            for value in sorted(self._values.get(column, set())):
                key = label_key(value)
                shown = "the label column" if column == cols.LABEL else column
                first = written.setdefault(key, (value, shown))
                if first[0] != value:
                    raise InputError(
                        f"one class is written {first[0]!r} in {first[1]} and {value!r} in "
                        f"{shown}: the experts' labels are compared as written; write each "
                        "class alike in every column"
                    )

    def notes(self) -> list[str]:
        self.check_classes()
        self._check_spellings()
        out = []
        if self.long is not None:
            unmatched = int((~self._matched).sum())
            if unmatched == self._matched.size:
                raise InputError(
                    f"{self.long.path}: no annotated item_id matches an item of the dataset "
                    "(item ids come from --id-column, or are row numbers / relative paths)"
                )
            if unmatched:
                out.append(f"{unmatched} annotated item id(s) name no item of the dataset")
        for (column, value), spelling in sorted(self._respelt.items()):
            out.append(f"{column}: {value!r} read as {spelling!r}, the class's first spelling")
        if self.annotators:
            out.append(
                f"{len(self.annotators)} experts ({', '.join(self.annotators)}); "
                f"{self.n_disputed} item(s) without a majority label"
                + (", reported as disputed, not judged" if not self.has_label else "")
            )
        return out


def _distinct(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """The distinct values of a label column as text, missing values aside."""
    return [v for v in pc.unique(as_string(values)).to_pylist() if v is not None]


def get_dataset(ws: Workspace, ref: str) -> DatasetVersion:
    return ws.catalog.get_dataset(VersionRef.parse(ref, "dataset"))


def list_datasets(ws: Workspace) -> list[DatasetVersion]:
    return ws.catalog.list_datasets()
