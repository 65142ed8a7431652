"""Group misclassified items by similarity: PCA, then k-means with k chosen by silhouette.

Every item given is assigned to a group. The number of groups is the k in 2..8 with the best
silhouette, measured on a seeded subset of at most ``SILHOUETTE_SAMPLE`` items (silhouette is
quadratic in the items; the subset only chooses k, it drops nobody). Groups are a lens for looking
at errors, not a statistical finding: the silhouette says how separated they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sklearn.decomposition import IncrementalPCA

# scikit-learn is imported where it is used: it costs ~2 s to import, and a validation without
# misclassified items to group (or without exploration) never needs it.

F = npt.NDArray[np.float64]
MIN_ITEMS = 10
MAX_GROUPS = 8
SILHOUETTE_SAMPLE = 4000
COMPONENTS = 32


@dataclass(frozen=True)
class Grouping:
    groups: npt.NDArray[np.int64]  # per item, its group (0 = largest)
    distance: F  # per item, its distance to its group's centre (closest first = most typical)
    k: int
    silhouette: float
    n_components: int


class Reducer:
    """Fits a PCA basis on vectors arriving in chunks (incrementally when they are many)."""

    def __init__(self, normalise: Callable[[F], F]) -> None:
        self.normalise = normalise
        self._pca: IncrementalPCA | None = None

    def fit(self, chunks: Iterable[F], dim: int) -> None:
        from sklearn.decomposition import IncrementalPCA

        n_comp = min(COMPONENTS, dim)
        self._pca = IncrementalPCA(n_components=n_comp)
        for chunk in chunks:
            # partial_fit needs at least n_components rows; a short last chunk still gets
            # transformed later, it only does not shape the basis. A first chunk of identical
            # rows (every misclassified image the same) has no variance to explain: scikit-learn
            # divides by zero (a warning on the user's terminal) and the basis means nothing.
            rows = self.normalise(chunk)
            first = not hasattr(self._pca, "components_")
            if chunk.shape[0] >= n_comp and not (first and np.all(rows == rows[:1])):
                self._pca.partial_fit(rows)

    def transform(self, chunk: F) -> F:
        assert self._pca is not None
        if not hasattr(self._pca, "components_"):
            return self.normalise(chunk)
        out: F = self._pca.transform(self.normalise(chunk))
        return out


def unit_rows(x: F) -> F:
    """L2-normalised rows: embeddings are compared by direction (cosine similarity)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    out: F = x / np.where(norm > 0, norm, 1.0)
    return out


def group(x: F, seed: int = 0) -> Grouping | None:
    """k-means groups of the rows of ``x`` (already reduced); None when there are too few items."""
    n = x.shape[0]
    if n < MIN_ITEMS or np.all(x == x[:1]):  # identical items form no groups
        return None
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    # Never more components than rows: a handful of errors still gets grouped.
    components = min(COMPONENTS, n)
    if x.shape[1] > components:
        x = PCA(components, random_state=seed).fit_transform(x)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, min(n, SILHOUETTE_SAMPLE), replace=False)
    best: tuple[float, int, npt.NDArray[np.int64], F] | None = None
    for k in range(2, min(MAX_GROUPS, n // 5) + 1):
        km = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit(x)
        labels = np.asarray(km.labels_, dtype=np.int64)
        if np.unique(labels[sample]).size < 2:
            continue
        score = float(silhouette_score(x[sample], labels[sample], random_state=seed))
        if best is None or score > best[0]:
            dist = np.linalg.norm(x - km.cluster_centers_[labels], axis=1)
            best = (score, k, labels, dist)
    if best is None:
        return None
    score, k, labels, dist = best
    # Renumber: group 0 is the largest.
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return Grouping(rank[labels], dist, k, score, int(x.shape[1]))
