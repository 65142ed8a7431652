"""The reuse budget of a validation dataset: how many decisions it has served.

Every verdict taken on a dataset version is logged in the catalog (``decisions``): validations
and comparisons. Each one lets the next model adapt a little to the data (a threshold moved, an
architecture kept, training stopped where the numbers looked best), so a dataset that has served
many decisions gives optimistic numbers. Versions of one dataset share their items, so the budget
counts the decisions on every version of the name, and on every name that registered one of
those versions' contents again.

Past the policy's ``reuse_budget.max_decisions``, the verdict carries a warning (or fails), and
the run lists the dataset's *fresh* items, those in no version that any decision was taken on,
in ``fresh_items.csv`` (by content: a copy of an old item under a new id is not fresh, nor
is a row whose version only added or dropped a column):
registered as a dataset of their own, they give the release decision
numbers nothing was tuned on. The looks of an anytime-valid comparison (``assay compare
--sequential``) are not decisions: the confidence sequence keeps its level however often it is
looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assay.core.policy import ReuseBudget
from assay.core.records import DatasetVersion, Decision
from assay.core.verdict import CheckResult
from assay.datasets import columns as cols
from assay.services.contents import content_key
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema

FRESH_FILE = "fresh_items.csv"


def decisions_served(
    ws: Workspace, dataset: DatasetVersion, by_content: bool = False
) -> list[Decision]:
    """Every decision on any version of ``dataset``'s name, and of every name that holds a
    version with the same content as one of them (and so on): registering the same file under
    a new name is no fresh set (a review's renamed copy started again from 0 decisions). With
    ``by_content`` (the budget's check), also of every name one of whose versions holds at
    least half of ``dataset``'s items by content: a copy with one row dropped, or the same rows
    as CSV, is no fresh set either."""
    every = ws.catalog.list_datasets()
    names, digests = {dataset.name}, {dataset.version}
    while True:
        digests |= {d.version for d in every if d.name in names}
        more = {d.name for d in every if d.version in digests} - names
        if by_content:
            more |= _sharing_items(dataset, [d for d in every if d.name not in names | more])
        if not more:
            break
        names |= more
        by_content = False  # the names sharing items with this version: found once
    return ws.catalog.decisions([d.id for d in every if d.name in names])


SHARED_ITEMS = 0.5  # of a version's items by content, for another name's decisions to count


def _sharing_items(dataset: DatasetVersion, others: list[DatasetVersion]) -> set[str]:
    """The names of ``others`` (validation sets) with a version holding at least SHARED_ITEMS
    of ``dataset``'s items, by content digest."""
    key = content_key(dataset)
    image = dataset.kind == "image"
    if image and key not in manifest_schema(Path(dataset.manifest_path)).names:
        return set()
    mine = pc.unique(_read(dataset, key)) if image else None
    found: set[str] = set()
    for d in others:
        if d.name in found or d.role != dataset.role or d.kind != dataset.kind:
            continue
        if image:
            if key not in manifest_schema(Path(d.manifest_path)).names:
                continue
            assert mine is not None
            ours, theirs = mine, _read(d, key)
        else:
            # Rows by the values of the columns both hold, in one order: the stored digest
            # covers every column in the file's order, and a copy with its columns reordered
            # or one column added started from 0 decisions (a review).
            names = sorted(_shared_inputs(dataset, d))
            if not names:
                continue
            ours, theirs = pc.unique(_digests(dataset, names)), _digests(d, names)
        held = pc.sum(pc.is_in(ours, value_set=theirs)).as_py() or 0
        if held >= SHARED_ITEMS * len(ours):
            found.add(d.name)
    return found


def _read(d: DatasetVersion, column: str) -> pa.Array:
    return pq.read_table(d.manifest_path, columns=[column]).column(column).combine_chunks()


def decisions_summary(ws: Workspace, dataset: DatasetVersion, shown: int = 10) -> dict[str, Any]:
    """What a dataset's page shows of the decisions it served."""
    served = decisions_served(ws, dataset)
    return {
        "n_on_version": sum(d.dataset_id == dataset.id for d in served),
        "n_on_dataset": len(served),
        "n_models": len({d.model_id for d in served}),
        "latest": [
            {
                "kind": d.kind,
                "verdict": d.verdict,
                "run_id": d.run_id,
                "model": ws.catalog.get_model_by_id(d.model_id).ref,
                "dataset": ws.catalog.get_dataset_by_id(d.dataset_id).ref,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in reversed(served[-shown:])
        ],
    }


def fresh_items(ws: Workspace, dataset: DatasetVersion, served: list[Decision]) -> pa.Array:
    """The item ids of ``dataset`` whose content is in no version a decision was taken on (by
    their file's digest; for tables, by their values in the columns both versions have; by id
    for versions registered before digests were kept)."""
    used = sorted({d.dataset_id for d in served})
    key = content_key(dataset)
    versions = [ws.catalog.get_dataset_by_id(v) for v in used]
    by_content = all(
        key in manifest_schema(Path(d.manifest_path)).names for d in [dataset, *versions]
    )
    column = key if by_content else cols.ITEM_ID
    mine = pq.read_table(dataset.manifest_path, columns=[cols.ITEM_ID, column])
    ids = mine.column(cols.ITEM_ID).combine_chunks().cast(pa.string())
    if not versions:
        return ids
    if column == cols.DIGEST:
        # A row's stored digest covers every column: a version that only adds one (the time a
        # label came in) would make every old item look fresh, and the budget be bypassed.
        seen = np.zeros(len(ids), bool)
        for v in versions:
            names = _shared_inputs(dataset, v)
            hit = pc.is_in(_digests(dataset, names), value_set=_digests(v, names))
            seen |= np.asarray(hit.to_numpy(zero_copy_only=False), bool)
        return ids.filter(pa.array(~seen))
    seen = pa.concat_arrays(
        [
            pq.read_table(v.manifest_path, columns=[column]).column(column).combine_chunks()
            for v in versions
        ]
    )
    values = mine.column(column).combine_chunks()
    return ids.filter(pc.invert(pc.fill_null(pc.is_in(values, value_set=seen), False)))


def _shared_inputs(a: DatasetVersion, b: DatasetVersion) -> list[str]:
    """The columns a row digest covers in both table versions, in ``a``'s order, experts'
    ``label_<name>`` columns left out (a label changed by one expert is no new item)."""
    from assay.datasets.row_digests import input_columns
    from assay.services.datasets import id_of, label_of

    def inputs(d: DatasetVersion) -> list[str]:
        schema = manifest_schema(Path(d.manifest_path))
        experts = set(cols.annotator_columns(schema.names))
        names = input_columns(schema, label_of(d.options), id_of(d.options))
        return [n for n in names if n not in experts]

    theirs = set(inputs(b))
    return [n for n in inputs(a) if n in theirs]


def _digests(d: DatasetVersion, names: list[str]) -> pa.Array:
    """Each row's digest over ``names`` only."""
    from assay.datasets.row_digests import DIGEST_TYPE, row_digests

    table = pq.read_table(d.manifest_path, columns=names)
    if not names:  # nothing in common: every row is the same empty row
        return pa.array([b"\0" * 16] * table.num_rows, DIGEST_TYPE)
    parts = [row_digests(batch, None, as_values=True) for batch in table.to_batches()]
    return pa.concat_arrays(parts) if parts else pa.array([], DIGEST_TYPE)


def budget_check(
    ws: Workspace, dataset: DatasetVersion, budget: ReuseBudget, run_dir: Path
) -> tuple[CheckResult, dict[str, Any]]:
    """The verdict's check of the budget, and ``result.json`` ``reuse_budget``; past the
    budget, the fresh items go to ``fresh_items.csv`` in ``run_dir``."""
    served = decisions_served(ws, dataset, by_content=True)
    n = len(served)
    within = n + 1 <= budget.max_decisions
    fresh = fresh_items(ws, dataset, served) if not within else pa.array([], pa.string())
    file = None
    if not within and len(fresh):
        pacsv.write_csv(pa.table({"item_id": fresh}), run_dir / FRESH_FILE)
        file = FRESH_FILE
    if within:
        reason = (
            f"{dataset.name} has served {n} decision(s) before this one (budget "
            f"{budget.max_decisions})"
        )
    else:
        reason = (
            f"{dataset.name} has served {n} decision(s) before this one, past the budget of "
            f"{budget.max_decisions}: its numbers have been adapted to; decide the release on "
            "items no decision has seen: "
            + (
                f"{len(fresh)} item(s) of {dataset.ref} are fresh (listed in {FRESH_FILE}; "
                "register them as a dataset of their own)"
                if len(fresh)
                else "none of this version's items is fresh: collect and label new ones"
            )
        )
    check = CheckResult(
        name="the dataset's reuse budget",
        status="pass" if within else budget.on_exceeded,
        value=float(n + 1),
        threshold=float(budget.max_decisions),
        reason=reason,
        metric="decisions_served",
        severity=budget.on_exceeded,
    )
    doc = {
        "n_decisions_before": n,
        "max_decisions": budget.max_decisions,
        "on_exceeded": budget.on_exceeded,
        "within": within,
        "n_fresh_items": None if within else len(fresh),
        "fresh_items_file": file,
    }
    return check, doc
