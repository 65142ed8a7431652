"""assay.arrow builds and reads Arrow arrays through their buffers: the same arrays and values as
pyarrow's own constructors and conversions (which import pandas), on nulls, NaN, sliced arrays
(an offset into the buffers) and empty ones; and a validation's main process never imports
pandas (0.3 s on every CLI call)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.arrow import (
    as_bools,
    as_floats,
    as_ints,
    bools,
    floats,
    null,
    number,
    numbers,
    string,
    strings,
    validity,
)

texts = st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=40)
reals = st.lists(st.one_of(st.none(), st.floats(allow_nan=True, width=64)), max_size=40)


@given(texts)
def test_strings_equal_pyarrows(values: list[str | None]) -> None:
    assert strings(values).equals(pa.array(values, pa.string()))


@given(reals, st.integers(0, 5))
def test_floats_and_validity_read_what_pyarrow_reads(values: list[float | None], cut: int) -> None:
    array = pa.array(values, pa.float64()).slice(min(cut, len(values)))
    expected = array.to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(as_floats(array), expected)  # null and NaN both as NaN
    np.testing.assert_array_equal(validity(array), array.is_valid().to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(
        as_floats(pa.chunked_array([array, array])), np.r_[expected, expected]
    )


@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=40), st.integers(0, 3)
)
def test_ints_fill_nulls_at_every_width(values: list[int | None], cut: int) -> None:
    for type_ in (pa.int32(), pa.int64()):
        array = pa.array(values, type_).slice(min(cut, len(values)))
        expected = np.array([-9 if v is None else v for v in array.to_pylist()], np.int64)
        np.testing.assert_array_equal(as_ints(array, -9), expected)
    small = pa.array([1, None, -3], pa.int8())
    np.testing.assert_array_equal(as_ints(small, 0), [1, 0, -3])


@given(st.lists(st.one_of(st.none(), st.booleans()), max_size=40), st.integers(0, 9))
def test_bools_round_trip(values: list[bool | None], cut: int) -> None:
    array = pa.array(values, pa.bool_()).slice(min(cut, len(values)))
    expected = np.array([bool(v) for v in array.to_pylist()], bool)  # null as False
    np.testing.assert_array_equal(as_bools(array), expected)
    assert bools(expected).equals(pa.array(expected.tolist(), pa.bool_()))


def test_numbers_take_masks_and_floats_turn_nan_into_null() -> None:
    x = np.array([1.5, np.nan, 3.0])
    assert floats(x).equals(pa.array(x, pa.float64(), from_pandas=True))
    codes = np.array([2, -1, 0])
    assert numbers(codes, pa.int32(), codes < 0).equals(pa.array(codes, pa.int32(), mask=codes < 0))
    assert numbers(np.zeros(0), pa.float64()).equals(pa.array([], pa.float64()))
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)[:, 1]  # not contiguous
    assert numbers(vectors, pa.float32()).equals(pa.array(vectors, pa.float32()))


def test_scalars_equal_pyarrows() -> None:
    assert string("camera") == pa.scalar("camera")
    assert number(2.5) == pa.scalar(2.5)
    assert null(pa.bool_()) == pa.scalar(None, pa.bool_())
    assert pc.fill_null(strings(["a", None]), string("z")).to_pylist() == ["a", "z"]


@pytest.mark.parametrize("reuse", [True, False])
def test_a_validation_never_imports_pandas_in_its_own_process(tmp_path: Path, reuse: bool) -> None:
    """Explorations on, the second validation reusing the first's outputs (reuse on) or not."""
    import pyarrow.parquet as pq

    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.workspace import Workspace
    from tests.models import fit_logistic, tabular_onnx

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2))
    y = np.where(x[:, 0] + rng.normal(scale=0.5, size=3000) > 0, "bad", "good")
    line = np.where(rng.random(3000) < 0.5, "L1", "L2")
    table = {"a": x[:, 0], "b": x[:, 1], "line": line.tolist(), "label": y.tolist()}
    pq.write_table(pa.table(table), tmp_path / "t.parquet")
    onnx = tabular_onnx(fit_logistic(x[:500].astype(np.float32), y[:500]), 2, tmp_path / "m.onnx")
    # Registered here: registration reads the file through pyarrow's pandas-aware paths, which
    # is a one-off; what runs on every validation is the subprocess below.
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "t.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b"]}}
    register_model(ws, "m", onnx, spec)
    ws.close()
    script = textwrap.dedent(
        f"""
        import sys
        from assay.core.config import ValidationConfig
        from assay.services.validation import validate
        from assay.services.workspace import Workspace

        ws = Workspace.open(r"{tmp_path}/home")
        config = ValidationConfig(profile=False, reuse={reuse})
        validate(ws, "m", "t", config=config)
        second = validate(ws, "m", "t", config=config)
        assert (second.result.n_reused > 0) == {reuse}
        print("pandas" in sys.modules)
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_unsigned_widths_ranges_and_types_are_respected() -> None:
    np.testing.assert_array_equal(as_ints(pa.array([200, None], pa.uint8()), -1), [200, -1])
    np.testing.assert_array_equal(as_ints(pa.array([-5], pa.int16()), 0), [-5])
    with pytest.raises(TypeError):
        as_ints(pa.array([1.5]), 0)
    with pytest.raises(TypeError):
        as_bools(pa.array([1, 0]))
    with pytest.raises(ValueError, match="range"):
        numbers(np.array([2**40]), pa.int32())  # pa.array refuses it too: never wrapped
    with pytest.raises(ValueError, match="not int64"):
        numbers(np.array([1.5]), pa.int64())
    assert numbers(np.array([True, False]), pa.uint8()).to_pylist() == [1, 0]


def test_validity_follows_is_valid_for_dictionaries_chunks_and_null_columns() -> None:
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 0], pa.int32()), pa.array(["a", None])
    )
    np.testing.assert_array_equal(
        validity(dictionary), dictionary.is_valid().to_numpy(zero_copy_only=False)
    )
    chunked = pa.chunked_array([pa.array([1, None]), pa.array([None, 4])])
    np.testing.assert_array_equal(validity(chunked), [True, False, False, True])
    np.testing.assert_array_equal(validity(pa.nulls(3)), [False, False, False])
