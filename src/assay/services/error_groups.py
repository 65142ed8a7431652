"""find_error_groups: misclassified items grouped by similarity, each described and illustrated."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assay.analysis.error_groups import MIN_ITEMS, Reducer, group, unit_rows
from assay.core.spec import ModelSpec
from assay.datasets import columns as cols
from assay.datasets.images import PROPERTY_COLUMNS, image_descriptor
from assay.services.integrity import verified_bytes
from assay.store.embeddings import read_embeddings
from assay.store.manifests import judged_errors, manifest_schema, take_column
from assay.store.parquet import partial_path, write_table

EXAMPLES = 8
# How a property reads when a group's mean lies above / below the other errors'.
WORDS = {
    "image_brightness": ("brighter", "darker"),
    "image_contrast": ("higher contrast", "lower contrast"),
    "image_sharpness": ("sharper", "blurrier"),
    "image_width": ("wider", "narrower"),
    "image_height": ("taller", "shorter"),
}


def _embedding_vectors(path: Path, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    dim = pq.read_schema(path).field("vector").type.list_size
    reducer = Reducer(unit_rows)
    reducer.fit((v.astype(np.float64) for _, v in read_embeddings(path)), dim)
    rows, parts = [], []
    for r, v in read_embeddings(path):
        rows.append(r)
        parts.append(reducer.transform(v.astype(np.float64)))
    method = (
        f"the model's embedding output {name!r} ({dim}-d): cosine direction, "
        f"PCA to {parts[0].shape[1]} dimensions, k-means"
    )
    return np.concatenate(rows), np.concatenate(parts), method


# Descriptors of misclassified images are kept in the run folder, by file digest, so that a later
# run of the same model (incremental validation) takes them instead of decoding the images again:
# a descriptor is a function of the file's bytes and of this code. Bump the version when
# image_descriptor changes, and older runs' descriptors are computed anew.
DESCRIPTORS_FILE = "error_descriptors.parquet"
DESCRIPTOR_VERSION = "1"
DESCRIPTOR_DIM = 64 + 64 + 16 + 3  # image_descriptor's length


def _known_descriptors(known: tuple[Path, str] | None) -> dict[str, np.ndarray]:
    """The descriptors an earlier run kept, by file digest: ``known`` is the file and the digest
    that run recorded for it, checked in the same read (IntegrityError when changed). Empty when
    there is none, or it holds another version of the descriptor or an unexpected shape (they
    are then computed anew)."""
    if known is None:
        return {}
    data = verified_bytes("the earlier run's error descriptors", *known)
    try:
        table = pq.read_table(pa.BufferReader(data))
        version = (table.schema.metadata or {}).get(b"descriptor_version")
        vectors = table.column("vector").combine_chunks()
        shas = table.column(cols.SHA256).to_pylist()
        if (
            version != DESCRIPTOR_VERSION.encode()
            or not pa.types.is_fixed_size_list(vectors.type)
            or vectors.type.list_size != DESCRIPTOR_DIM
            or not pa.types.is_float64(vectors.type.value_type)
            or vectors.null_count
        ):
            return {}
    except (pa.ArrowException, KeyError, ValueError):
        return {}
    flat = vectors.flatten().to_numpy(zero_copy_only=False)
    matrix = np.asarray(flat, np.float64).reshape(len(shas), DESCRIPTOR_DIM)
    return {sha: row for sha, row in zip(shas, matrix, strict=True) if sha is not None}


def _write_descriptors(
    path: Path, shas: list[str | None], x: np.ndarray, readable: np.ndarray
) -> None:
    """Written whole then renamed: a run folder never holds half a file."""
    keep = [i for i in np.flatnonzero(readable) if shas[i] is not None]
    values = pa.array(x[keep].ravel() if keep else np.zeros(0), pa.float64())
    table = pa.table(
        {
            cols.SHA256: pa.array([shas[i] for i in keep], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(values, DESCRIPTOR_DIM),
        }
    ).replace_schema_metadata({"descriptor_version": DESCRIPTOR_VERSION})
    partial = partial_path(path)
    write_table(table, partial, unique=(cols.SHA256,))
    os.replace(partial, path)


def _descriptor_vectors(
    predictions: Path, manifest: Path, known_path: tuple[Path, str] | None, out: Path | None
) -> tuple[np.ndarray, np.ndarray, str, int, int]:
    valid, wrong = judged_errors(predictions, None)
    rows = np.flatnonzero(valid & wrong)
    paths = take_column(manifest, cols.PATH, rows)
    names = manifest_schema(manifest).names
    shas: list[str | None] = (
        [None if v is None else str(v) for v in take_column(manifest, cols.SHA256, rows)]
        if cols.SHA256 in names
        else [None] * rows.size
    )
    known = _known_descriptors(known_path)
    todo = [i for i, sha in enumerate(shas) if sha is None or sha not in known]
    vectors: list[np.ndarray | None] = [None if sha is None else known.get(sha) for sha in shas]
    with ThreadPoolExecutor(4, thread_name_prefix="assay-descriptor") as pool:
        computed = pool.map(image_descriptor, [paths[i] for i in todo], [shas[i] for i in todo])
        for i, v in zip(todo, computed, strict=True):
            vectors[i] = v
    x = np.stack(vectors) if vectors else np.zeros((0, DESCRIPTOR_DIM))  # type: ignore[arg-type]
    readable = np.isfinite(x).all(axis=1)
    if out is not None:
        _write_descriptors(out, shas, x, readable)
    x, rows = x[readable], rows[readable]
    if x.shape[0]:
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    method = (
        "image descriptors (grey and edge layout, grey histogram, brightness, contrast, "
        "sharpness), standardised, PCA, k-means"
    )
    return rows, x, method, int((~readable).sum()), len(shas) - len(todo)


def find_error_groups(
    predictions: Path,
    manifest: Path,
    spec: ModelSpec,
    embeddings: Path | None,
    out: Path,
    seed: int = 0,
    known_descriptors: tuple[Path, str] | None = None,
    descriptors_out: Path | None = None,
) -> dict[str, Any] | None:
    """``error_groups`` for result.json (None for tables without an embedding output); every
    misclassified item's group goes to ``out`` (Parquet).

    Images without an embedding output are grouped by their descriptors, written to
    ``descriptors_out`` (by file digest) when given; ``known_descriptors``, an earlier run's such
    file and the digest it recorded for it, gives those of unchanged images without decoding
    them again (the same numbers)."""
    names = manifest_schema(manifest).names
    unreadable = 0
    n_known: int | None = None  # images grouped by descriptors: how many an earlier run gave
    if spec.output.embedding is not None and embeddings is not None and embeddings.exists():
        rows, x, method = _embedding_vectors(embeddings, spec.output.embedding)
    elif spec.output.embedding is not None:
        rows, x, method = np.zeros(0, np.int64), np.zeros((0, 1)), "embedding (no errors)"
    elif cols.PATH in names:
        rows, x, method, unreadable, n_known = _descriptor_vectors(
            predictions, manifest, known_descriptors, descriptors_out
        )
    else:
        return None
    base: dict[str, Any] = {"method": method, "n_errors": int(rows.size), "groups": []}
    if n_known is not None:
        base["n_descriptors_reused"] = n_known
    if unreadable:
        base["note"] = (
            f"{unreadable} misclassified image(s) could not be read again and are not grouped"
        )
    grouping = group(x, seed)
    if grouping is None:
        base["note"] = (
            f"fewer than {MIN_ITEMS} misclassified items, or no structure: nothing to group"
        )
        return base
    item_ids = take_column(predictions, "item_id", rows)
    label = take_column(predictions, "label", rows)
    predicted = take_column(predictions, "predicted", rows)
    refs = take_column(manifest, cols.PATH, rows) if cols.PATH in names else [None] * rows.size
    props = {
        c: np.asarray(take_column(manifest, c, rows), dtype=np.float64)
        for c in PROPERTY_COLUMNS
        if c in names
    }
    write_table(
        pa.table(
            {
                "row": pa.array(rows, pa.int64()),
                "item_id": pa.array(item_ids, pa.string()),
                "group": pa.array(grouping.groups, pa.int64()),
                "distance_to_centre": pa.array(grouping.distance, pa.float64()),
            }
        ),
        out,
        unique=("item_id",),
    )
    groups = []
    for g in range(grouping.k):
        members = np.flatnonzero(grouping.groups == g)
        pairs = Counter((label[i], predicted[i]) for i in members).most_common(3)
        typical = members[np.argsort(grouping.distance[members], kind="stable")[:EXAMPLES]]
        contrast = _contrast(props, members)
        (top_label, top_pred), top_n = pairs[0]
        share = members.size / rows.size
        description = (
            f"{members.size} errors ({share:.0%}), most often {top_label} → {top_pred} "
            f"({top_n} of {members.size})" + (f"; {contrast['text']}" if contrast else "")
        )
        groups.append(
            {
                "group": g,
                "n_items": int(members.size),
                "share": share,
                "description": description,
                "confusions": [{"label": a, "predicted": b, "n_items": n} for (a, b), n in pairs],
                "contrast": contrast,
                "examples": [
                    {
                        "item_id": item_ids[i],
                        "label": label[i],
                        "predicted": predicted[i],
                        "ref": refs[i],
                    }
                    for i in typical
                ],
            }
        )
    return base | {
        "k": grouping.k,
        "silhouette": grouping.silhouette,
        "structure": "clear" if grouping.silhouette >= 0.25 else "weak",
        "groups": groups,
    }


def _contrast(props: dict[str, np.ndarray], members: np.ndarray) -> dict[str, Any] | None:
    """The image property that sets a group most apart from the other errors (|z| >= 0.5)."""
    best: dict[str, Any] | None = None
    for name, values in props.items():
        inside = np.zeros(values.size, dtype=bool)
        inside[members] = True
        a, b = values[inside], values[~inside]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        spread = np.nanstd(values)
        if a.size == 0 or b.size == 0 or not spread > 0:
            continue
        z = (a.mean() - b.mean()) / spread
        if abs(z) >= 0.5 and (best is None or abs(z) > abs(best["z"])):
            up, down = WORDS.get(name, (f"higher {name}", f"lower {name}"))
            best = {
                "property": name,
                "group_mean": float(a.mean()),
                "others_mean": float(b.mean()),
                "z": float(z),
                "text": f"{up if z > 0 else down} than the other errors "
                f"({name.removeprefix('image_')} {a.mean():.3g} vs {b.mean():.3g})",
            }
    return best
