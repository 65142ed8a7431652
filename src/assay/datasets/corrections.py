"""Label corrections from an expert review, applied on the way into a new dataset version.

A corrections file is a CSV or Parquet table with ``item_id`` and ``label`` (the corrected
label), and optionally ``previous_label``: the label the reviewers saw. When it is there, every
item must still carry it, so that a review made on one version of the labels is never applied to
other labels. A correction that names no item of the dataset is refused: the file belongs to
another dataset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay.core.errors import InputError
from assay.datasets import columns as cols

REQUIRED = ("item_id", "label")


class Corrections:
    """Corrected labels by item id, checked and counted as batches pass through ``apply``."""

    def __init__(self, table: pa.Table, name: str, sha256: str) -> None:
        self.name, self.sha256 = name, sha256
        # The dataset's labels before the review: a correction must name one of them.
        self.classes: set[str] = set()
        # The source's own label column (a table's ``verdict``), kept as metadata: corrected
        # alongside, so that the item does not show two labels.
        self.source_column: str | None = None
        self.ids = table.column("item_id").combine_chunks()
        self.labels = table.column("label").combine_chunks()
        self.previous = (
            table.column("previous_label").combine_chunks()
            if "previous_label" in table.column_names
            else None
        )
        self._matched = np.zeros(len(self.ids), dtype=bool)
        self.n_changed = 0
        self.mismatched: list[str] = []

    @classmethod
    def load(cls, path: Path) -> Corrections:
        if not path.is_file():
            raise InputError(f"corrections file does not exist: {path}")
        try:
            table = (
                pq.read_table(path)
                if path.suffix.lower() == ".parquet"
                else pacsv.read_csv(
                    path,
                    convert_options=pacsv.ConvertOptions(
                        column_types={c: pa.string() for c in (*REQUIRED, "previous_label")}
                    ),
                )
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path.name}: cannot read the corrections ({exc})") from None
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            raise InputError(
                f"{path.name}: a corrections file needs the columns item_id and label "
                f"(missing {missing[0]!r}; columns: {', '.join(table.column_names[:8])})"
            )
        table = table.select(
            [c for c in (*REQUIRED, "previous_label") if c in table.column_names]
        ).cast(
            pa.schema(
                [(c, pa.string()) for c in (*REQUIRED, "previous_label") if c in table.column_names]
            )
        )
        if table.num_rows == 0:
            raise InputError(f"{path.name}: no corrections in the file")
        for c in REQUIRED:
            empty = pc.or_(pc.is_null(table.column(c)), pc.equal(table.column(c), ""))
            if pc.any(empty).as_py():
                row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
                raise InputError(f"{path.name}: row {row + 2} has no {c}")
        counts = pc.value_counts(table.column("item_id")).flatten()
        twice = pc.filter(counts[0], pc.greater(counts[1], 1))
        if len(twice):
            raise InputError(f"{path.name}: item {twice[0].as_py()!r} is corrected more than once")
        # The digest of what the file says, not of its bytes: the same corrections under another
        # name, with a byte-order mark or in another column order make the same version.
        ordered = table.select(["item_id", "label"]).sort_by("item_id")
        canonical = "\n".join(
            f"{i}\t{label}"
            for i, label in zip(
                ordered.column("item_id").to_pylist(),
                ordered.column("label").to_pylist(),
                strict=True,
            )
        )
        return cls(table, path.name, hashlib.sha256(canonical.encode("utf-8")).hexdigest())

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with corrected labels (and, for experts without a majority, the item no
        longer disputed: the review decided it)."""
        ids = batch.column(cols.ITEM_ID)
        self.classes.update(
            v for v in pc.unique(batch.column(cols.LABEL)).to_pylist() if v is not None
        )
        at = pc.index_in(ids, value_set=self.ids)
        hit = at.is_valid()
        if not pc.any(hit).as_py():
            return batch
        positions = at.to_numpy(zero_copy_only=False)
        found = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        self._matched[positions[found].astype(np.int64)] = True
        new = pc.take(self.labels, pa.array(positions[found].astype(np.int64)))
        labels = batch.column(cols.LABEL)
        current = pc.take(labels, pa.array(found))
        if self.previous is not None:
            seen = pc.take(self.previous, pa.array(positions[found].astype(np.int64)))
            differs = pc.invert(pc.fill_null(pc.equal(current, seen), False))
            for i in np.flatnonzero(differs.to_numpy(zero_copy_only=False))[:5]:
                self.mismatched.append(str(pc.take(ids, pa.array([found[i]]))[0].as_py()))
        self.n_changed += int(
            pc.sum(pc.invert(pc.fill_null(pc.equal(current, new), False))).as_py() or 0
        )
        replaced = np.asarray(labels.to_pylist(), dtype=object)
        replaced[found] = new.to_pylist()
        out = batch.set_column(
            batch.schema.get_field_index(cols.LABEL),
            cols.LABEL,
            pa.array(replaced.tolist(), pa.string()),
        )
        source = self.source_column
        if source is not None and source in out.schema.names and source != cols.LABEL:
            column = out.column(source)
            values = np.asarray(column.to_pylist(), dtype=object)
            values[found] = (
                new.cast(column.type).to_pylist() if column.type != pa.string() else new.to_pylist()
            )
            out = out.set_column(
                out.schema.get_field_index(source), source, pa.array(values.tolist(), column.type)
            )
        if cols.DISPUTED in out.schema.names:
            disputed = np.asarray(
                out.column(cols.DISPUTED).to_numpy(zero_copy_only=False), dtype=bool
            )
            disputed[found] = False
            out = out.set_column(
                out.schema.get_field_index(cols.DISPUTED), cols.DISPUTED, pa.array(disputed)
            )
        return out

    def finish(self) -> dict[str, object]:
        """Refuse a file that names unknown items or was made on other labels; else what was
        applied (kept in the dataset version's options)."""
        unmatched = np.flatnonzero(~self._matched)
        if unmatched.size:
            examples = ", ".join(repr(self.ids[int(i)].as_py()) for i in unmatched[:5])
            raise InputError(
                f"{self.name}: {unmatched.size} correction(s) name no item of the dataset, e.g. "
                f"{examples}: is it the review of another dataset?"
            )
        unknown = sorted(set(self.labels.to_pylist()) - self.classes)
        if unknown and self.classes:
            raise InputError(
                f"{self.name}: label {unknown[0]!r} is not a class of the dataset "
                f"(classes: {', '.join(sorted(self.classes)[:12])})"
            )
        if self.mismatched:
            raise InputError(
                f"{self.name}: the reviewers saw other labels than the dataset holds now "
                f"(item {self.mismatched[0]!r}): review this version again"
            )
        return {
            "file": self.name,
            "sha256": self.sha256,
            "n_corrections": len(self.ids),
            "n_changed": self.n_changed,
        }
