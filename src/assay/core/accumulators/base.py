"""The accumulator protocol: how every metric is computed, on one machine or on many.

An accumulator is configured once (labels, interval settings) and then used as a combiner:
``empty()`` makes a state, ``update(state, batch)`` folds a batch in, ``merge(a, b)`` combines the
states of two shards, ``finalize(state)`` turns the merged state into reported values. States are
plain data (numpy arrays and ints; sums and counts, never means), so they pickle across processes
and merge associatively. The engines call nothing else; no metric is ever rewritten per engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from assay.core.batch import ScoredBatch
from assay.core.metric_value import MetricValue

S = TypeVar("S")


@dataclass
class Finalized:
    """What an accumulator reports: headline metrics, per-class metrics and other named results."""

    metrics: dict[str, MetricValue] = field(default_factory=dict)
    per_class: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def update(self, other: Finalized) -> None:
        """Fold another accumulator's report into this one."""
        self.metrics.update(other.metrics)
        for label, values in other.per_class.items():
            self.per_class.setdefault(label, {}).update(values)
        self.extras.update(other.extras)


class Accumulator(Protocol[S]):
    """A mergeable metric computation."""

    @property
    def name(self) -> str:
        """Identifies the accumulator (and salts its bootstrap stream)."""
        ...

    def empty(self) -> S:
        """The identity state: merging it with any state gives that state."""
        ...

    def update(self, state: S, batch: ScoredBatch) -> S:
        """Fold one batch of judged items into ``state``; returns the new state."""
        ...

    def merge(self, a: S, b: S) -> S:
        """Combine the states of two disjoint sets of items."""
        ...

    def finalize(self, state: S) -> Finalized:
        """Turn a merged state into metric values with intervals."""
        ...
