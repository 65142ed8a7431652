"""Dataset readers and versions: folders, manifests, tables, detection, digests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import ReadOptions, detect_reader, readers
from assay.services.datasets import register_dataset
from assay.services.workspace import Workspace


def make_image(path: Path, value: int, size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8), mode="L").save(path)
    return path


def make_class_folders(root: Path) -> Path:
    for label in ("good", "defect"):
        for i in range(3):
            make_image(root / label / f"img_{i}.png", 40 * i + (0 if label == "good" else 100))
    make_image(root / "defect" / "nested" / "deep.png", 7)
    (root / "defect" / "notes.csv").write_text("a,b\n1,2\n")
    (root / "README.md").write_text("stray readme\n")
    (root / "good" / ".hidden.png").write_bytes(b"x")
    return root


def read_all(source_batches) -> pa.Table:  # type: ignore[no-untyped-def]
    return pa.Table.from_batches(list(source_batches()))


def test_folder_reader_uses_posix_relative_ids_and_ignores_non_images(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "tiles")
    reader = detect_reader(root)
    assert reader.name == "image-folder"
    source = reader.open(root, ReadOptions())
    table = read_all(source.batches)
    ids = table.column(cols.ITEM_ID).to_pylist()
    assert sorted(ids) == sorted(
        [
            "defect/img_0.png",
            "defect/img_1.png",
            "defect/img_2.png",
            "defect/nested/deep.png",
            "good/img_0.png",
            "good/img_1.png",
            "good/img_2.png",
        ]
    )
    assert (
        dict(zip(ids, table.column(cols.LABEL).to_pylist(), strict=True))["defect/nested/deep.png"]
        == "defect"
    )
    assert source.notes == ["ignored 3 file(s) that are not images"]


def test_manifest_reader_resolves_paths_and_keeps_metadata(tmp_path: Path) -> None:
    make_image(tmp_path / "imgs" / "a.png", 1)
    make_image(tmp_path / "imgs" / "b.png", 2)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,camera,line speed [m/min]\nimgs/a.png,ok,3,1800\nimgs/b.png,void,1,1200\n"
    )
    reader = detect_reader(manifest)
    assert reader.name == "manifest"
    table = read_all(reader.open(manifest, ReadOptions()).batches)
    assert table.column(cols.ITEM_ID).to_pylist() == ["0", "1"]
    assert table.column(cols.PATH).to_pylist() == [
        str((tmp_path / "imgs" / n).resolve()) for n in ("a.png", "b.png")
    ]
    assert table.column("line speed [m/min]").to_pylist() == [1800, 1200]


def test_table_reader_with_odd_column_names_label_and_id_columns(tmp_path: Path) -> None:
    path = tmp_path / "press.parquet"
    pq.write_table(
        pa.table(
            {
                "Torque [Nm]": [1.5, 2.0, 3.5],
                "serial no": [10, 11, 12],
                "verdict": [-1, 1, -1],
                "line": ["L1", "L2", "L1"],
            }
        ),
        path,
    )
    reader = detect_reader(path)
    assert reader.name == "table"
    table = read_all(
        reader.open(path, ReadOptions(label_column="verdict", id_column="serial no")).batches
    )
    assert table.column(cols.ITEM_ID).to_pylist() == ["10", "11", "12"]
    assert table.column(cols.LABEL).to_pylist() == ["-1", "1", "-1"]
    assert table.column("Torque [Nm]").to_pylist() == [1.5, 2.0, 3.5]


def test_csv_table_streams_in_batches_without_loading_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = 600_000  # about 7 MB: more than one 4 MB read block
    with path.open("w") as f:
        f.write("x,label\n")
        f.writelines(f"{i * 0.5},{i % 3}\n" for i in range(rows))
    source = detect_reader(path).open(path, ReadOptions())
    sizes = [b.num_rows for b in source.batches()]
    assert sum(sizes) == rows and len(sizes) > 1


def test_every_builtin_reader_is_registered() -> None:
    assert {r.name for r in readers()} >= {"image-folder", "manifest", "table", "secom", "neu-det"}


def test_missing_label_column_names_the_column(tmp_path: Path, workspace: Workspace) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="label column 'label' not found"):
        register_dataset(workspace, "t", path)


def test_reregistering_identical_content_is_a_noop_and_a_change_is_a_new_version(
    tmp_path: Path, workspace: Workspace
) -> None:
    root = make_class_folders(tmp_path / "tiles")
    first = register_dataset(workspace, "tiles", root)
    again = register_dataset(workspace, "tiles", root)
    assert first.created and not again.created
    assert again.dataset.version == first.dataset.version and again.dataset.number == 1
    copy = make_class_folders(tmp_path / "elsewhere")
    assert register_dataset(workspace, "tiles", copy).dataset.version == first.dataset.version
    make_image(root / "good" / "img_0.png", 250)  # one changed pixel value
    changed = register_dataset(workspace, "tiles", root)
    assert (
        changed.created
        and changed.dataset.number == 2
        and changed.dataset.version != first.dataset.version
    )
    assert [d.number for d in workspace.catalog.list_datasets()] == [1, 2]


def test_empty_dataset_and_missing_path_are_input_errors(
    tmp_path: Path, workspace: Workspace
) -> None:
    (tmp_path / "empty.csv").write_text("x,label\n")
    with pytest.raises(InputError, match="empty"):
        register_dataset(workspace, "e", tmp_path / "empty.csv")
    with pytest.raises(InputError, match="does not exist"):
        register_dataset(workspace, "e", tmp_path / "nope")
    assert workspace.catalog.list_datasets() == []


def test_label_counts_and_unlabelled_items_are_recorded(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,label\n1,a\n2,b\n3,\n4,a\n")
    d = register_dataset(workspace, "t", path).dataset
    assert d.label_counts == {"a": 2, "b": 1}
    assert any("1 item(s) have no label" in n for n in d.notes)


@pytest.mark.parametrize(
    ("text", "speeds"),
    [
        # A spreadsheet in a German or French locale: ';' between fields, ',' before decimals.
        ("\ufeffid;speed;label\nA1;1850,5;ok\nA2;-1,25;bad\nA3;2000;ok\n", [1850.5, -1.25, 2000.0]),
        ("id;speed;label\nA1;1850.5;ok\nA2;1.25;bad\nA3;2000;ok\n", [1850.5, 1.25, 2000.0]),
        ("id|speed|label\nA1|1850.5|ok\nA2|1.25|bad\nA3|2000|ok\n", [1850.5, 1.25, 2000.0]),
        ('"id","speed","label"\n"A1",1850.5,"ok"\n"A2",1.25,"bad"\n"A3",2000,"ok"\n',
         [1850.5, 1.25, 2000.0]),
        # Separators inside quoted names do not count.
        ('"id","speed; m/min","label"\nA1,1850.5,ok\nA2,1.25,bad\nA3,2000,ok\n',
         [1850.5, 1.25, 2000.0]),
        ('"id";"speed, m/min";"label"\nA1;1850,5;ok\nA2;-1,25;bad\nA3;2000;ok\n',
         [1850.5, -1.25, 2000.0]),
    ],
)  # fmt: skip
def test_csv_separators_and_decimal_commas_are_read(
    tmp_path: Path, workspace: Workspace, text: str, speeds: list[float]
) -> None:
    """A ';'-separated CSV with decimal commas was one column ('label column not found
    (columns: id;speed;label)'); the separator is now taken from the header, and a decimal
    comma from the numbers, when the separator is not a comma."""
    path = tmp_path / "line.csv"
    path.write_text(text, encoding="utf-8")
    d = register_dataset(workspace, "line", path, id_column="id").dataset
    table = pq.read_table(d.manifest_path)
    speed = next(n for n in table.column_names if n.startswith("speed"))
    assert table.column(speed).type == pa.float64()
    assert table.column(speed).to_pylist() == speeds
    assert table.column(cols.ITEM_ID).to_pylist() == ["A1", "A2", "A3"]
    assert table.column(cols.LABEL).to_pylist() == ["ok", "bad", "ok"]
