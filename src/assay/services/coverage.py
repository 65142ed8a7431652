"""Coverage of today's production: does the validation set look like what the line produces now?

A production sample (a dataset registered with ``--role production``; labels are not needed) is
compared with a validation dataset version on the columns both hold (features, metadata, and for
images the properties measured at registration: size, brightness, contrast, sharpness):

- per column: the population stability index over bins fixed by the validation set, and a test
  of equal distributions (two-sample Kolmogorov-Smirnov for numbers, chi-squared for categories)
  with Benjamini-Hochberg q-values across the columns;
- overall: a domain classifier's out-of-fold ROC-AUC with DeLong's interval
  (``assay.analysis.domain_classifier``);
- the regions of production the validation set barely covers: bins holding at least 5% of the
  production items and under a third of that share of the validation items, and the production
  items the domain classifier is sure come from production (P > 0.9);
- with a finished run of a model on the validation set: its accuracy re-weighted to the
  production mix (importance weights from the domain classifier), with a bootstrap interval and
  the effective number of items it rests on.

Every item of both sets takes part; nothing is sampled.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.analysis.domain_classifier import fit_domain
from assay.arrow import floats
from assay.core import drift
from assay.core.errors import InputError
from assay.core.records import DatasetVersion, ModelVersion, RunRecord
from assay.core.spec import TabularInput, parse_model_spec
from assay.core.stattests import benjamini_hochberg
from assay.datasets import columns as cols
from assay.datasets.row_digests import plain
from assay.services.audit_files import copy_out, publish
from assay.services.datasets import compared_columns, get_dataset, time_columns
from assay.services.integrity import verify_manifest, verify_run_files
from assay.services.out_folder import check_out
from assay.services.workspace import Workspace

# More distinct values than this in a text column: part numbers, lots, serial numbers, not
# compared. A new value may be new by nature (a lot, a batch) or by chance (a long tail), and
# a PSI over hundreds of thin bins is noise: compared on the values validation holds, such
# columns gave PSIs above 0.25 on most samples drawn like validation.
MAX_CATEGORIES = 50
REGION_MIN_SHARE = 0.05
REGION_RATIO = 3.0
# A region is a finding from this many production items in it on (one row of a one-row sample
# is 100% of production in every one of its bins).
REGION_MIN_ITEMS = 5
SURE = 0.9
# Below this many effective items the re-weighted accuracy gets no interval; below this many
# production items the PSI is not given (empty bins make it large by chance alone).
MIN_EFFECTIVE = 30
# A production item is outside the validation set's reach when the domain classifier finds it
# this many times likelier in production than in validation (its odds over the prior odds);
# past MAX_OUTSIDE of production so, no production-mix accuracy is given.
OUTSIDE_RATIO = 50.0
MAX_OUTSIDE = 0.05
MIN_PRODUCTION_FOR_PSI = 100
FILES = ("coverage.json", "coverage.html")


@dataclass
class CoverageAudit:
    production: DatasetVersion
    dataset: DatasetVersion
    columns: list[dict[str, Any]]
    domain: dict[str, Any] | None
    regions: list[dict[str, Any]]
    reweighted: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None
    # Out-of-fold P(production) of the validation items, in manifest order (for re-weighting).
    p_validation: np.ndarray | None = None

    @property
    def max_psi(self) -> float | None:
        """The largest column PSI; None when too few production items, or no column could be
        compared on its values (a check on it then cannot pass: no evidence, not no shift; a
        column compared only on its missing values counts beside others, not alone)."""
        if self.production.n_items < MIN_PRODUCTION_FOR_PSI or all(
            c.get("missing_only") for c in self.columns
        ):
            return None
        return float(max(c["psi"] for c in self.columns))

    def summary(self) -> dict[str, Any]:
        return {
            "production": self.production.ref,
            "dataset": self.dataset.ref,
            "n_production": self.production.n_items,
            "n_items": self.dataset.n_items,
            "max_psi": self.max_psi,
            "domain": self.domain,
            "columns": self.columns,
            "regions": self.regions,
            "reweighted": self.reweighted,
            "notes": self.notes,
            "psi_reading": "below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 large shift",
        }


def check_roles(production: DatasetVersion, dataset: DatasetVersion) -> None:
    if production.role != "production":
        raise InputError(
            f"--production {production.ref} is a {production.role} set: register the sample "
            "with `assay dataset add NAME PATH --role production`"
        )
    if dataset.role != "validation":
        raise InputError(f"--dataset {dataset.ref} is a {dataset.role} set: give a validation set")
    if production.kind != dataset.kind:
        raise InputError(
            f"{production.ref} holds {production.kind} items and {dataset.ref} "
            f"{dataset.kind} items: there is nothing to compare"
        )


def _inputs_of(model: ModelVersion) -> tuple[str, ...]:
    """The table columns ``model`` reads (none for images or recorded predictions)."""
    spec = parse_model_spec(model.spec)
    return tuple(spec.input.columns) if isinstance(spec.input, TabularInput) else ()


def _shared(production: DatasetVersion, dataset: DatasetVersion) -> list[str]:
    a = set(compared_columns(production))
    return [c for c in compared_columns(dataset) if c in a]


def _as_numbers(array: pa.ChunkedArray, single: bool = False) -> np.ndarray | None:
    """The column as float64 (times as integers; decimals and categories as the values they
    hold), None for text; ``single`` rounds to float32."""
    array = plain(array)
    t = array.type
    if pa.types.is_temporal(t):
        array = pc.cast(array, pa.int64())
    elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return None
    out = np.asarray(
        array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False), np.float64
    )
    return out.astype(np.float32).astype(np.float64) if single else out


def _number_pair(
    val: pa.ChunkedArray, prod: pa.ChunkedArray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both columns as numbers at one precision: where either side is stored in single (or
    half) precision, both are rounded to float32. The same readings in a float64 CSV and a
    float32 Parquet file differ in their last digits, and a binning or a classifier that sees
    them tells the files apart by it: a shift that is only the storage."""
    single = any(pa.types.is_floating(t) and t.bit_width < 64 for t in (val.type, prod.type))
    return _as_numbers(val, single), _as_numbers(prod, single)


def _read_as_numbers(column: pa.ChunkedArray) -> tuple[pa.Array, int]:
    """A text column as float64, what is no number (and was a value) missing; and how many
    values were not numbers."""
    values = np.full(len(column), np.nan)
    unread = 0
    for i, text in enumerate(_texts(column)):
        if text is None or not text.strip():
            continue
        try:
            values[i] = float(text)
        except ValueError:
            unread += 1
    return floats(values), unread


def _typed_as(table: pa.Table, name: str, kind: pa.DataType) -> pa.Table:
    """``table`` with its all-null column ``name`` given type ``kind``."""
    at = table.schema.get_field_index(name)
    return table.set_column(at, name, pa.nulls(table.num_rows, kind))


def _texts(array: pa.ChunkedArray) -> list[str | None]:
    """The column's values as text; bytes that are not UTF-8 (a checksum, a raw reading) as
    their hexadecimal digits."""
    t = array.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else _bytes_text(v) for v in array.to_pylist()]
    return pc.cast(plain(array), pa.string()).to_pylist()  # type: ignore[no-any-return]


def _bytes_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + value.hex()


def _unseen(values: list[str | None], other: list[str | None]) -> float:
    """The share of ``other`` holding a value (not a missing one) that ``values`` never holds."""
    known = set(values)
    return sum(v not in known and v not in (None, "") for v in other) / max(1, len(other))


def _column(name: str, val: pa.ChunkedArray, prod: pa.ChunkedArray) -> dict[str, Any] | str:
    """The column's comparison, or a note saying why it is not compared."""
    from scipy.stats import chi2_contingency, ks_2samp

    a, b = _number_pair(val, prod)
    if a is not None and b is not None:
        edges = drift.numeric_bins(a)
        e, p = drift.numeric_shares(a, edges), drift.numeric_shares(b, edges)
        fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]  # for the medians
        pa_, pb = a[~np.isnan(a)], b[~np.isnan(b)]  # the test counts infinite values too
        test = ks_2samp(pa_, pb) if pa_.size and pb.size else None
        bins = [f"< {edges[0]:.6g}"] if edges.size else ["all"]
        if edges.size == 2 and edges[1] == np.nextafter(edges[0], np.inf):  # one value
            bins += [f"= {edges[0]:.6g}", f"> {edges[0]:.6g}"]
        else:
            bins += [f"[{lo:.6g}, {hi:.6g})" for lo, hi in itertools.pairwise(edges)]
            bins += [f">= {edges[-1]:.6g}"] if edges.size else []
        bins += ["missing"]
        return {
            "column": name,
            "kind": "numeric",
            "psi": drift.psi(e, p),
            "test": "Kolmogorov-Smirnov",
            "statistic": None if test is None else float(test.statistic),
            "p_value": None if test is None else float(test.pvalue),
            "bins": bins,
            "validation_shares": e.tolist(),
            "production_shares": p.tolist(),
            "median": [
                float(np.median(fa)) if fa.size else None,
                float(np.median(fb)) if fb.size else None,
            ],
        }
    values, other = _texts(val), _texts(prod)
    categories = sorted({v for v in values if v is not None})
    many = len(categories) > MAX_CATEGORIES
    note, unseen = None, 0.0
    if many:
        # Its values are not compared, only whether there is one: a reader failing on the
        # line (40% missing) is a shift whatever the column holds.
        unseen = _unseen(values, other)
        note = (
            f"{name}: {len(categories):,} distinct values (more than {MAX_CATEGORIES}: part "
            f"numbers, lots or serial numbers), compared only on how often a value is missing; "
            f"{unseen:.1%} of production holds values the validation set never holds"
        )
        values = ["a value" if v not in (None, "") else None for v in values]
        other = ["a value" if v not in (None, "") else None for v in other]
        categories = ["a value"]
    keys: list[object] = [*categories, None]
    e = drift.category_shares(values, keys)
    p = drift.category_shares(other, keys)
    counts = np.array([e * len(values), p * len(other)])
    counts = counts[:, counts.sum(axis=0) > 0]
    test = chi2_contingency(counts) if counts.shape[1] > 1 else None
    return {
        "column": name,
        "kind": "categorical",
        "psi": drift.psi(e, p),
        "test": "chi-squared",
        "statistic": None if test is None else float(test.statistic),
        "p_value": None if test is None else float(test.pvalue),
        "bins": [*(str(c) for c in categories), "missing", "other"],
        "validation_shares": e.tolist(),
        "production_shares": p.tolist(),
        **({"missing_only": True, "unseen_share": unseen, "note": note} if many else {}),
    }


def _regions(columns: list[dict[str, Any]], n_val: int, n_prod: int) -> list[dict[str, Any]]:
    out = []
    for c in columns:
        for name, e, p in zip(
            c["bins"], c["validation_shares"], c["production_shares"], strict=False
        ):
            if (
                p >= REGION_MIN_SHARE
                and round(p * n_prod) >= REGION_MIN_ITEMS
                and e < p / REGION_RATIO
            ):
                out.append({
                    "column": c["column"], "bin": name, "production_share": p,
                    "validation_share": e, "n_production": round(p * n_prod),
                    "n_validation": round(e * n_val),
                })  # fmt: skip
    return sorted(out, key=lambda r: r["validation_share"] - r["production_share"])


def _finite_ends(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with -inf and +inf just beyond both sets' finite range: the classifier's
    binning cannot take infinities, and an infinite reading is the most extreme one."""
    both = np.concatenate([a, b])
    finite = both[np.isfinite(both)]
    if finite.size == len(both) - np.isnan(both).sum():
        return a, b
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    step = max(high - low, 1.0)

    def ends(x: np.ndarray) -> np.ndarray:
        return np.where(np.isposinf(x), high + step, np.where(np.isneginf(x), low - step, x))

    return ends(a), ends(b)


def _features(
    names: list[str], val: pa.Table, prod: pa.Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sets as matrices for the domain classifier: numbers as they are, categories as codes
    (the validation set's, one more for anything else)."""
    xs_v, xs_p, categorical = [], [], []
    for name in names:
        a, b = _number_pair(val.column(name), prod.column(name))
        if a is None or b is None:
            values = _texts(val.column(name))
            cats = {c: k for k, c in enumerate(sorted({v for v in values if v is not None}))}
            other = _texts(prod.column(name))
            a = np.array([cats.get(v, len(cats)) if v is not None else np.nan for v in values])
            b = np.array([cats.get(v, len(cats)) if v is not None else np.nan for v in other])
            categorical.append(True)
        else:
            categorical.append(False)
            a, b = _finite_ends(a, b)
        xs_v.append(a)
        xs_p.append(b)
    return np.column_stack(xs_v), np.column_stack(xs_p), np.array(categorical, bool)


def audit_coverage(
    ws: Workspace,
    production: str | DatasetVersion,
    dataset: str | DatasetVersion,
    run: RunRecord | None = None,
    out: Path | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    inputs: Sequence[str] = (),
) -> CoverageAudit:
    """Compare the production sample with ``dataset``; with ``run`` (a finished run on
    ``dataset``), re-weight its accuracy to the production mix. ``inputs``: the columns a model
    reads (default: those of ``run``'s model); one production lacks is compared as missing in
    every production item."""
    if out is not None:
        check_out(out, ws.home)  # before the work, not after it
    pv = production if isinstance(production, DatasetVersion) else get_dataset(ws, production)
    dv = dataset if isinstance(dataset, DatasetVersion) else get_dataset(ws, dataset)
    check_roles(pv, dv)
    verify_manifest(ws, pv)
    verify_manifest(ws, dv)
    shared = _shared(pv, dv)
    missing = [c for c in compared_columns(dv) if c not in shared]
    # A time column says when, not what: a sample of today is later than the validation set by
    # nature, and a classifier would tell them apart by it alone.
    timed = time_columns(shared, dv, pv)
    shared = [c for c in shared if c not in timed]
    if not shared:
        raise InputError(f"{pv.ref} and {dv.ref} have no column in common to compare")
    if run is not None and not inputs:
        inputs = _inputs_of(ws.catalog.get_model_by_id(run.model_id))
    # A model input production lacks (a sensor renamed or gone from the feed) is compared as
    # missing in every production item, the largest shift there is: left out, such a sample
    # passed max_psi and domain_auc checks (a review). Other columns the validation set holds
    # alone (experts' notes, rework flags) are named and left out.
    lacking = [c for c in missing if c in set(inputs)]
    missing = [c for c in missing if c not in set(inputs)]
    val = pq.read_table(dv.manifest_path, columns=shared + lacking)
    prod = pq.read_table(pv.manifest_path, columns=shared)
    for name in lacking:
        prod = prod.append_column(name, pa.nulls(prod.num_rows, val.schema.field(name).type))
    shared += lacking
    columns: list[dict[str, Any]] = []
    notes = [
        f"{c}: a time column ({how}), not compared (production comes later by nature)"
        for c, how in timed.items()
    ]
    if lacking:
        notes.append(
            f"{len(lacking)} input(s) of the model that {pv.ref} lacks, compared as missing in "
            "every production item: " + ", ".join(lacking[:10])
            + (", ..." if len(lacking) > 10 else "")
        )  # fmt: skip
    if missing:
        notes.append(
            f"{len(missing)} column(s) of {dv.ref} that {pv.ref} lacks, not compared: "
            + ", ".join(missing[:10])
            + (", ..." if len(missing) > 10 else "")
        )
    if pv.n_items < MIN_PRODUCTION_FOR_PSI:
        notes.append(
            f"{pv.n_items} production items: too few for the PSI to mean anything (empty bins make "
            f"it large by chance below {MIN_PRODUCTION_FOR_PSI}); max_psi is not given"
        )
    for name in shared:
        # A column empty throughout one side (a dead sensor) has Arrow's null type: it is of
        # the other side's kind, every value missing (the largest shift there is).
        if pa.types.is_null(prod.schema.field(name).type):
            prod = _typed_as(prod, name, val.schema.field(name).type)
        elif pa.types.is_null(val.schema.field(name).type):
            val = _typed_as(val, name, prod.schema.field(name).type)
        nested = [
            side
            for side, t in (("validation", val.schema.field(name).type),
                            ("production", prod.schema.field(name).type))
            if pa.types.is_nested(plain(pa.nulls(0, t)).type)
        ]  # fmt: skip
        if nested:
            notes.append(f"{name}: lists or records in {' and '.join(nested)}, not compared")
            continue
        a, b = _number_pair(val.column(name), prod.column(name))
        if a is not None and b is None and name in set(inputs):
            # An input the model reads as numbers, written as text in production (decimal
            # commas, an 'ERR' among the readings): what is no number is missing to the model,
            # so it is compared as missing. Noted only, the sample passed max_psi and
            # domain_auc checks and got a production-mix accuracy (a review).
            numbers, unread = _read_as_numbers(prod.column(name))
            prod = prod.set_column(prod.schema.get_field_index(name), name, numbers)
            notes.append(
                f"{name}: an input of the model, numbers in {dv.ref} but text in {pv.ref}: "
                f"{unread} of {prod.num_rows} production value(s) are no number, compared as "
                "missing"
            )
            a, b = _number_pair(val.column(name), prod.column(name))
        if (a is None) != (b is None):
            kinds = ("numbers", "text") if b is None else ("text", "numbers")
            notes.append(
                f"{name}: {kinds[0]} in {dv.ref} but {kinds[1]} in {pv.ref}: not compared (a "
                "value of another kind in production is a finding of its own)"
            )
            continue
        found = _column(name, val.column(name), prod.column(name))
        if isinstance(found, str):
            notes.append(found)
            continue
        columns.append(found)
        if found.get("note"):
            notes.append(found["note"])
    if all(c.get("missing_only") for c in columns):
        notes.append(
            "no column could be compared on its values: max_psi and the domain classifier are "
            "not given"
        )
    ps = [c["p_value"] for c in columns if c["p_value"] is not None]
    qs = iter(benjamini_hochberg(ps)) if ps else iter(())
    for c in columns:
        c["q_value"] = None if c["p_value"] is None else float(next(qs))
    # A column compared only on its missing values stays out of the classifier, whose codes
    # would be its many values.
    used = [c["column"] for c in columns if not c.get("missing_only")]
    domain = None
    p_val = None
    if used and dv.n_items >= 2 and pv.n_items >= 2:
        xv, xp, categorical = _features(used, val, prod)
        fit = fit_domain(xv, xp, categorical, seed=seed, confidence=confidence)
        p_val = fit.p_validation
        domain = {
            "method": "HistGradientBoostingClassifier; ROC-AUC of a classifier two-sample "
            "test (two halves, each scored by a model fitted on the other; the mean of their "
            "DeLong intervals); weights from out-of-fold probabilities (5-fold)",
            "auc": fit.auc,
            "ci_low": fit.ci_low,
            "ci_high": fit.ci_high,
            "shifted": fit.ci_low > 0.5,
            "tested": fit.tested,
            "n_production_uncovered": int((fit.p_production > SURE).sum()),
            "share_production_uncovered": float((fit.p_production > SURE).mean()),
            # Counted only where a shift is found: on 100 validation items against 2,000 the
            # classifier's odds run past OUTSIDE_RATIO on noise (15% 'outside', no shift).
            "share_production_outside": float(
                (_odds_ratio(fit.p_production, dv.n_items, pv.n_items) > OUTSIDE_RATIO).mean()
            )
            if fit.ci_low > 0.5
            else 0.0,
            "features": used,
        }
    audit = CoverageAudit(pv, dv, columns, domain, _regions(columns, dv.n_items, pv.n_items),
                          notes=notes, p_validation=p_val)  # fmt: skip
    if run is not None and p_val is not None:
        audit.reweighted = reweight(audit, run, confidence, seed)
    folder = ws.home / "audits" / "coverage" / f"{pv.version[:16]}-{dv.version[:16]}"
    _write(audit, folder)
    audit.folder = folder
    copy_out(folder, FILES, out)
    return audit


def _unseen_share(column: dict[str, Any]) -> float:
    """The share of production in a bin of ``column`` that no validation item is in: a
    category (or missing) validation never holds, or for numbers beyond a validation set of
    one value (other numeric bins are the validation set's own quantiles)."""
    return float(
        sum(
            p
            for e, p in zip(column["validation_shares"], column["production_shares"], strict=False)
            if e == 0
        )
    )


def _odds_ratio(p: np.ndarray, n_validation: int, n_production: int) -> np.ndarray:
    """P(production) / P(validation) over the prior odds n_production / n_validation: how many
    times likelier an item is among production's than among validation's."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    ratio: np.ndarray = q / (1 - q) * (n_validation / max(1, n_production))
    return ratio


def reweight(audit: CoverageAudit, run: RunRecord, confidence: float, seed: int) -> dict[str, Any]:
    """A finished run's accuracy on the validation set, as is and re-weighted to the production
    mix (its files checked first)."""
    verify_run_files(run)
    return reweight_predictions(
        audit, Path(run.run_dir) / "predictions.parquet", run.id, confidence, seed
    )


def reweight_predictions(
    audit: CoverageAudit, predictions: Path, run_id: str, confidence: float, seed: int
) -> dict[str, Any]:
    """``reweight`` for a run's predictions file (a validation's own, before it finishes)."""
    assert audit.p_validation is not None
    table = pq.read_table(predictions, columns=["item_id", "correct"])
    ids = pq.read_table(audit.dataset.manifest_path, columns=[cols.ITEM_ID]).column(cols.ITEM_ID)
    at = pc.index_in(table.column("item_id"), value_set=ids)
    if at.null_count:
        raise InputError(f"run {run_id[:12]} holds items that {audit.dataset.ref} does not")
    rows = np.asarray(at.to_numpy(zero_copy_only=False), np.int64)
    correct = table.column("correct")
    judged = np.asarray(correct.is_valid().to_numpy(zero_copy_only=False), bool)
    hits = np.asarray(correct.fill_null(False).to_numpy(zero_copy_only=False), bool)[judged]
    weights = drift.importance_weights(
        audit.p_validation[rows][judged], audit.dataset.n_items, audit.production.n_items
    )
    plain = drift.weighted_rate(hits, np.ones(hits.size), confidence, seed=seed)
    mixed = drift.weighted_rate(hits, weights, confidence, seed=seed)
    # A bootstrap over a handful of heavily weighted items is no interval at all.
    too_few = mixed.effective_n < MIN_EFFECTIVE
    # Production items the classifier finds OUTSIDE_RATIO times likelier in production than in
    # validation (prior odds aside) lie where validation items are all but absent: weights
    # cannot speak for them. A production sample told apart item by item gave every validation
    # item the same clipped weight and the accuracy as validated passed for production's; one
    # with 40% of its items far outside the validation range got 0.87 for a true 0.69.
    # Also the production items in a category (or a missing value) no validation item has:
    # the classifier cannot learn a category its folds never hold (categorical columns alone:
    # 22% of production in a new category, AUC 0.39, 'outside' 0%).
    outside = max(
        float((audit.domain or {}).get("share_production_outside") or 0.0),
        *(_unseen_share(c) for c in audit.columns),
    )
    covered = 1.0 - outside
    not_covered = outside > MAX_OUTSIDE
    # Too few production items for the two-sample test: whether they lie where the validation
    # items are cannot be told, so no mix is given (a review's 15 production items, all far
    # outside, got the accuracy as validated as production's).
    why_none = (
        f"{100 * outside:.0f}% of production lies where validation items all but never are"
        if not_covered
        else None
    )
    if audit.domain is not None and not audit.domain.get("tested", True):
        too_few = not_covered = True
        why_none = (
            "too few production items to tell where they lie (the domain classifier's test "
            "needs 10 items of each set in each half)"
        )
    return {
        "run_id": run_id,
        "metric": "accuracy",
        "as_validated": {"value": plain.value, "ci_low": plain.ci_low, "ci_high": plain.ci_high},
        "production_mix": {
            "value": None if not_covered else mixed.value,
            "ci_low": None if too_few or not_covered else mixed.ci_low,
            "ci_high": None if too_few or not_covered else mixed.ci_high,
            "too_few": too_few,
            "not_covered": not_covered,
            "why_none": why_none,
            "share_production_covered": covered,
        },
        "n_judged": int(hits.size),
        "effective_n": mixed.effective_n,
        "note": "importance weights from the domain classifier (clipped at 20x their mean); the "
        "interval resamples the items with their weights held fixed, so it leaves out the "
        "classifier's own uncertainty",
    }


def _write(audit: CoverageAudit, folder: Path) -> None:
    from assay.reports.coverage import render_coverage

    doc = audit.summary()
    publish(
        folder,
        {
            "coverage.json": json.dumps(doc, indent=2, default=str).encode(),
            "coverage.html": render_coverage(doc).encode(),
        },
    )
