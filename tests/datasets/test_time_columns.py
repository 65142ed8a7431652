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
        ("x", ["10:32", "11:00:01.5", "06:00 am"], "dates or times as text"),
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
     ("state", False), ("batch", False), ("timer_count", False)],
)  # fmt: skip
def test_named_as_time(name: str, named: bool) -> None:
    assert named_as_time(name) is named
