"""False error slices on pure noise: how often the search reports a slice where there is none.

Each dataset has 2,000 items, a 15% error rate independent of everything, three metadata columns
(line, camera, shift) and N noise input columns in quantile bins, screened as Assay screens a
model's inputs. Two searches side by side:

- ``same-data``: the search Assay used before, choosing and testing on the same items, with
  Benjamini-Hochberg over the slices tried;
- ``split-sample``: Assay's search now (choose on one half, test on the other).

    python benchmarks/error_slice_noise.py [--datasets 200]

prints, per N, the share of datasets that reported at least one slice (the promise: 5%).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from assay.core.slice_search import (
    CodedColumn,
    _explore,
    column_strength,
    find_error_slices,
    quantile_codes,
)
from assay.core.stattests import benjamini_hochberg


def dataset(
    rng: np.random.Generator, n: int, n_inputs: int
) -> tuple[list[CodedColumn], list[CodedColumn], np.ndarray]:
    sizes = {"line": 3, "camera": 4, "shift": 3}
    metadata = [
        CodedColumn(k, rng.integers(0, v, n).astype(np.int8), tuple(f"{k}{i}" for i in range(v)))
        for k, v in sizes.items()
    ]
    inputs = []
    for j in range(n_inputs):
        codes, labels = quantile_codes(rng.normal(size=n), 5)
        inputs.append(CodedColumn(f"x{j}", codes, labels))
    return metadata, inputs, rng.random(n) < 0.15


def same_data_search(
    metadata: list[CodedColumn], inputs: list[CodedColumn], errors: np.ndarray
) -> bool:
    """The former search: screen, choose and test on all items; BH over the slices tried."""
    ranked = sorted(inputs, key=lambda c: -column_strength(c, errors, 30))[:30]
    tried = _explore(metadata + ranked, errors, 30, 12, 20)
    q = benjamini_hochberg([t.p_value for t in tried])
    return any(
        qi < 0.05 and t.error_rate > t.rest_error_rate for t, qi in zip(tried, q, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    args = parser.parse_args()
    k = args.datasets
    se = math.sqrt(0.05 * 0.95 / k)
    print(f"{k} noise datasets per row; a 5% rate is measured to +/- {se:.1%} (1 s.e.)")
    print(f"{'noise inputs':>12} {'same-data':>10} {'split-sample':>13} {'seconds':>8}")
    for n_inputs in (10, 30, 60):
        rng = np.random.default_rng(n_inputs)
        old = new = 0
        t0 = time.perf_counter()
        for i in range(k):
            metadata, inputs, errors = dataset(rng, 2000, n_inputs)
            old += same_data_search(metadata, inputs, errors)
            found, _ = find_error_slices(metadata, errors, screened=iter(inputs), seed=i)
            new += bool(found)
        print(f"{n_inputs:>12} {old / k:>10.1%} {new / k:>13.1%} {time.perf_counter() - t0:>8.1f}")


if __name__ == "__main__":
    main()
