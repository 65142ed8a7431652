"""COCO detection files: detected, read with every box, and refused with the reason when wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import ReadOptions, detect_reader
from assay.services.datasets import register_dataset
from assay.services.workspace import Workspace
from tests.datasets.test_readers import make_image, read_all


def coco(root: Path, **changes: Any) -> Path:
    for name in ("a.png", "sub/b.png", "c.png"):
        make_image(root / "images" / name, 50)
    data = {
        "info": {"description": "three scans"},
        "images": [
            {"id": 1, "file_name": "images/a.png", "width": 8, "height": 8},
            {"id": 2, "file_name": "images/sub/b.png", "width": 8, "height": 8},
            {"id": 7, "file_name": "images/c.png", "width": 8, "height": 8},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, 3, 2.5], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 4, "bbox": [0, 0, 8, 8], "area": 20.0},
            {"id": 12, "image_id": 2, "category_id": 4, "bbox": [2, 2, 4, 4], "iscrowd": 1},
        ],
        "categories": [{"id": 3, "name": "scratch"}, {"id": 4, "name": "pit"}],
    }
    data.update(changes)
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_every_image_with_its_boxes_and_an_image_level_label(tmp_path: Path) -> None:
    path = coco(tmp_path / "scans")
    reader = detect_reader(path)
    assert reader.name == "coco"
    source = reader.open(path, ReadOptions())
    table = read_all(source.batches)
    assert table.column(cols.ITEM_ID).to_pylist() == [
        "images/a.png",
        "images/sub/b.png",
        "images/c.png",
    ]
    # A crowd region alone does not make an image defective.
    assert table.column(cols.LABEL).to_pylist() == ["defect", "good", "good"]
    first = table.column("boxes").to_pylist()[0]
    assert first[0] == {
        "name": "scratch",
        "x": 1.0,
        "y": 1.0,
        "width": 3.0,
        "height": 2.5,
        "area": 7.5,
        "iscrowd": False,
    }
    assert first[1]["area"] == 20.0  # as stated, not the box's 64
    assert table.column("n_boxes").to_pylist() == [2, 1, 0]
    assert source.files == [path.resolve()]


def test_registered_from_the_cli_and_a_version_per_content(tmp_path: Path) -> None:
    path = coco(tmp_path / "scans")
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "scans", str(path), "--home", home]) == 0
    ws = Workspace.open(Path(home))
    try:
        again = register_dataset(ws, "scans", path)  # the same content: the same version
        manifest = pq.read_table(again.dataset.manifest_path)
    finally:
        ws.close()
    assert not again.created and again.dataset.number == 1
    assert manifest.num_rows == 3 and "boxes" in manifest.column_names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"annotations": [{"id": 5, "image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1]}]},
            "annotation 5 names image 99",
        ),
        (
            {"annotations": [{"id": 6, "image_id": 1, "category_id": 8, "bbox": [0, 0, 1, 1]}]},
            "annotation 6 names category 8",
        ),
        (
            {"annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1]}]},
            r"bbox must be \[x, y, width, height\]",
        ),
        (
            {"annotations": [{"id": 8, "image_id": 1, "category_id": 3, "bbox": [0, 0, -1, 1]}]},
            "negative width",
        ),
        (
            {"annotations": [{"id": 9, "image_id": 1, "category_id": 3, "bbox": [0, 0, "NaN", 1]}]},
            "not a finite number",
        ),
        (
            {
                "images": [
                    {"id": 1, "file_name": "images/a.png"},
                    {"id": 1, "file_name": "images/c.png"},
                ],
                "annotations": [],
            },
            "two images have the id 1",
        ),
        (
            {"images": [{"id": 1, "file_name": "../outside.png"}], "annotations": []},
            "outside the dataset folder",
        ),
        ({"images": [{"id": 1}], "annotations": []}, "image 1 has no file_name"),
        ({"categories": "scratch"}, "needs a list 'categories'"),
    ],
)
def test_a_wrong_file_is_refused_with_the_reason(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = coco(tmp_path / "scans", **change)
    with pytest.raises(InputError, match=message):
        detect_reader(path).open(path, ReadOptions())


def test_a_crafted_or_broken_json_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = coco(tmp_path / "scans")
    path.write_text('{"images": [1, 2')  # cut off
    code = main(["dataset", "add", "scans", str(path), "--home", str(tmp_path / "home")])
    err = capsys.readouterr().err
    assert code == 2 and "not a valid JSON file" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_further_image_fields_are_kept_as_metadata(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "images/a.png", "width": 8, "line": "L1", "camera": 3},
        {"id": 2, "file_name": "images/sub/b.png", "line": "L2", "camera": "3b"},
        {"id": 7, "file_name": "images/c.png", "license": 1},
    ]
    path = coco(tmp_path / "scans", images=images)
    table = read_all(detect_reader(path).open(path, ReadOptions()).batches)
    assert table.column("line").to_pylist() == ["L1", "L2", None]
    assert table.column("camera").to_pylist() == ["3", "3b", None]  # mixed types: text
    assert "width" not in table.column_names and "license" not in table.column_names
    clash = coco(
        tmp_path / "clash",
        images=[{"id": 1, "file_name": "images/a.png", "boxes": 2}],
        annotations=[],
    )
    with pytest.raises(InputError, match="image field 'boxes' is a name Assay reserves"):
        detect_reader(clash).open(clash, ReadOptions())


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ([[1, 2, 3]], "a segmentation polygon is at least three x, y pairs"),
        ([[0, 0, 4, 0, 4, "x"]], "a segmentation polygon is at least three x, y pairs"),
        ({"counts": "abc"}, "an RLE segmentation needs counts and size"),
        ({"counts": [1, -2], "size": [1, 1]}, "an RLE segmentation needs counts and size"),
        ("polygon", "segmentation must be polygons or an RLE"),
    ],
)
def test_malformed_segmentations_are_refused(
    tmp_path: Path, segmentation: Any, message: str
) -> None:
    annotations = [
        {
            "id": 10,
            "image_id": 1,
            "category_id": 3,
            "bbox": [1, 1, 3, 3],
            "segmentation": segmentation,
        }
    ]
    path = coco(tmp_path / "scans", annotations=annotations)
    with pytest.raises(InputError, match=message):
        detect_reader(path).open(path, ReadOptions())


def test_segmentations_are_kept_per_image(tmp_path: Path) -> None:
    annotations = [
        {
            "id": 10,
            "image_id": 1,
            "category_id": 3,
            "bbox": [1, 1, 3, 3],
            "segmentation": [[1, 1, 4, 1, 4, 4]],
        },
        {
            "id": 11,
            "image_id": 7,
            "category_id": 4,
            "bbox": [0, 0, 2, 2],
            "iscrowd": 1,
            "segmentation": {"counts": [0, 4, 60], "size": [8, 8]},
        },
    ]
    path = coco(tmp_path / "scans", annotations=annotations)
    table = read_all(detect_reader(path).open(path, ReadOptions()).batches)
    segments = table.column("segments").to_pylist()
    assert segments[0] == [{"name": "scratch", "iscrowd": False, "segmentation": "[[1,1,4,1,4,4]]"}]
    assert segments[1] == []
    assert segments[2][0]["iscrowd"] is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"images": [{"id": [1], "file_name": "images/a.png"}]}, "image id '\\[1\\]' is neither"),
        ({"categories": [{"id": {"a": 1}, "name": "x"}]}, "category id .* is neither"),
        (
            {"categories": [{"id": 3, "name": "a"}, {"id": 3, "name": "b"}]},
            "two categories have the id 3",
        ),
        (
            {"categories": [{"id": 3, "name": None}, {"id": 4, "name": "pit"}]},
            "category 3 has no name",
        ),
        ({"images": [{"id": 1, "file_name": "images/\ud800.png"}]}, "lone surrogate"),
        ({"images": [{"id": 1, "file_name": "images/a.png", "line": "L\ud800"}]}, "lone surrogate"),
    ],
)
def test_crafted_coco_files_are_refused_with_one_line(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = coco(tmp_path / "scans", **changes)
    with pytest.raises(InputError, match=message):
        read_all(detect_reader(path).open(path, ReadOptions()).batches)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"image_id": [1]}, "names image \\[1\\]"),
        ({"category_id": {"x": 1}}, "names category"),
        ({"area": -5}, "area -5.0 is negative"),
        ({"iscrowd": "no"}, "iscrowd must be 0 or 1"),
        ({"iscrowd": [1]}, "iscrowd must be 0 or 1"),
    ],
)
def test_crafted_annotations_are_refused(
    tmp_path: Path, annotation: dict[str, Any], message: str
) -> None:
    base = {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, 3, 2]}
    path = coco(tmp_path / "scans", annotations=[base | annotation])
    with pytest.raises(InputError, match=message):
        read_all(detect_reader(path).open(path, ReadOptions()).batches)


def test_deep_json_and_huge_numbers(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(
        '{"images": ' + "[" * 100_000 + "]" * 100_000 + ', "annotations": [], "categories": []}'
    )
    with pytest.raises(InputError, match="nested too deeply"):
        detect_reader(path).open(path, ReadOptions())
    big = coco(
        tmp_path / "big",
        images=[{"id": 1, "file_name": "images/a.png", "serial": 10**30}],
        annotations=[],
    )
    table = read_all(detect_reader(big).open(big, ReadOptions()).batches)
    assert table.column("serial").to_pylist() == [str(10**30)]  # too big for a number: text


def test_repeated_annotation_ids_and_category_names_are_refused(tmp_path: Path) -> None:
    two = [
        {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, 3, 2]},
        {"id": 10, "image_id": 1, "category_id": 3, "bbox": [2, 2, 3, 2]},
    ]
    path = coco(tmp_path / "a", annotations=two)
    with pytest.raises(InputError, match="two annotations have the id 10"):
        read_all(detect_reader(path).open(path, ReadOptions()).batches)
    path = coco(tmp_path / "b", categories=[{"id": 3, "name": "pit"}, {"id": 4, "name": "pit"}])
    with pytest.raises(InputError, match="two categories are named 'pit'"):
        read_all(detect_reader(path).open(path, ReadOptions()).batches)


def test_boxes_no_detector_can_find_are_named_at_registration(tmp_path: Path) -> None:
    """From a review: boxes wholly outside their image, or of no area, were scored as misses
    (as pycocotools does) without a word. Registration names them; crowd regions aside."""
    path = coco(
        tmp_path / "scans",
        annotations=[
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1, 1, 3, 2.5]},
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [500, 500, 3, 3]},
            {"id": 12, "image_id": 2, "category_id": 4, "bbox": [2, 2, 0, 4]},
            {"id": 13, "image_id": 2, "category_id": 4, "bbox": [900, 0, 4, 4], "iscrowd": 1},
        ],
    )
    ws = Workspace.open(tmp_path / "home")
    try:
        notes = register_dataset(ws, "scans", path).dataset.notes
    finally:
        ws.close()
    assert (
        "expert boxes no detector can find, each scored as a miss: 1 lie wholly outside their "
        "image and 1 have no area (check the annotations)"
    ) in notes
    clean = coco(tmp_path / "clean")
    ws = Workspace.open(tmp_path / "home2")
    try:
        assert not any("no detector" in n for n in register_dataset(ws, "c", clean).dataset.notes)
    finally:
        ws.close()
