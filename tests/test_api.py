"""The public Python API: what a notebook user imports, and what it returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import assay
from tests.models import fit_logistic, passthrough_onnx, tabular_onnx, write_spec


def test_public_names_are_exactly_the_curated_ones() -> None:
    assert sorted(assay.__all__) == sorted(
        [
            "AssayError",
            "History",
            "InputError",
            "Validation",
            "ValidationConfig",
            "ValidationResult",
            "add_dataset",
            "add_model",
            "compare",
            "history",
            "list_datasets",
            "list_models",
            "list_runs",
            "validate",
        ]
    )
    assert all(callable(getattr(assay, name)) for name in assay.__all__)


def test_notebook_flow_with_a_scikit_learn_skops_model(tmp_path: Path) -> None:
    import skops.io as sio

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    y = np.where(x[:, 0] > 0.2, "defect", "ok")
    csv = tmp_path / "t.csv"
    csv.write_text(
        "a,b,label\n" + "".join(f"{p:.5f},{q:.5f},{v}\n" for (p, q), v in zip(x, y, strict=True))
    )
    sio.dump(fit_logistic(x.astype(np.float32), y), tmp_path / "m.skops")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    dataset = assay.add_dataset("t", csv, home=home)
    model = assay.add_model("m", tmp_path / "m.skops", spec=spec, home=home)
    assert (dataset.ref, model.ref, model.runtime) == ("t@1", "m@1", "sklearn")
    # One line in a notebook, not every column (SECOM's printed 20 kB; a review).
    assert repr(dataset).startswith("<DatasetVersion t@1 (tabular") and "400 items" in repr(dataset)
    v = assay.validate(
        model="m", dataset="t", home=home, config=assay.ValidationConfig(n_resamples=200)
    )
    assert v.result.n_items == 400
    accuracy = v.metrics["accuracy"]
    cm = np.asarray(v.result.confusion_matrix)
    assert accuracy.value == pytest.approx(np.trace(cm) / cm.sum())
    assert accuracy.ci_low is not None and accuracy.ci_high is not None
    assert accuracy.ci_low <= accuracy.value <= accuracy.ci_high
    html = v._repr_html_()
    assert "m@1" in html and "accuracy" in html and str(v.files["report.html"]) in html
    assert v.passed and 'class="banner pass"' in html and ">PASS<" in html
    # A production model, trained on half the items, whose run is then reused as the baseline.
    sio.dump(fit_logistic(x[:200].astype(np.float32), y[:200]), tmp_path / "p.skops")
    assay.add_model("prod", tmp_path / "p.skops", spec=spec, home=home)
    assay.validate(model="prod", dataset="t", home=home)
    compared = assay.validate(
        model="m", dataset="t", baseline="prod", home=home, policy={"checks": ["accuracy >= 0.999"]}
    )
    assert not compared.passed
    assert (
        compared.result.comparison is not None and compared.result.comparison["baseline"]["reused"]
    )


def test_a_mistyped_store_or_reference_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a review: validate(home=<a typo>) made an empty store there, then said the model
    was not found; validate(model=123) raised AttributeError from deep inside."""
    nowhere = tmp_path / "nohome"
    with pytest.raises(assay.InputError, match="no Assay store at"):
        assay.validate(model="m", dataset="t", home=nowhere)
    assert not nowhere.exists()
    home = tmp_path / "home"
    csv = tmp_path / "t.csv"
    csv.write_text("a,label\n1,ok\n2,bad\n")
    assay.add_dataset("t", csv, home=home)
    for bad in ({"model": 123, "dataset": "t"}, {"model": "m", "dataset": ""}):
        with pytest.raises(assay.InputError, match="is a name like"):
            assay.validate(**bad, home=home)  # type: ignore[arg-type]
    # With the catalog in a database server the folder must exist all the same (a review).
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with monkeypatch.context() as m:
        m.setenv("ASSAY_DATABASE_URL", url)
        with pytest.raises(assay.InputError, match="no Assay store at"):
            assay.validate(model="m", dataset="t", home=nowhere)
    assert not nowhere.exists()
    # A store whose catalog was lost is pointed at its backup, not told to start afresh.
    (home / "catalog.db").unlink()
    with pytest.raises(assay.InputError, match="assay store restore"):
        assay.validate(model="m", dataset="t", home=home)


def test_bad_config_is_an_input_error() -> None:
    with pytest.raises(assay.InputError, match="confidence"):
        assay.ValidationConfig(confidence=1.5)


def test_a_config_mapping_and_a_slice_string_are_taken_as_meant(tmp_path: Path) -> None:
    """A review: config={"engine": ...} raised AttributeError deep inside, and slices="line" was
    read one character at a time ("slice column 'l' is not in the dataset")."""
    home = tmp_path / "home"
    csv = tmp_path / "t.csv"
    csv.write_text("s0,s1,line,label\n" + "0.9,0.1,L1,a\n0.2,0.8,L2,b\n" * 20)
    assay.add_dataset("t", csv, home=home)
    spec = write_spec(tmp_path / "m.yaml", labels=["a", "b"], output={"name": "probabilities"},
                      input={"kind": "tabular", "columns": ["s0", "s1"]})  # fmt: skip
    assay.add_model("m", passthrough_onnx(tmp_path / "m.onnx", 2), spec=spec, home=home)
    v = assay.validate(model="m", dataset="t", home=home, slices="line",
                       config={"profile": False, "explore": False, "n_resamples": 100})  # fmt: skip
    assert v.result.config["n_resamples"] == 100
    assert [s["slice"] for s in v.result.to_dict()["slices"]] == ["line = L1", "line = L2"]
    with pytest.raises(assay.InputError, match=r"unknown field 'explor'.*did you mean 'explore'"):
        assay.validate(model="m", dataset="t", home=home, config={"explor": False})
    with pytest.raises(assay.InputError, match="config is a ValidationConfig"):
        assay.validate(model="m", dataset="t", home=home, config=3)  # type: ignore[arg-type]
    with pytest.raises(assay.InputError, match="slices is a list"):
        assay.validate(model="m", dataset="t", home=home, slices=[1])  # type: ignore[arg-type]


def test_no_explore_skips_error_slices_and_doubtful_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 2))
    y = np.where(x[:, 0] > 0, "defect", "ok")
    csv = tmp_path / "t.csv"
    csv.write_text(
        "a,b,label\n" + "".join(f"{p:.5f},{q:.5f},{v}\n" for (p, q), v in zip(x, y, strict=True))
    )
    onnx = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    assay.add_dataset("t", csv, home=home)
    assay.add_model("m", onnx, spec=spec, home=home)
    quick = assay.validate(
        model="m", dataset="t", home=home, config=assay.ValidationConfig(explore=False)
    )
    assert quick.result.doubtful_labels is None and quick.result.error_slice_search is None
    full = assay.validate(model="m", dataset="t", home=home)
    assert full.result.error_slice_search is not None and full.result.doubtful_labels is not None
    assert full.result.error_slice_search["n_items"] == full.result.n_judged
    assert full.result.error_slice_search["method"].startswith("split-sample")
    # Where the time went: the exploration is timed, and within the run's total.
    timings = full.result.timings
    assert 0 < timings["slice_search_s"] <= timings["explore_s"] < timings["total_s"]
    assert timings["sidecar_wait_s"] >= 0 and "explore_s" not in quick.result.timings
    assert quick.result.timings["total_s"] > quick.result.timings["engine_s"]


def test_arguments_of_the_wrong_type_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A review: a DataFrame as a dataset's path, a fitted model as a model file, a number as a
    column name, an --out or policy of 5, and overwrite="no" (truthy: it overwrote) raised
    TypeError or AttributeError from deep inside, or did the wrong thing."""
    import pandas as pd

    home = tmp_path / "home"
    cases = [
        (lambda: assay.add_dataset("t", pd.DataFrame({"a": [1]}), home=home), "to_parquet"),
        (lambda: assay.add_dataset("t", None, home=home), "path is a path"),  # type: ignore[arg-type]
        (lambda: assay.add_dataset("t", tmp_path, label_column=5, home=home), "label_column"),  # type: ignore[arg-type]
        (lambda: assay.add_dataset("t", tmp_path, id_column=["id"], home=home), "id_column"),  # type: ignore[arg-type]
        (lambda: assay.add_dataset("t", tmp_path, home=5), "home is a path"),  # type: ignore[arg-type]
        (lambda: assay.add_model("m", object(), spec={}, home=home), "skops.io.dump"),  # type: ignore[arg-type]
        (lambda: assay.add_model("m", tmp_path / "m.onnx", spec=3, home=home), "spec is a path"),  # type: ignore[arg-type]
        (lambda: assay.validate(model="m", dataset="t", out=5, home=home), "out is a path"),  # type: ignore[arg-type]
        (lambda: assay.validate(model="m", dataset="t", policy=[1], home=home), "policy"),  # type: ignore[arg-type]
        (lambda: assay.validate(model="m", dataset="t", overwrite="no", home=home), "overwrite"),  # type: ignore[arg-type]
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(assay.InputError, match=message):
            call()


def test_yaml_text_given_as_a_spec_path_says_so(tmp_path: Path) -> None:
    """A review: spec="task: classification..." said "spec file does not exist: task: ..."."""
    with pytest.raises(assay.InputError, match="reads as YAML text: pass the mapping"):
        assay.add_model("m", passthrough_onnx(tmp_path / "m.onnx", 2), spec="labels: [a, b]\n",
                        home=tmp_path / "h")  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"confidence": "high"}, "config: confidence is float, got 'high'"),
        ({"seed": None}, "config: seed is int, got None"),
        ({"threads": "x"}, "config: threads is int or None, got 'x'"),
        ({"n_resamples": True}, "config: n_resamples is int, got True"),
    ],
)
def test_a_config_field_of_another_kind_is_named(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    """A review: {"confidence": "high"} said "'<=' not supported between instances of 'float'
    and 'str'"; a bool passed for a count was taken as 1."""
    with pytest.raises(assay.InputError, match=message):
        assay.validate(model="m", dataset="t", config=config, home=tmp_path / "h")


def test_runs_compare_and_history_are_the_cli_s(tmp_path: Path) -> None:
    """A notebook could validate but not list runs, compare two or read the item history (a
    review: only the CLI could). Each gives what the CLI's service gives."""
    from assay.services.history import item_history
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 2))
    y = np.where(x[:, 0] + rng.normal(scale=0.7, size=300) > 0, "defect", "ok")
    csv = tmp_path / "t.csv"
    csv.write_text(
        "a,b,label\n" + "".join(f"{p:.5f},{q:.5f},{v}\n" for (p, q), v in zip(x, y, strict=True))
    )
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["a", "b"]},
    )
    home = tmp_path / "home"
    assay.add_dataset("t", csv, home=home)
    for k, n in enumerate((60, 300)):
        onnx = tabular_onnx(
            fit_logistic(x[:n].astype(np.float32), y[:n]), 2, tmp_path / f"{k}.onnx"
        )
        assay.add_model("m", onnx, spec=spec, home=home)
    config = {"profile": False, "n_resamples": 200}
    first = assay.validate(model="m@1", dataset="t", home=home, config=config)
    second = assay.validate(model="m@2", dataset="t", home=home, config=config)
    listed = assay.list_runs(home=home)
    assert [r["id"] for r in listed] == [second.result.run_id, first.result.run_id]
    assert [r["id"] for r in assay.list_runs(model="m@1", home=home)] == [first.result.run_id]
    assert [d.ref for d in assay.list_datasets(home=home)] == ["t@1"]
    assert [m.ref for m in assay.list_models(home=home)] == ["m@1", "m@2"]
    compared = assay.compare(
        candidate=second.result.run_id, baseline=first.result.run_id, home=home,
        policy={"checks": ["accuracy >= 0.5"]},
    )  # fmt: skip
    assert compared.result.comparison is not None
    assert compared.result.comparison["baseline"]["run_id"] == first.result.run_id
    found = assay.history("t", home=home)
    ws = Workspace.open(home, create=False)
    assert found.summary == item_history(ws, "t").summary()
    table = found.table()
    assert table.num_rows == 300 and table.column_names[:4] == [
        "item_id", "label", "outcome:m@1", "predicted:m@1"]  # fmt: skip
    assert "candidate m@2 breaks" in repr(found)
    with pytest.raises(assay.InputError, match="limit"):
        assay.history("t", home=home, limit=-1)
    with pytest.raises(assay.InputError, match="give its name"):
        assay.history("t@1", home=home)
    with pytest.raises(assay.InputError, match="compare two different runs"):
        assay.compare(candidate=first.result.run_id, baseline=first.result.run_id, home=home)


def test_a_spec_mapping_takes_numpy_arrays_and_tuples_as_lists(tmp_path: Path) -> None:
    """A review: ``labels=model.classes_`` (a numpy array), a tuple or ``df.columns`` (a pandas
    Index) was refused as 'must be a list'."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 2)).astype(np.float32)
    y = np.where(x[:, 0] > 0, "defect", "ok")
    fitted = fit_logistic(x, y)
    onnx = tabular_onnx(fitted, 2, tmp_path / "m.onnx")
    import pandas as pd

    spec = {"labels": fitted.classes_, "input": {"kind": "tabular",
            "columns": pd.Index(["a", "b"])}, "threshold": np.float64(0.5)}  # fmt: skip
    model = assay.add_model("m", onnx, spec=spec, home=tmp_path / "home")
    assert model.spec["labels"] == ["defect", "ok"]
    assert model.spec["input"]["columns"] == ["a", "b"]
