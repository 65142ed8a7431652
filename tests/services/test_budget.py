"""The reuse budget: every verdict on a dataset is logged; past the policy's budget the verdict
warns or fails and the run lists the items no decision has seen (those of a newer version);
anytime-valid looks are not decisions."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.services.budget import decisions_summary
from assay.services.datasets import get_dataset, register_dataset
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import passthrough_onnx

CONFIG = ValidationConfig(profile=False, explore=False)


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = 460
    label = rng.choice(["bad", "good"], n)
    p = np.where(rng.uniform(size=n) < 0.9, np.where(label == "bad", 0.8, 0.2), 0.5)
    table = pa.table({"id": [f"i{k}" for k in range(n)], "s_bad": p, "s_good": 1 - p,
                      "torque": rng.normal(size=n), "label": label})  # fmt: skip
    pq.write_table(table.slice(0, 400), tmp_path / "v1.parquet")
    pq.write_table(table, tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "cable", tmp_path / "v1.parquet", id_column="id")
    register_dataset(ws, "cable", tmp_path / "v2.parquet", id_column="id")
    spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
            "input": {"kind": "tabular", "columns": ["s_bad", "s_good"]}}  # fmt: skip
    onnx = passthrough_onnx(tmp_path / "p.onnx", 2)
    register_model(ws, "m", onnx, spec)
    register_model(ws, "m", onnx, spec | {"threshold": 0.6})
    policy = {
        "checks": ["accuracy >= 0.5"],
        "reuse_budget": {"max_decisions": 2, "on_exceeded": "fail"},
    }
    return {"ws": ws, "policy": policy, "tmp": tmp_path}


def test_past_the_budget_the_verdict_fails_and_names_the_fresh_items(store: dict[str, Any]) -> None:
    ws, policy = store["ws"], store["policy"]
    for _ in range(2):
        out = validate(ws, "m@1", "cable@1", policy=policy, config=CONFIG)
        assert out.verdict_status == "pass"
    third = validate(ws, "m@2", "cable@1", policy=policy, config=CONFIG)
    assert third.result.verdict is not None
    check = next(c for c in third.result.verdict.checks if c.metric == "decisions_served")
    assert check.status == "fail" and "collect and label new ones" in check.reason
    assert third.result.reuse_budget["n_decisions_before"] == 2
    assert third.result.reuse_budget["n_fresh_items"] == 0
    # Version 2 holds version 1's items and 60 new ones: those are fresh.
    fourth = validate(ws, "m@2", "cable@2", policy=policy, config=CONFIG)
    doc = fourth.result.reuse_budget
    assert doc["n_decisions_before"] == 3 and doc["n_fresh_items"] == 60
    with (fourth.run_dir / "fresh_items.csv").open() as f:
        fresh = [row["item_id"] for row in csv.DictReader(f)]
    assert fresh == [f"i{k}" for k in range(400, 460)]
    assert fourth.blocking
    served = decisions_summary(ws, get_dataset(ws, "cable@2"))
    assert (served["n_on_version"], served["n_on_dataset"], served["n_models"]) == (1, 4, 2)


def test_comparisons_count_and_sequential_looks_do_not(store: dict[str, Any], capsys: Any) -> None:
    ws = store["ws"]
    a = validate(ws, "m@1", "cable@1", config=CONFIG).result.run_id
    b = validate(ws, "m@2", "cable@1", config=CONFIG).result.run_id
    home = str(store["tmp"] / "home")
    assert main(["compare", b, a, "--home", home, "--out", str(store["tmp"] / "c")]) in (0, 1)
    for _ in range(3):
        main(["compare", b, a, "--sequential", "--home", home])
    kinds = [d["kind"] for d in decisions_summary(ws, get_dataset(ws, "cable@1"))["latest"]]
    assert sorted(kinds) == ["comparison", "validation", "validation"]
    assert main(["dataset", "show", "cable@1", "--home", home]) == 0
    assert "decisions served: 3 on this version" in capsys.readouterr().out


def test_a_malformed_budget_is_refused(store: dict[str, Any]) -> None:
    bad = {"checks": ["accuracy >= 0.5"], "reuse_budget": {"max_decisions": 0}}
    with pytest.raises(InputError, match="max_decisions must be a positive"):
        validate(store["ws"], "m@1", "cable@1", policy=bad, config=CONFIG)


def test_a_copy_of_an_old_item_under_a_new_id_is_not_fresh(store: dict[str, Any]) -> None:
    """Fresh means new content: version 3 adds ten old rows under new ids and five new rows."""
    ws, tmp = store["ws"], store["tmp"]
    old = pq.read_table(tmp / "v2.parquet")
    copies = old.slice(0, 10).set_column(0, "id", pa.array([f"copy{k}" for k in range(10)]))
    rng = np.random.default_rng(5)
    new = old.slice(0, 5).set_column(0, "id", pa.array([f"new{k}" for k in range(5)]))
    new = new.set_column(
        new.schema.get_field_index("torque"), "torque", pa.array(rng.normal(size=5))
    )
    pq.write_table(pa.concat_tables([old, copies, new]), tmp / "v3.parquet")
    register_dataset(ws, "cable", tmp / "v3.parquet", id_column="id")
    policy = {"checks": ["accuracy >= 0.5"], "reuse_budget": {"max_decisions": 1}}
    validate(ws, "m@1", "cable@2", policy=policy, config=CONFIG)
    out = validate(ws, "m@1", "cable@3", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_fresh_items"] == 5


def test_a_new_metadata_column_does_not_make_old_items_fresh(store: dict[str, Any]) -> None:
    """Version 3 is version 2 plus a labelled_at column (which --sequential needs): every row's
    digest changed, and all 460 items served as 'fresh' for the release decision although eight
    decisions had seen them. Items are compared on the columns both versions have; a column
    dropped since does not make them fresh either, and a changed value still does."""
    ws, tmp = store["ws"], store["tmp"]
    old = pq.read_table(tmp / "v2.parquet")
    stamped = old.append_column("labelled_at", pa.array(np.arange(old.num_rows, dtype=float)))
    torque = stamped.schema.get_field_index("torque")
    changed = stamped.column("torque").to_numpy().copy()
    changed[:3] += 1.0  # three items measured anew: new content
    stamped = stamped.set_column(torque, "torque", pa.array(changed))
    pq.write_table(stamped, tmp / "v3.parquet")
    register_dataset(ws, "cable", tmp / "v3.parquet", id_column="id")
    policy = {"checks": ["accuracy >= 0.5"], "reuse_budget": {"max_decisions": 1}}
    validate(ws, "m@1", "cable@2", policy=policy, config=CONFIG)
    out = validate(ws, "m@1", "cable@3", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_fresh_items"] == 3
    with open(out.run_dir / "fresh_items.csv") as f:
        assert [r["item_id"] for r in csv.DictReader(f)] == ["i0", "i1", "i2"]
    pq.write_table(stamped.drop_columns(["torque"]), tmp / "v4.parquet")  # a sensor dropped
    register_dataset(ws, "cable", tmp / "v4.parquet", id_column="id")
    out = validate(ws, "m@1", "cable@4", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_fresh_items"] == 0


def test_an_experts_changed_label_does_not_make_an_item_fresh(tmp_path: Path) -> None:
    """Several experts per item (label_<name> columns): version 2 only changes expert b's label
    on 30 items, and those 30 were listed as fresh, a way round the budget."""
    rng = np.random.default_rng(2)
    n = 200
    p = rng.uniform(size=n)
    a = np.where(p > 0.5, "bad", "good")
    b = a.copy()
    table = pa.table({"id": [f"i{k}" for k in range(n)], "s_bad": p, "s_good": 1 - p,
                      "label_a": a, "label_b": b})  # fmt: skip
    pq.write_table(table, tmp_path / "v1.parquet")
    changed = b.copy()
    changed[:30] = np.where(b[:30] == "bad", "good", "bad")
    pq.write_table(table.set_column(4, "label_b", pa.array(changed)), tmp_path / "v2.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "exp", tmp_path / "v1.parquet", id_column="id")
    register_dataset(ws, "exp", tmp_path / "v2.parquet", id_column="id")
    spec = {"labels": ["bad", "good"], "output": {"name": "probabilities"},
            "input": {"kind": "tabular", "columns": ["s_bad", "s_good"]}}  # fmt: skip
    register_model(ws, "m", passthrough_onnx(tmp_path / "p.onnx", 2), spec)
    policy = {"checks": ["accuracy >= 0.5"], "reuse_budget": {"max_decisions": 1}}
    validate(ws, "m@1", "exp@1", policy=policy, config=CONFIG)
    out = validate(ws, "m@1", "exp@2", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_fresh_items"] == 0
    ws.close()


def test_the_same_file_under_another_name_carries_its_decisions(store: dict[str, Any]) -> None:
    """A review registered version 2's file again as ``cable-renamed`` and its budget started
    at 0 decisions: the budget follows the content, not the name."""
    ws, tmp, policy = store["ws"], store["tmp"], store["policy"]
    for model in ("m@1", "m@2"):
        validate(ws, model, "cable@1", policy=policy, config=CONFIG)
    register_dataset(ws, "cable-renamed", tmp / "v2.parquet", id_column="id")
    out = validate(ws, "m@1", "cable-renamed", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_decisions_before"] == 2 and out.blocking
    assert out.result.reuse_budget["n_fresh_items"] == 60  # those cable@1 lacks
    served = decisions_summary(ws, get_dataset(ws, "cable"))
    assert served["n_on_dataset"] == 3


def test_a_copy_with_a_row_dropped_under_another_name_carries_its_decisions(
    store: dict[str, Any],
) -> None:
    """A review dropped one row of a set that had served its budget and registered the rest
    under a new name: 0 decisions, PASS. Names holding half this version's items by content
    count with the budget's check."""
    ws, tmp, policy = store["ws"], store["tmp"], store["policy"]
    for model in ("m@1", "m@2"):
        validate(ws, model, "cable@1", policy=policy, config=CONFIG)
    pq.write_table(pq.read_table(tmp / "v1.parquet").slice(1), tmp / "minus.parquet")
    register_dataset(ws, "cable-minus", tmp / "minus.parquet", id_column="id")
    out = validate(ws, "m@1", "cable-minus", policy=policy, config=CONFIG)
    assert out.result.reuse_budget["n_decisions_before"] == 2 and out.blocking
    # The dataset's page counts decisions by name and identical content only (cheap to show).
    assert decisions_summary(ws, get_dataset(ws, "cable-minus"))["n_on_dataset"] == 1


def test_a_copy_with_its_columns_reordered_or_one_added_carries_its_decisions(
    store: dict[str, Any],
) -> None:
    """Review 3: the same rows with the columns in another order, or with a column added,
    under a new name, started from 0 decisions (the stored digest covers every column in the
    file's order). Rows are matched on the columns both hold, in one order."""
    ws, tmp, policy = store["ws"], store["tmp"], store["policy"]
    for model in ("m@1", "m@2"):
        validate(ws, model, "cable@1", policy=policy, config=CONFIG)
    v1 = pq.read_table(tmp / "v1.parquet")
    pq.write_table(v1.select(list(reversed(v1.column_names))), tmp / "reordered.parquet")
    pq.write_table(v1.append_column("site", pa.array(["A"] * v1.num_rows)), tmp / "plus.parquet")
    for name in ("reordered", "plus"):
        register_dataset(ws, f"cable-{name}", tmp / f"{name}.parquet", id_column="id")
        out = validate(ws, "m@1", f"cable-{name}", policy=policy, config=CONFIG)
        assert out.result.reuse_budget["n_decisions_before"] >= 2 and out.blocking, name
