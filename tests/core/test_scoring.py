"""From raw outputs to probabilities and predictions."""

from __future__ import annotations

import numpy as np
import pytest

from assay.core.errors import InputError
from assay.core.scoring import predict_classes, to_probabilities
from assay.core.spec import parse_model_spec


def spec(**kw: object) -> object:
    return parse_model_spec(
        {"labels": ["ok", "defect"], "input": {"kind": "tabular", "columns": ["x"]}, **kw}
    )


def test_logits_become_probabilities_that_sum_to_one() -> None:
    s = parse_model_spec(
        {
            "labels": ["a", "b", "c"],
            "input": {"kind": "tabular", "columns": ["x"]},
            "output": {"kind": "logits"},
        }
    )
    p = to_probabilities(np.array([[1000.0, 0.0, -5.0], [0.0, 0.0, 0.0]]), s)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], 1 / 3)


def test_single_column_binary_output_is_the_positive_class() -> None:
    p = to_probabilities(np.array([0.2, 0.9]), spec())  # type: ignore[arg-type]
    np.testing.assert_allclose(p, [[0.8, 0.2], [0.1, 0.9]])


def test_threshold_decides_for_the_positive_class() -> None:
    s = spec(threshold=0.3, positive="defect")
    pred = predict_classes(np.array([[0.75, 0.25], [0.65, 0.35]]), s)  # type: ignore[arg-type]
    assert pred.tolist() == [0, 1]


def test_wrong_number_of_columns_is_an_input_error() -> None:
    with pytest.raises(InputError, match="3 columns but the spec lists 2 labels"):
        to_probabilities(np.zeros((4, 3)), spec())  # type: ignore[arg-type]


def test_float32_rounding_is_renormalised_but_non_probabilities_are_rejected() -> None:
    s = parse_model_spec(
        {"labels": ["a", "b", "c"], "input": {"kind": "tabular", "columns": ["x"]}}
    )
    p = to_probabilities(np.array([[0.2, 0.3, 0.5000001], [0.9, 0.9, 0.9], [-0.1, 0.6, 0.5]]), s)
    assert p[0].sum() == pytest.approx(1.0, abs=1e-15)
    assert np.isnan(p[1]).all() and np.isnan(p[2]).all()


@pytest.mark.parametrize("named", [{"positive": "defect"}, {"negative": "ok"}])
def test_a_single_column_is_the_positive_class_also_when_it_is_listed_first(
    named: dict[str, str],
) -> None:
    """labels [defect, ok] with defect positive (index 0): `positive_index or 1` read index 0
    as 1, so the one column, P(defect), was taken as P(ok), and a model that is right 8% of the
    time was reported right 92% of the time."""
    s = parse_model_spec(
        {"labels": ["defect", "ok"], "input": {"kind": "tabular", "columns": ["x"]}, **named}
    )
    p = to_probabilities(np.array([0.9, 0.2]), s)
    np.testing.assert_allclose(p, [[0.9, 0.1], [0.2, 0.8]])
