"""Fuzzing the parsers people feed: any text or structure ends as a result or one InputError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.core.errors import InputError
from assay.core.policy import parse_policy
from assay.core.spec import parse_model_spec
from assay.services.yaml_input import parse_yaml

LABELS = ("ok", "scratch", "void")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["accuracy >= 0.9", "cohen_kappa > 0", "recall[void] >= 2", "1e308", "2%"]),
)
structures = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    [
        "checks",
        "confidence",
        "evidence",
        "slices",
        "costs",
        "max_unjudged",
        "on_inconclusive",
        "labels",
        "input",
        "output",
        "threshold",
        "positive",
        "negative",
        "kind",
        "size",
        "columns",
        "metric",
        "min",
        "max",
        "change",
        "scope",
        "strict",
        "trusted_types",
    ]
)
documents = st.dictionaries(keys, structures, max_size=6)


def settles(fn: Any, *args: Any) -> None:
    """``fn`` returns, or raises InputError with a one-line message; anything else is a bug."""
    message = ""
    try:
        fn(*args)
    except InputError as exc:
        message = str(exc)
    assert "\n" not in message.strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300))
def test_any_text_parses_or_is_one_input_error(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # not text a file can hold; the web layer refuses it before parsing
    settles(parse_yaml, text, "doc.yaml")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents)
def test_any_policy_structure_parses_or_is_one_input_error(doc: dict[str, Any]) -> None:
    settles(parse_policy, doc, LABELS, "ok", "policy.yaml")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents)
def test_any_spec_structure_parses_or_is_one_input_error(doc: dict[str, Any]) -> None:
    settles(parse_model_spec, doc)
