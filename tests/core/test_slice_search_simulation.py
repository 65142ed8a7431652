"""Error slices mean something: on pure noise the search reports a slice on at most 5% of datasets.

Each simulated dataset is a validation where the errors are independent of everything: three
metadata columns (line, camera, shift) and ``n_inputs`` numeric input columns in quantile bins,
screened as the service screens a model's inputs. A dataset "reports a slice" when the search
returns any. The promise is alpha = 5%; over 200 datasets the observed share stays under
5% + 3 standard errors of a 5% rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.core.slice_search import CodedColumn, find_error_slices, quantile_codes

ALPHA = 0.05
DATASETS = 200
MARGIN = 3 * math.sqrt(ALPHA * (1 - ALPHA) / DATASETS)


def dataset(
    rng: np.random.Generator, n: int, n_inputs: int, planted: bool = False
) -> tuple[list[CodedColumn], list[CodedColumn], np.ndarray]:
    """Metadata and input columns, and the errors (independent of them unless ``planted``)."""
    meta_values = {"line": 3, "camera": 4, "shift": 3}
    meta = {k: rng.integers(0, v, n) for k, v in meta_values.items()}
    metadata = [
        CodedColumn(k, codes.astype(np.int8), tuple(f"{k}{i}" for i in range(meta_values[k])))
        for k, codes in meta.items()
    ]
    x = rng.normal(size=(n, n_inputs))
    inputs = []
    for j in range(n_inputs):
        codes, labels = quantile_codes(x[:, j], 5)
        inputs.append(CodedColumn(f"x{j}", codes, labels))
    errors = rng.random(n) < 0.15
    if planted:
        # Camera 2 in the top fifth of x0 (one quantile bin): errors triple there.
        inside = (meta["camera"] == 2) & (x[:, 0] >= np.quantile(x[:, 0], 0.8))
        errors[inside] = rng.random(int(inside.sum())) < 0.45
    return metadata, inputs, errors


@pytest.mark.parametrize("n_inputs", [10, 30, 60])
def test_noise_reports_a_slice_on_at_most_alpha_of_datasets(n_inputs: int) -> None:
    rng = np.random.default_rng(n_inputs)
    reported = 0
    for i in range(DATASETS):
        metadata, inputs, errors = dataset(rng, 2000, n_inputs)
        found, tried = find_error_slices(
            metadata, errors, min_support=30, alpha=ALPHA, screened=iter(inputs), seed=i
        )
        assert tried > 0
        reported += bool(found)
    assert reported / DATASETS <= ALPHA + MARGIN, f"{reported} of {DATASETS} reported a slice"


def test_a_planted_two_condition_slice_is_still_found_first() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(20):
        metadata, inputs, errors = dataset(rng, 4000, 30, planted=True)
        found, _ = find_error_slices(metadata, errors, screened=iter(inputs), seed=i)
        if found:
            columns = {c for c, _ in found[0].predicates}
            values = dict(found[0].predicates)
            hits += columns == {"camera", "x0"} and values["camera"] == "camera2"
    assert hits >= 18, hits
