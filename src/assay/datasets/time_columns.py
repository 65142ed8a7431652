"""Columns that say when an item was made, whatever type they were stored as.

A time stamp says when, not what: two rows with the same features taken a year apart are one
item to a model, and a production sample is later than the validation set by nature. The audits
leave such columns out. A column of a date or time type is one; so is text all of whose values
but a stray few (``unknown``, a space: 1%) are dates with a four-digit year and a month and day
that can be, with or without a clock time and zone (a CSV's ``11/28/2026 10:32 PM``,
``28.11.2026``, ISO 8601 in its extended and basic forms, ``Nov 28, 2026``, C's ctime), which no
reader types; and a number column named as a time (``ts``, ``scanned_at``, ``EPOCHMS``; or text
of digits so named) whose values all lie where Unix times of 2000 to 2100 lie, in seconds to
nanoseconds. A name alone is not enough (``cycle_time`` is a feature), nor a range alone (a
serial number can sit in it); versions (``1.2.10``), lot codes (``12-34-567``) and clock-like
values alone (a shift start ``06:00``, a ratio ``16:10``) are not times, nor is a year-first
date with dots (``2026.11.12``, a calendar version as often) unless the name says time. A
number column named as a time may also hold dates as digits (``20261128``, or with the time
``20261128103211``) and, named as a date, Excel's serial days of 2000 to 2100 (a count of days
elsewhere).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay.datasets.row_digests import plain

_Y = r"(?:19|20|21)\d{2}"
_M = r"(?:0?[1-9]|1[0-2])"
_D = r"(?:0?[1-9]|[12]\d|3[01])"
_MON = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[ap]\.?m\.?)?"
# A zone: Z, an offset, an abbreviation (CET) or an IANA name (Europe/Berlin).
# PostgreSQL's short offset (+01), and Java's zone in brackets after the offset
# (+01:00[Europe/Berlin]); IANA names hold digits and signs too (Etc/GMT-1).
_IANA = r"[a-z]+/[a-z0-9_+-]+(?:/[a-z0-9_+-]+)?"
_ZONE = rf"(?:\s?(?:z|utc|gmt|[+-]\d{{2}}(?::?\d{{2}})?|[a-z]{{2,5}}|{_IANA})(?:\[{_IANA}\])?)?"
_YMD = r"(?:19|20|21)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 20261128
_HMS = r"(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d|60)"  # 103211
# A date always has a year of four digits and a month and day that can be (versions like
# 1.2.10, lot codes like 12-34-567 and clock-like ratios such as 16:10 are not times), with an
# optional clock time and zone; or ISO 8601's basic form, or C's ctime.
_DATE = (
    rf"{_Y}[-/.]{_M}[-/.]{_D}"  # 2026-11-28, 2026/11/28
    rf"|(?:{_M}[-/.]{_D}|{_D}[-/.]{_M})[-/.]{_Y}"  # 11/28/2026, 28.11.2026
    rf"|{_D}[- ]{_MON}[- ,]+{_Y}"  # 28-Nov-2026, 28 November 2026
    rf"|{_MON} {_D},? {_Y}"  # Nov 28, 2026
)
TEXT_TIME = re.compile(
    rf"^\s*(?:(?:{_DAY}\s)?(?:{_DATE})(?:(?:[ t]|, ){_CLOCK}{_ZONE})?"
    # A two-digit year only with a clock time after it (Excel's m/d/yy h:mm; 28.11.26 10:32):
    # alone, 1.2.10 is a version.
    rf"|(?:{_M}[-/.]{_D}|{_D}[-/.]{_M})[-/.]\d{{2}}(?:[ t]|, ){_CLOCK}{_ZONE}"
    rf"|{_YMD}[t ]{_HMS}(?:\.\d+)?{_ZONE}"  # 20261128T103211Z, 20261128 103211
    rf"|{_DAY} {_MON} +{_D} {_CLOCK} {_Y})\s*$"  # Sat Nov 28 10:32:11 2026
)
# Year first with dots and nothing after (2026.11.12) is as often a calendar version
# (firmware 2026.11.12) as a date: a date only in a column named as a time.
DOTTED = re.compile(rf"^\s*{_Y}\.{_M}\.{_D}\s*$")
# A few stray values (unknown, a space) leave a column of dates one: up to this share.
STRAY_SHARE = 0.01

# Words in a column's name that say it holds a time (its name split at _, -, spaces and
# camelCase): a number column needs one of them, and values in EPOCH_RANGE. "at" counts only
# last (scanned_at; freq_at_peak is a frequency).
TIME_WORDS = frozenset(
    {"time", "timestamp", "ts", "date", "datetime", "epoch", "unix", "when", "tstamp",
     "created", "updated", "modified", "recorded", "captured", "scanned", "measured",
     "inspected", "mtime", "ctime", "atime"}
)  # fmt: skip
# Excel's serial dates of 2000-01-01 and 2100-01-01 (days since 1899-12-30); a count sits there
# as easily, so only in a column named as a date.
EXCEL_RANGE = (36_526, 73_051)
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
        present = present.filter(pc.invert(pc.match_substring_regex(present, r"^\s*$")))
        if len(present) == 0:
            return None
        if (
            named_as_time(name)
            and pc.all(pc.match_substring_regex(present, r"^\s*\d+(?:\.\d+)?\s*$")).as_py()
        ):
            whole = pc.all(pc.match_substring_regex(present, r"^\s*\d+\s*$")).as_py()
            try:
                numbers = pc.cast(
                    pc.utf8_trim_whitespace(present), pa.int64() if whole else pa.float64()
                )
            except pa.ArrowInvalid:  # beyond 64 bits: no time
                return None
            return _number_time(name, numbers)  # numbers written as text
        matched = pc.match_substring_regex(present, TEXT_TIME.pattern, ignore_case=True)
        if not named_as_time(name):
            matched = pc.and_(matched, pc.invert(pc.match_substring_regex(present, DOTTED.pattern)))
        n_match = int(pc.sum(matched.cast(pa.int64())).as_py() or 0)
        if n_match >= max(1, len(present) - max(1, int(STRAY_SHARE * len(present)))):
            if len(present) > 1 and n_match < 2:
                return None  # one date and a stray: nothing to go by
            return "dates or times as text"
        return None
    if (pa.types.is_integer(present.type) or pa.types.is_floating(present.type)) and named_as_time(
        name
    ):
        return _number_time(name, present)
    return None


def _number_time(name: str, values: pa.Array) -> str | None:
    """How a number column named as a time holds times: Unix times, dates written as digits
    (``20261128``, ``20261128103211``) or, named as a date, Excel's serial days."""
    kind = _unix(values)
    if kind is not None:
        return kind
    if _digit_dates(values):
        return "dates as digits (YYYYMMDD)"
    if _named_as_date(name):
        lo, hi = (float(v.as_py()) for v in pc.min_max(values).values())
        if EXCEL_RANGE[0] <= lo and hi < EXCEL_RANGE[1]:
            return "Excel serial dates"
    return None


def _digit_dates(values: pa.Array) -> bool:
    """Whether every value reads as a date in digits, YYYYMMDD or YYYYMMDDhhmmss, of a day
    the calendar has (20260230 is not one)."""
    if pa.types.is_floating(values.type):  # pandas writes a column with a missing value so
        values = values.filter(pc.invert(pc.is_nan(values)))  # (NaN: that missing value)
        if len(values) == 0:
            return False
        whole = pc.and_(pc.is_finite(values), pc.equal(pc.floor(values), values))
        if not pc.all(whole).as_py():
            return False
        values = pc.cast(values, pa.int64())
    text = pc.cast(values, pa.string())
    if not pc.all(pc.match_substring_regex(text, rf"^{_YMD}(?:{_HMS})?$")).as_py():
        return False
    day = pc.utf8_slice_codeunits(text, 0, 8)
    parsed = pc.strptime(day, format="%Y%m%d", unit="s", error_is_null=True)
    # Arrow reads 20260230 as 2 March: the day must come back as written.
    return bool(pc.all(pc.equal(pc.strftime(parsed, format="%Y%m%d"), day)).as_py())


def _named_as_date(name: str) -> bool:
    return bool({"date", "datetime"} & set(_words(name)))


def named_as_time(name: str) -> bool:
    """Whether a word of ``name`` says time (``ts``, ``scanned_at``, ``scanTime``,
    ``EPOCHMS``)."""
    words = _words(name)
    if words and words[-1] == "at":
        return True
    return any(w in TIME_WORDS or w.startswith(("epoch", "timestamp")) for w in words)


def _words(name: str) -> list[str]:
    """A column name's words, split at _, -, spaces and camelCase, lower-cased."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _unix(values: pa.Array) -> str | None:
    """ "Unix seconds" (or another unit) when every value lies where Unix times of 2000 to 2100
    do in that unit, else None."""
    lo, hi = (float(v.as_py()) for v in pc.min_max(values).values())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    for unit, scale in EPOCH_UNITS.items():
        if EPOCH_RANGE[0] * scale <= lo and hi <= EPOCH_RANGE[1] * scale:
            return f"Unix {unit}"
    return None
