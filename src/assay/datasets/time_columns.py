"""Columns that say when an item was made, whatever type they were stored as.

A time stamp says when, not what: two rows with the same features taken a year apart are one
item to a model, and a production sample is later than the validation set by nature. The audits
leave such columns out. A column of a date or time type is one; so is text every value of which
is written as a date or a time of day (a CSV's ``11/28/2026 10:32``, which no reader types), and
a number column named as a time (``ts``, ``scanned_at``, ``epoch``) whose values all lie where
Unix times of 2000 to 2100 lie, in seconds, milliseconds, microseconds or nanoseconds. A name
alone is not enough (``cycle_time`` is a feature), nor a range alone (a serial number can sit in
it).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.datasets.row_digests import plain

_DATE = (
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 2026-11-28, 2026/11/28
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 11/28/2026, 28.11.2026, 28-11-26
    r"|\d{1,2}[- ][A-Za-z]{3,9}\.?[- ,]+\d{2,4}"  # 28-Nov-2026, 28 November 2026
    r"|[A-Za-z]{3,9}\.? \d{1,2},? \d{4}"  # Nov 28, 2026
    r"|\d{8}"  # 20261128, only with a time after it (below)
)
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[AaPp]\.?[Mm]\.?)?"
_ZONE = r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
TEXT_TIME = re.compile(rf"^\s*(?:(?:{_DATE})(?:(?:[ T]|, ){_CLOCK}{_ZONE})?|{_CLOCK}{_ZONE})\s*$")
_EIGHT_DIGITS = re.compile(r"^\s*\d{8}\s*$")  # 20261128 alone may be a count: not taken

# Words in a column's name that say it holds a time (its name split at _, -, spaces and
# camelCase): a number column needs one of them, and values in EPOCH_RANGE.
TIME_WORDS = frozenset(
    {"time", "timestamp", "ts", "date", "datetime", "epoch", "unix", "when", "at", "tstamp"}
)
# Unix seconds of 2000-01-01 and 2100-01-01.
EPOCH_RANGE = (946_684_800, 4_102_444_800)
EPOCH_UNITS = {"seconds": 1, "milliseconds": 10**3, "microseconds": 10**6, "nanoseconds": 10**9}


def time_kind(name: str, values: pa.Array | pa.ChunkedArray) -> str | None:
    """How column ``name`` holds times ("date/time type", "dates as text", "Unix seconds", ...),
    or None when it does not. Nulls are ignored; a column of nulls alone is not a time."""
    t = values.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_temporal(t):
        return "a date/time type"
    values = plain(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    present = values.drop_null()
    if len(present) == 0:
        return None
    if pa.types.is_string(present.type) or pa.types.is_large_string(present.type):
        distinct = pc.unique(present)
        if not pc.all(pc.match_substring_regex(distinct, TEXT_TIME.pattern)).as_py():
            return None
        if pc.all(pc.match_substring_regex(distinct, _EIGHT_DIGITS.pattern)).as_py():
            return None
        return "dates or times as text"
    if (pa.types.is_integer(present.type) or pa.types.is_floating(present.type)) and named_as_time(
        name
    ):
        lo, hi = (float(v.as_py()) for v in pc.min_max(present).values())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        for unit, scale in EPOCH_UNITS.items():
            if EPOCH_RANGE[0] * scale <= lo and hi <= EPOCH_RANGE[1] * scale:
                return f"Unix {unit}"
    return None


def named_as_time(name: str) -> bool:
    """Whether a word of ``name`` says time (``ts``, ``scanned_at``, ``scanTime``)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return any(w in TIME_WORDS for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w)
