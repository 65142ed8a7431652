"""MetricValue: one finalised number with its interval, or the reason it has none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _clean(x: float | None) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


@dataclass(frozen=True)
class MetricValue:
    """A metric's value with its confidence interval.

    ``value`` is None when the metric is undefined on this data (``note`` says why); ``method`` names
    how the interval was computed (``wilson`` or ``bootstrap``), None for counts.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str | None = None
    note: str | None = None

    @classmethod
    def of(
        cls,
        value: float | None,
        interval: tuple[float, float] | None = None,
        method: str | None = None,
        note: str | None = None,
    ) -> MetricValue:
        """Build from possibly-nan numbers: nan becomes None, and an undefined value drops its interval.

        An interval always contains its estimate. A percentile bootstrap of a biased statistic
        can miss it (ECE's resamples are all less calibrated than the data, so on a
        well-calibrated model every replicate lies above the estimate); such an interval is
        widened to reach the estimate, and its method says so.
        """
        v = _clean(value)
        if v is None:
            return cls(None, None, None, None, note or "undefined on this data")
        low, high = (None, None) if interval is None else (_clean(interval[0]), _clean(interval[1]))
        if low is None or high is None:
            return cls(v, None, None, None, note)
        if not low <= v <= high:
            low, high = min(low, v), max(high, v)
            method = f"{method}, widened to include the estimate" if method else None
        return cls(v, low, high, method, note)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}
        if self.method is not None:
            data["method"] = self.method
        if self.note is not None:
            data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricValue:
        return cls(
            data.get("value"),
            data.get("ci_low"),
            data.get("ci_high"),
            data.get("method"),
            data.get("note"),
        )
