"""SliceSpec: a way of cutting a dataset, as the user writes it.

- ``camera``: one slice per value (numeric columns with many values: quantile bins);
- ``line_speed>=1800`` (also ``>``, ``<=``, ``<``, ``=``, ``!=``): the items that satisfy the
  predicate, and the rest;
- ``camera*line``: every combination of the values of two columns (a cross).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assay.core.errors import InputError

_PREDICATE = re.compile(r"^\s*(?P<column>[^<>=!*]+?)\s*(?P<op>>=|<=|!=|>|<|=)\s*(?P<value>.+?)\s*$")
OPPOSITE = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "=": "!=", "!=": "="}


_LEADING_NUMBER = re.compile(
    r"^\s*(<=|>=|<|>|\[|\()?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
)
_RANK = {"<": 0, "<=": 0, "[": 1, "(": 1, None: 1, ">": 2, ">=": 2}


def slice_order(key: tuple[tuple[str, str], ...]) -> tuple[tuple[str, int, float, str], ...]:
    """Sort key of a slice: by column, then by number where the value is one or a range of
    them (``< 34.3``, ``[34.3, 113.3)``, ``[113.3, 200)``, ``>= 200``), else as text after the
    numbers (``missing``)."""
    out = []
    for column, value in key:
        m = _LEADING_NUMBER.match(value)
        if m is not None and (m.end() == len(value) or m.group(1) is not None):
            out.append((column, _RANK[m.group(1)], float(m.group(2)), value))
        else:
            out.append((column, 3, 0.0, value))
    return tuple(out)


def format_predicate(column: str, value: str) -> str:
    """``camera = 3``, ``line_speed >= 1800``, ``speed in [1200, 1450)``."""
    if value.startswith(("[", "(")) and "," in value:
        return f"{column} in {value}"
    if value.split(" ", 1)[0] in OPPOSITE:
        return f"{column} {value}"
    return f"{column} = {value}"


@dataclass(frozen=True)
class SliceSpec:
    text: str
    columns: tuple[str, ...]
    op: str | None = None
    value: str | None = None

    @property
    def is_predicate(self) -> bool:
        return self.op is not None


def parse_slice_spec(text: str) -> SliceSpec:
    """Read ``camera``, ``camera*line`` or ``line_speed>=1800``; raise InputError otherwise."""
    raw = text.strip()
    if not raw:
        raise InputError("empty slice specification")
    match = _PREDICATE.match(raw)
    if match is not None:
        return SliceSpec(raw, (match["column"].strip(),), match["op"], match["value"].strip())
    parts = tuple(p.strip() for p in raw.split("*"))
    if any(not p for p in parts) or len(parts) > 2:
        raise InputError(f"cannot read slice {text!r}: use COLUMN, COLUMN*COLUMN or COLUMN>=VALUE")
    return SliceSpec(raw, parts)
