"""Runtime adapters: the same contract for ONNX, scikit-learn (skops) and the fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.core.errors import InputError
from assay.core.ports import ModelBatch
from assay.core.spec import parse_model_spec
from assay.runtimes import load_model
from assay.runtimes.fake import FakeRuntime
from tests.models import fit_logistic, tabular_onnx

COLUMNS = ["Torque [Nm]", "speed", "temp"]


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "defect", "ok")
    return fit_logistic(x, y), x


def spec(labels: list[str] | None = None, columns: list[str] | None = None) -> Any:
    return parse_model_spec(
        {
            "labels": labels or ["defect", "ok"],
            "input": {"kind": "tabular", "columns": columns or COLUMNS},
        }
    )


@pytest.fixture(scope="module")
def onnx_path(fitted: tuple[Any, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tabular_onnx(fitted[0], 3, tmp_path_factory.mktemp("m") / "model.onnx")


@pytest.fixture(scope="module")
def skops_path(fitted: tuple[Any, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio

    path = tmp_path_factory.mktemp("m") / "model.skops"
    sio.dump(fitted[0], path)
    return path


@pytest.mark.parametrize("kind", ["onnx", "sklearn", "fake"])
def test_runtime_predicts_what_scikit_learn_predicts(
    kind: str, fitted: tuple[Any, np.ndarray], onnx_path: Path, skops_path: Path
) -> None:
    """One contract for every runtime, the test double included: the reference's scores for
    every item, in batches of any size, and a signature that names one input and one output."""
    model, x = fitted
    runtime = (
        FakeRuntime(model.predict_proba)
        if kind == "fake"
        else load_model(onnx_path if kind == "onnx" else skops_path, spec())
    )
    np.testing.assert_allclose(runtime.predict(ModelBatch.of(x)), model.predict_proba(x), atol=1e-5)
    np.testing.assert_allclose(
        runtime.predict(ModelBatch.of(x[:1])), model.predict_proba(x[:1]), atol=1e-5
    )
    assert len(runtime.signature.inputs) == 1


def test_onnx_spec_with_wrong_column_count_names_both_sides(onnx_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"model input 'features' has shape \[None, 3\] but the spec produces \[N, 2\]",
    ):
        load_model(onnx_path, spec(columns=["a", "b"]))


def test_onnx_spec_with_wrong_label_count_names_both_sides(onnx_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"shape \[2, 2\] for 2 items, but the spec lists 3 labels"
    ):
        load_model(onnx_path, spec(labels=["a", "b", "c"]))


def test_onnx_unknown_output_name_lists_the_model_outputs(onnx_path: Path) -> None:
    s = parse_model_spec(
        {
            "labels": ["defect", "ok"],
            "input": {"kind": "tabular", "columns": COLUMNS},
            "output": {"name": "scores"},
        }
    )
    with pytest.raises(
        InputError, match=r"not a model output \(model outputs: \['label', 'probabilities'\]\)"
    ):
        load_model(onnx_path, s)


def test_image_spec_against_tabular_model_is_refused(onnx_path: Path) -> None:
    s = parse_model_spec(
        {
            "labels": ["defect", "ok"],
            "input": {"kind": "image", "size": [8, 8], "color": "grayscale"},
        }
    )
    with pytest.raises(InputError, match=r"4 dims|shape"):
        load_model(onnx_path, s)


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"definitely not protobuf")
    with pytest.raises(InputError, match=r"junk\.onnx is not a valid ONNX model"):
        load_model(bad, spec())
    with pytest.raises(InputError, match=r"unsupported model format \.pkl"):
        load_model(tmp_path / "model.pkl", spec())


def test_skops_classes_must_match_the_spec_labels(skops_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"model classes \['defect', 'ok'\] differ from the spec's labels \['ok', 'defect'\]",
    ):
        load_model(skops_path, spec(labels=["ok", "defect"]))


def test_a_model_loaded_for_a_pass_does_not_busy_wait_and_predicts_the_same(
    onnx_path: Path, fitted: tuple[Any, np.ndarray]
) -> None:
    x = fitted[1][:64].astype(np.float32)
    measured = load_model(onnx_path, spec())  # the profile: the runtime's defaults
    shared = load_model(onnx_path, spec(), spin=False)  # a validation's pass
    entry = "session.intra_op.allow_spinning"
    assert shared.session.get_session_options().get_session_config_entry(entry) == "0"  # type: ignore[attr-defined]
    # The runtime's default: the entry is absent (onnxruntime spins).
    with pytest.raises(RuntimeError, match="does not have configuration"):
        measured.session.get_session_options().get_session_config_entry(entry)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(
        shared.predict(ModelBatch.of(x)), measured.predict(ModelBatch.of(x))
    )


def test_an_onnx_model_with_external_weights_is_stored_as_one_file(tmp_path: Path) -> None:
    """MLflow and large exports keep weights in files beside the .onnx; the store keeps one
    file per model, so registration joins them (before: the stored copy had no weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    split = tmp_path / "split" / "model.onnx"
    split.parent.mkdir()
    onnx.save_model(
        model, str(split), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    assert (split.parent / "weights.bin").is_file()
    ws = Workspace.open(tmp_path / "home")
    registered = register_model(ws, "split", split, spec().to_dict())
    runtime = load_model(Path(registered.model.file_path), spec())
    x = rng.normal(size=(20, 3)).astype(np.float32)
    logits = x @ w + b
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(runtime.predict(ModelBatch.of(x)), expected, atol=1e-5)
    ws.close()


def _constant_model(path: Path, location: str, length: int = 2) -> None:
    """An ONNX whose scores come from a Constant node (not an initializer) holding ``length``
    bytes of external data at ``location``: each item's two scores are those bytes."""
    from onnx import TensorProto, helper

    data = TensorProto(name="leak", data_type=TensorProto.UINT8, dims=[length])
    data.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = data.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["leak"], value=data),
            helper.make_node("Cast", ["leak"], ["row"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=1, axes=[1]),
            helper.make_node("Mul", ["s", "zero"], ["z"]),
            helper.make_node("Add", ["z", "row"], ["probabilities"]),
        ],
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_external_data_anywhere_in_an_onnx_model_is_joined_or_refused(tmp_path: Path) -> None:
    """A review: a Constant node's external data was not joined (only initializers were), so an
    upload named like a stored model (``<digest>.onnx``), reading its own bytes at
    registration, read the other model's file in the store at run time and gave its bytes
    back as scores. Every tensor is joined now, and a stored file still pointing out of
    itself (a model registered before) is refused when it loads."""
    from assay.runtimes.onnx_files import check_self_contained
    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(bytes([7, 9]))
    _constant_model(folder / "m.onnx", "weights.bin")
    ws = Workspace.open(tmp_path / "home")
    stored = Path(register_model(ws, "m", folder / "m.onnx", spec().to_dict()).model.file_path)
    check_self_contained(stored)  # joined: nothing outside it
    (folder / "weights.bin").write_bytes(bytes([1, 1]))  # the file beside it no longer counts
    scores = load_model(stored, spec()).predict(ModelBatch.of(np.zeros((1, 3), np.float32)))
    np.testing.assert_array_equal(scores, [[7.0, 9.0]])

    # A store's file that reads another file (as registered before this fix): refused.
    (stored.parent / "other.bin").write_bytes(bytes([3, 4]))
    _constant_model(stored.parent / "old.onnx", "other.bin")
    with pytest.raises(InputError, match="reads tensor 'leak' from an external file"):
        load_model(stored.parent / "old.onnx", spec())

    # OpenVINO reads an .onnx's external data too (a review of this fix: registered with the
    # openvino runtime, the file was stored unjoined and scored a neighbouring file's bytes).
    pytest.importorskip("openvino")
    as_ir = register_model(ws, "ov", folder / "m.onnx", spec().to_dict(), runtime="openvino")
    assert as_ir.model.runtime == "openvino"
    check_self_contained(Path(as_ir.model.file_path))
    with pytest.raises(InputError, match="reads tensor 'leak' from an external file"):
        load_model(stored.parent / "old.onnx", spec(), "openvino")
    ws.close()


def test_onnx_classes_in_another_order_than_the_spec_are_refused_at_registration(
    tmp_path: Path,
) -> None:
    """skl2onnx writes the classifier's classes into the graph; a spec listing the same classes
    in another order read every score as the wrong class (accuracy 0.011 instead of 0.932),
    silently. Registration now refuses it, naming the model's order."""
    from sklearn.linear_model import LogisticRegression

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2)).astype(np.float32)
    y = np.array(["ball", "inner", "normal", "outer"])[(x[:, 0] > 0) * 2 + (x[:, 1] > 0)]
    onnx = tabular_onnx(LogisticRegression().fit(x, y), 2, tmp_path / "m.onnx")
    ws = Workspace.open(tmp_path / "home")
    inp = {"kind": "tabular", "columns": ["a", "b"]}
    with pytest.raises(InputError, match=r"\['ball', 'inner', 'normal', 'outer'\]"):
        register_model(
            ws, "m", onnx, {"labels": ["normal", "outer", "inner", "ball"], "input": inp}
        )
    assert register_model(ws, "m", onnx, {"labels": ["ball", "inner", "normal", "outer"],
                                          "input": inp}).created  # fmt: skip
    ints = tabular_onnx(LogisticRegression().fit(x, np.where(x[:, 0] > 0, 1, -1)), 2,
                        tmp_path / "i.onnx")  # fmt: skip
    with pytest.raises(InputError, match=r"\['-1', '1'\]"):
        register_model(ws, "i", ints, {"labels": ["1", "-1"], "input": inp})
    ws.close()


def test_a_one_column_binary_output_has_no_class_order_to_check(tmp_path: Path) -> None:
    """A binary model giving one column, P(defect), listed as [ok, defect] with positive:
    defect, was refused ('every score would be read as another class's'), which was false: a
    single score has no order. It is accepted, and judged as the positive class's score."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.linear_model import LogisticRegression

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = np.where(x[:, 0] > 0, "defect", "ok")
    path = tabular_onnx(LogisticRegression().fit(x, y), 2, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    probabilities = next(o.name for o in model.graph.output if o.name != "label")
    model.graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "first"))
    model.graph.node.append(
        helper.make_node("Gather", [probabilities, "first"], ["p_defect"], axis=1)
    )
    model.graph.output.append(
        helper.make_tensor_value_info("p_defect", TensorProto.FLOAT, [None, 1])
    )
    path.write_bytes(model.SerializeToString())
    ws = Workspace.open(tmp_path / "home")
    spec = {"labels": ["ok", "defect"], "positive": "defect", "output": {"name": "p_defect"},
            "input": {"kind": "tabular", "columns": ["a", "b"]}}  # fmt: skip
    assert register_model(ws, "one", path, spec).created
    ws.close()


def test_an_mlp_whose_classes_the_spec_lists_in_another_order_is_refused(tmp_path: Path) -> None:
    """From a review: skl2onnx keeps an MLP's classes in a constant, not in a classifier node,
    so a reversed spec was accepted and every score read as the other class's (accuracy 0.017,
    no warning). The graph's own class output, against the spec's argmax, tells."""
    from sklearn.neural_network import MLPClassifier

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    inp = {"kind": "tabular", "columns": ["a", "b"]}
    ws = Workspace.open(tmp_path / "home")
    for classes in (["bad", "good"], ["ball", "inner", "outer"], ["false", "true"]):
        y = np.array(classes)[np.digitize(x[:, 0], [-0.4, 0.4][: len(classes) - 1])]
        if classes[0] == "false":  # fitted on booleans: its class output gives 0 and 1
            y = y == "true"
        mlp = MLPClassifier((8,), max_iter=3000, random_state=0).fit(x, y)
        path = tabular_onnx(mlp, 2, tmp_path / f"{len(classes)}.onnx")
        swapped = [classes[1], classes[0], *classes[2:]]
        with pytest.raises(InputError, match="own class output 'label'"):
            register_model(ws, f"m{len(classes)}", path, {"labels": swapped, "input": inp})
        assert register_model(ws, f"m{len(classes)}", path, {"labels": classes,
                                                             "input": inp}).created  # fmt: skip
    ws.close()


@pytest.mark.parametrize("kind", ["classifier node", "mlp"])
def test_classes_written_otherwise_in_another_order_are_a_swap(tmp_path: Path, kind: str) -> None:
    """A review: a model whose classes are ['Defect', 'Good'] registered with the spec [good,
    defect], and one fitted on floats (0.0, 1.0) with [1.0, 0.0], were let through as 'other
    names' and every score was read as the other class's (accuracy 0.07). Compared as a spec
    and a model both mean them (case and number spelling aside), they are a swap; in the
    model's order they are accepted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    inp = {"kind": "tabular", "columns": ["a", "b"]}
    ws = Workspace.open(tmp_path / "home")
    for model_classes, swapped, ordered in (
        (np.array(["Defect", "Good"]), ["good", "defect"], ["defect", "good"]),
        (np.array([0.0, 1.0]), ["1.0", "0.0"], ["0", "1"]),
        (np.array(["A", "a"]), ["a", "A"], ["A", "a"]),
    ):
        y = model_classes[(x[:, 0] > 0).astype(int)]
        fitted = (
            MLPClassifier((8,), max_iter=3000, random_state=0).fit(x, y)
            if kind == "mlp"
            else LogisticRegression().fit(x, y)
        )
        path = tabular_onnx(fitted, 2, tmp_path / f"{ordered[0]}.onnx")
        with pytest.raises(InputError, match="every score would be read as another class's"):
            register_model(ws, f"m{ordered[0]}", path, {"labels": swapped, "input": inp})
        assert register_model(ws, f"m{ordered[0]}", path, {"labels": ordered,
                                                          "input": inp}).created  # fmt: skip
    ws.close()


def test_a_skops_model_fitted_on_floats_or_booleans_takes_the_labels_a_table_reads(
    tmp_path: Path,
) -> None:
    """A review: a model fitted on a float label column (classes_ 0.0, 1.0) registered only as
    [0.0, 1.0], while the table's float labels read 0 and 1: validate refused the one spec,
    model add the other. Its classes are matched with the spec's as both mean them."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    inp = {"kind": "tabular", "columns": ["a", "b"]}
    ws = Workspace.open(tmp_path / "home")
    for y, labels, swapped in (
        ((x[:, 0] > 0).astype(float), ["0", "1"], ["1", "0"]),
        (x[:, 0] > 0, ["false", "true"], ["true", "false"]),
        # Two classes one key apart: compared as written (a review: a key hid this swap).
        (np.where(x[:, 0] > 0, "a", "A"), ["A", "a"], ["a", "A"]),
    ):
        path = tmp_path / f"{labels[0]}.skops"
        sio.dump(LogisticRegression().fit(x, y), path)
        assert register_model(ws, f"m{labels[0]}", path, {"labels": labels, "input": inp}).created
        with pytest.raises(InputError, match="differ from the spec's labels"):
            register_model(ws, f"s{labels[0]}", path, {"labels": swapped, "input": inp})
    ws.close()


@pytest.mark.parametrize("threshold", [0.2, 0.8])
def test_a_class_output_that_decides_by_another_rule_is_no_class_order(
    tmp_path: Path, threshold: float
) -> None:
    """A graph whose class output applies a threshold of its own (not the argmax) gives some
    items another class than the largest score: that is no swapped order, and is accepted
    (a review's 0.2, whose test items showed one direction only, was refused)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    w = numpy_helper.from_array(np.array([[1.0, -1.0], [0.0, 0.0]], np.float32), "w")
    cut = numpy_helper.from_array(np.array([threshold], np.float32), "cut")
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["z"]),
            helper.make_node("Softmax", ["z"], ["p"], axis=1),
            helper.make_node("Gather", ["p", "one"], ["p1"], axis=1),
            helper.make_node("Greater", ["p1", "cut"], ["over"]),
            helper.make_node("Cast", ["over"], ["flag"], to=TensorProto.INT64),
            helper.make_node("Flatten", ["flag"], ["flat"], axis=0),
            helper.make_node("Squeeze", ["flat", "zero"], ["label"]),
        ],
        "thresholded",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        ],
        [w, cut, one, numpy_helper.from_array(np.array([0], np.int64), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "t.onnx"
    path.write_bytes(model.SerializeToString())
    onnx.checker.check_model(str(path))
    ws = Workspace.open(tmp_path / "home")
    spec = {"labels": ["0", "1"], "output": {"name": "p"},
            "input": {"kind": "tabular", "columns": ["a", "b"]}}  # fmt: skip
    assert register_model(ws, "t", path, spec).created
    ws.close()


def test_a_scikit_learn_model_fitted_on_a_table_names_its_own_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer: SECOM's 590 columns had to be written out in the spec. A scikit-learn model
    fitted on a table knows them (feature_names_in_): a spec may leave input.columns out, and
    the stored spec holds them, in the model's order. Any other model still needs them."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from assay.cli.main import main
    from assay.services.models import register_model
    from assay.services.workspace import Workspace

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["s2", "s0", "s1"])
    y = np.where(frame["s0"] > 0, "defect", "ok")
    sio.dump(LogisticRegression().fit(frame, y), tmp_path / "named.skops")
    sio.dump(LogisticRegression().fit(frame.to_numpy(), y), tmp_path / "bare.skops")
    unnamed = {"labels": ["defect", "ok"], "input": {"kind": "tabular"}}
    ws = Workspace.open(tmp_path / "home")
    try:
        stored = register_model(ws, "named", tmp_path / "named.skops", unnamed).model
        assert stored.spec["input"]["columns"] == ["s2", "s0", "s1"]
        with pytest.raises(InputError, match="not fitted on a table with column names"):
            register_model(ws, "bare", tmp_path / "bare.skops", unnamed)
        onnx = tabular_onnx(LogisticRegression().fit(frame.to_numpy(), y), 3, tmp_path / "m.onnx")
        with pytest.raises(InputError, match=r"input\.columns is required for this model"):
            register_model(ws, "onnx", onnx, unnamed)
    finally:
        ws.close()
    table = frame.assign(label=y)
    table.to_parquet(tmp_path / "t.parquet")
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "t", str(tmp_path / "t.parquet"), "--home", home]) == 0
    capsys.readouterr()
    code = main(["validate", "--model", "named", "--dataset", "t", "--no-profile",
                 "--no-explore", "--home", home])  # fmt: skip
    assert code in (0, 1), capsys.readouterr().err
