"""FailureLog: items that could not be judged, with the reason, never dropped silently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Items the experts left without a reference: the dataset's doing, not the model's.
NO_LABEL = "no expert label"
DISPUTED = "disputed: the experts' labels have no majority"
WITHOUT_REFERENCE = frozenset({NO_LABEL, DISPUTED})


# Why an image has no expert mask when none was given: an anomaly task reads a good image's
# so as normal everywhere (MVTec AD gives good images no mask).
NO_MASK = "no expert mask for this image"

# How a reason begins when a spec that refuses missing values (input.missing: error) met one.
MISSING_FEATURE = "missing value in feature column"

# How a reason ends when a file no longer holds what was registered (the file is named first).
CHANGED = "changed since the dataset was registered"


def count_without_reference(by_reason: Mapping[str, int]) -> int:
    """How many unjudged items had no expert reference to judge them against."""
    return sum(n for reason, n in by_reason.items() if reason in WITHOUT_REFERENCE)


def named_reasons(
    by_reason: Mapping[str, int], at_most: int = 3, without_reference: bool = False
) -> str:
    """The model's reasons for unjudged items as one line: files changed since registration
    first (tampering or a swapped file is what a reader of a verdict must not miss, however
    few), then the most frequent; the rest counted. Items without an expert reference are
    not the model's and are left out, unless ``without_reference`` (when nothing was judged,
    they may be the whole cause)."""
    mine = [(r, n) for r, n in by_reason.items() if without_reference or r not in WITHOUT_REFERENCE]
    ordered = sorted(mine, key=lambda rn: (not rn[0].endswith(CHANGED), -rn[1], rn[0]))
    shown = "; ".join(f"{n} {r}" for r, n in ordered[:at_most])
    rest = len(ordered) - at_most
    return shown + (f"; {rest} more reason{'s' if rest > 1 else ''}" if rest > 0 else "")


@dataclass
class FailureLog:
    """Counts of failed items by reason, plus the first ``keep`` failed items in stream order.

    Every failed item is also written, with its reason, to the predictions file; this log is the
    summary the report and ``result.json`` show.
    """

    keep: int = 1000
    n_failed: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    items: list[tuple[str, str]] = field(default_factory=list)

    def record(self, item_id: str, reason: str) -> None:
        self.n_failed += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.items) < self.keep:
            self.items.append((item_id, reason))

    def merge(self, other: FailureLog) -> FailureLog:
        """Combine two logs; ``self``'s items come first, as for consecutive shards."""
        out = FailureLog(keep=self.keep, n_failed=self.n_failed + other.n_failed)
        out.by_reason = dict(self.by_reason)
        for reason, n in other.by_reason.items():
            out.by_reason[reason] = out.by_reason.get(reason, 0) + n
        out.items = (self.items + other.items)[: self.keep]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_failed": self.n_failed,
            "by_reason": dict(sorted(self.by_reason.items(), key=lambda kv: -kv[1])),
            "items": [{"item_id": i, "error": r} for i, r in self.items],
            "items_truncated": self.n_failed > len(self.items),
        }
