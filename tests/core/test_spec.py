"""Model specs: parsed from plain data, every error names the field."""

from __future__ import annotations

from typing import Any

import pytest

from assay.core.errors import InputError
from assay.core.spec import ImageInput, TabularInput, parse_model_spec

IMAGE: dict[str, Any] = {
    "task": "classification",
    "labels": ["good", "defect"],
    "input": {
        "kind": "image",
        "size": [64, 64],
        "color": "grayscale",
        "layout": "NCHW",
        "scale": 0.00392156862745098,
        "mean": [0.0],
        "std": [1.0],
    },
    "output": {"name": "probabilities", "kind": "probabilities"},
}


def test_the_issue_example_spec_parses() -> None:
    spec = parse_model_spec(IMAGE)
    assert isinstance(spec.input, ImageInput)
    assert spec.input.size == (64, 64) and spec.input.channels == 1
    assert spec.labels == ("good", "defect") and spec.positive_index == 1


def test_spec_round_trips_through_plain_data() -> None:
    spec = parse_model_spec(IMAGE)
    assert parse_model_spec(spec.to_dict()) == spec


def test_tabular_spec_keeps_column_order_and_odd_names() -> None:
    spec = parse_model_spec(
        {"labels": [0, 1], "input": {"kind": "tabular", "columns": ["Torque [Nm]", "speed rpm"]}}
    )
    assert isinstance(spec.input, TabularInput)
    assert spec.input.columns == ("Torque [Nm]", "speed rpm")
    assert spec.labels == ("0", "1")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"labels": ["only"]}, "labels"),
        ({"labels": ["a", "a"]}, "distinct"),
        ({"task": "regression"}, "task"),
        ({"input": {"kind": "image", "size": [64]}}, "input.size"),
        ({"input": {"kind": "image", "size": [64, 64], "color": "cmyk"}}, "input.color"),
        (
            {"input": {"kind": "image", "size": [64, 64], "color": "rgb", "mean": [0.1, 0.2]}},
            "input.mean",
        ),
        ({"input": {"kind": "image", "size": [64, 64], "std": [0]}}, "input.std"),
        ({"input": {"kind": "tabular", "columns": []}}, "input.columns"),
        ({"input": {"kind": "audio"}}, "input.kind"),
        ({"output": {"kind": "votes"}}, "output.kind"),
        ({"threshold": 1.5}, "threshold"),
        ({"positive": "maybe"}, "positive"),
        ({"colour": "red"}, "unknown field colour"),
    ],
)
def test_bad_spec_is_rejected_naming_the_field(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_model_spec({**IMAGE, **patch})
