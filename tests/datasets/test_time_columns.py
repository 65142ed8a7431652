"""Which columns hold times, whatever type they were stored as."""

from __future__ import annotations

import pyarrow as pa
import pytest

from assay.datasets.time_columns import named_as_time, time_kind


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("at", pa.array([0, 1], pa.timestamp("s")), "a date/time type"),
        ("when", ["11/28/2026 10:32", "12/01/2025 1:02 PM", None], "dates or times as text"),
        ("x", ["2026-11-28T10:32:11.123Z", "2026-11-28"], "dates or times as text"),
        ("x", ["28.11.2026 10:32:11", "Nov 28, 2026", "28-Nov-2026"], "dates or times as text"),
        ("x", ["20261128T103211Z", "20261128T103212.5Z"], "dates or times as text"),
        ("x", ["Sat Nov 28 10:32:11 2026", "Sun Nov 29 01:02:03 2026"], "dates or times as text"),
        (
            "x",
            ["2026-11-28 10:32:11 CET", "2026-11-28 10:32:11.123456+01:00"],
            "dates or times as text",
        ),
        # A stray value or two among a hundred dates leaves them dates.
        (
            "x",
            [f"2026-01-{d % 28 + 1:02d}" for d in range(100)] + ["unknown", " "],
            "dates or times as text",
        ),
        # Excel's default m/d/yy h:mm, and d.m.yy with a time (a review: copies evaded).
        ("x", ["11/1/25 10:00", "11/28/26 22:05"], "dates or times as text"),
        ("x", ["28.11.26 10:32", "01.12.26 06:00:01"], "dates or times as text"),
        ("EPOCHMS", [1_700_000_000_000, 1_700_000_100_000], "Unix milliseconds"),
        ("created", [1_700_000_000, 1_700_000_100], "Unix seconds"),
        ("ts", ["1764000000", " 1764000100"], "Unix seconds"),  # written as text
        # Not times (a review): clock-like values alone, versions, lot codes, a number named
        # with "at" inside its name.
        ("shift_start", ["06:00", "14:00", "22:00"], None),
        ("aspect", ["16:10", "16:9"], None),
        ("fw", ["1.2.10", "1.2.11", "1.3.12"], None),
        ("lot", ["12-34-567", "12-34-568"], None),
        ("freq_at_peak", [1.2e9, 4.0e9], None),
        ("resistance_at_500v", [1.2e9, 3.9e9], None),
        ("ts", [1_700_000_000, 1_700_000_100], "Unix seconds"),
        ("scanTime", [1.7e12, 1.71e12], "Unix milliseconds"),
        ("captured_at", [1_700_000_000_000_000_000], "Unix nanoseconds"),
        # Not times: a version, a lot number of 8 digits, a category with one clock time in it,
        # a duration named like a time, a serial number in the range of Unix times.
        ("ver", ["1.2.3", "1.2.30"], None),
        ("lot", ["20261128", "20261129"], None),
        ("x", ["ok", "10:32"], None),
        ("cycle_time", [12.5, 13.0], None),
        ("serial", [1_700_000_000, 1_700_000_100], None),
        ("ts", [None, None], None),
        ("ts", [float("nan"), 1.7e9], "Unix seconds"),  # NaN: a float column's missing value
        ("ts", [float("inf"), 1.7e9], None),
        # Left out before (noted on 2026-11-30): compact dates with a time, IANA zones, mtime,
        # fractional Unix times as text, dates as digits, Excel serial days named as a date.
        ("x", ["20261128 103211", "20261129 000001"], "dates or times as text"),
        (
            "x",
            [
                "2026-11-28 10:32:11 Europe/Berlin",
                "2026-11-28 10:32 America/Argentina/Buenos_Aires",
            ],
            "dates or times as text",
        ),
        ("mtime", [1_700_000_000, 1_700_000_100], "Unix seconds"),
        ("ts", ["1764000000.25", "1764000100.5"], "Unix seconds"),
        ("date", [20261128, 20261129], "dates as digits (YYYYMMDD)"),
        ("scan_time", [20261128103211, 20261129000001], "dates as digits (YYYYMMDD)"),
        ("date", ["20261128", "20261129"], "dates as digits (YYYYMMDD)"),
        ("ScanDate", [46354.4375, 46355.0], "Excel serial dates"),
        # Calendar versions read as dates (a review): year-first with dots, unless named a time.
        ("firmware", ["2026.11.12", "2026.12.01"], None),
        ("prod_date", ["2026.11.12", "2026.12.01"], "dates or times as text"),
        # Not times: a count in Excel's range not named as a date, a sequence after a date that
        # cannot be a time of day, an eight-digit number with no month 13.
        ("created_count", [40_000, 41_000], None),
        ("n_inspected", [40_000, 41_000], None),
        ("x", ["20261128 999999", "20261129 000001"], None),
        ("date", [20261328, 20261129], None),
        # A review of the above: Java's zone in brackets, PostgreSQL's short offset, IANA names
        # with digits, dates in digits stored as floats (pandas, a missing value), no 30 February.
        (
            "x",
            [
                "2026-11-20T10:05:11+01:00[Europe/Berlin]",
                "2026-11-21T10:05:11+01:00[Europe/Berlin]",
            ],
            "dates or times as text",
        ),
        ("x", ["2026-11-20 10:05:11.050+01", "2026-11-21 10:05:12+01"], "dates or times as text"),
        (
            "x",
            ["2026-11-20 10:05:11 Etc/GMT-1", "2026-11-21 10:05:12 Etc/GMT-1"],
            "dates or times as text",
        ),
        ("scan_date", [20261128.0, float("nan"), 20261129.0], "dates as digits (YYYYMMDD)"),
        ("scanned_at", [20261128103211.0, 20261129000001.0], "dates as digits (YYYYMMDD)"),
        ("ts", [20260230, 20260228], None),
        ("scan_date", [20261128.5, 20261129.0], None),
    ],
)
def test_time_kind(name: str, values: object, kind: str | None) -> None:
    array = values if isinstance(values, pa.Array) else pa.array(values)
    assert time_kind(name, array) == kind


def test_a_dictionary_of_dates_is_a_time() -> None:
    array = pa.array(["2026-11-28", "2026-11-29"]).dictionary_encode()
    assert time_kind("day", array) == "dates or times as text"


@pytest.mark.parametrize(
    ("name", "named"),
    [("ts", True), ("scanned_at", True), ("scanTime", True), ("Date", True),
     ("state", False), ("batch", False), ("timer_count", False), ("freq_at_peak", False),
     ("scanTimeAt", True), ("EPOCHMS", True)],
)  # fmt: skip
def test_named_as_time(name: str, named: bool) -> None:
    assert named_as_time(name) is named
