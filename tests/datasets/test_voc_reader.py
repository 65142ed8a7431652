"""Pascal VOC folders: detected, boxes in the common column, difficult objects as crowd regions,
broken files refused with their name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import ReadOptions, detect_reader
from tests.datasets.test_readers import read_all

XML = """<annotation><filename>{name}</filename><size><width>32</width><height>24</height></size>
{objects}</annotation>"""
OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult>
<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


def voc(root: Path, objects: dict[str, list[tuple[str, int, int, int, int, int]]]) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem in ("a", "b", "c"):
        Image.fromarray(np.full((24, 32), 100, np.uint8)).save(root / "JPEGImages" / f"{stem}.jpg")
    for stem, objs in objects.items():
        body = "".join(
            OBJECT.format(name=n, difficult=d, x1=x1, y1=y1, x2=x2, y2=y2)
            for n, d, x1, y1, x2, y2 in objs
        )
        (root / "Annotations" / f"{stem}.xml").write_text(
            XML.format(name=f"{stem}.jpg", objects=body)
        )
    return root


def test_voc_boxes_labels_and_difficult_objects(tmp_path: Path) -> None:
    root = voc(
        tmp_path / "voc",
        {"a": [("pit", 0, 1, 2, 11, 7), ("pit", 1, 0, 0, 4, 4)], "b": [("crack", 1, 3, 3, 9, 9)]},
    )
    reader = detect_reader(root)
    assert reader.name == "voc"
    table = read_all(reader.open(root, ReadOptions()).batches)
    assert table.column(cols.ITEM_ID).to_pylist() == [
        "JPEGImages/a.jpg",
        "JPEGImages/b.jpg",
        "JPEGImages/c.jpg",
    ]
    # b holds only a difficult object: good; c has no annotation: not judged (no label, no boxes).
    assert table.column(cols.LABEL).to_pylist() == ["defect", "good", None]
    boxes = table.column("boxes").to_pylist()
    assert boxes[0][0] == {
        "name": "pit",
        "x": 1.0,
        "y": 2.0,
        "width": 10.0,
        "height": 5.0,
        "area": 50.0,
        "iscrowd": False,
    }
    assert boxes[0][1]["iscrowd"] is True and boxes[2] is None
    assert table.column("n_boxes").to_pylist() == [2, 1, None]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<annotation><object>", "not a valid VOC annotation"),
        (
            "<annotation><object><name>p</name></object></annotation>",
            "an object without its name or bndbox",
        ),
        (
            XML.format(
                name="a.jpg",
                objects=OBJECT.format(name="p", difficult=0, x1="one", y1=0, x2=2, y2=2),
            ),
            "is not a number",
        ),
        (
            XML.format(
                name="a.jpg", objects=OBJECT.format(name="p", difficult=0, x1=5, y1=0, x2=2, y2=2)
            ),
            "xmin <= xmax",
        ),
        (  # a review: refused as 'needs xmin <= xmax'
            XML.format(
                name="a.jpg",
                objects=OBJECT.format(name="p", difficult=0, x1="nan", y1=0, x2=2, y2=2),
            ),
            "is missing or not finite",
        ),
        (
            XML.format(
                name="a.jpg",
                objects=OBJECT.format(name="p", difficult="maybe", x1=0, y1=0, x2=2, y2=2),
            ),
            "not 0 or 1",
        ),
    ],
)
def test_broken_annotations_are_refused_naming_the_file(
    tmp_path: Path, xml: str, message: str
) -> None:
    root = voc(tmp_path / "voc", {})
    (root / "Annotations" / "a.xml").write_text(xml)
    source = detect_reader(root).open(root, ReadOptions())
    with pytest.raises(InputError, match=message) as err:
        read_all(source.batches)
    assert "a.xml" in str(err.value)


def test_difficult_written_true_is_difficult(tmp_path: Path) -> None:
    """From a review: <difficult>true</difficult> (some labelling tools) was read as not
    difficult, and the box counted as one to find."""
    root = voc(
        tmp_path / "voc", {"a": [("pit", "true", 1, 2, 11, 7), ("pit", "false", 0, 0, 4, 4)]}
    )
    boxes = read_all(detect_reader(root).open(root, ReadOptions()).batches).column("boxes")
    assert [b["iscrowd"] for b in boxes.to_pylist()[0]] == [True, False]


def test_two_images_of_one_name_take_the_annotation_their_filename_names(tmp_path: Path) -> None:
    """From a review: a.jpg and a.png both got a.xml's boxes. The annotation's <filename>
    says which it describes; the other has none (not judged); naming neither is refused."""
    root = voc(tmp_path / "voc", {"a": [("pit", 0, 1, 2, 11, 7)]})
    Image.fromarray(np.full((24, 32), 90, np.uint8)).save(root / "JPEGImages" / "a.png")
    table = read_all(detect_reader(root).open(root, ReadOptions()).batches)
    ids, n_boxes = table.column(cols.ITEM_ID).to_pylist(), table.column("n_boxes").to_pylist()
    counts = dict(zip(ids, n_boxes, strict=True))
    assert counts["JPEGImages/a.jpg"] == 1 and counts["JPEGImages/a.png"] is None
    (root / "Annotations" / "a.xml").write_text(
        XML.format(
            name="a.bmp", objects=OBJECT.format(name="p", difficult=0, x1=0, y1=0, x2=2, y2=2)
        )
    )
    with pytest.raises(InputError, match="names neither"):
        read_all(detect_reader(root).open(root, ReadOptions()).batches)


def test_mirrored_subfolders_match_by_path(tmp_path: Path) -> None:
    """From a review: JPEGImages/{a,b}/x.png with Annotations/{a,b}/x.xml was refused (two
    annotations of one name); before that, both images got one annotation's boxes. The
    relative path decides."""
    root = tmp_path / "voc"
    for sub, box in (("a", (1, 2, 11, 7)), ("b", (0, 0, 4, 4))):
        (root / "Annotations" / sub).mkdir(parents=True)
        (root / "JPEGImages" / sub).mkdir(parents=True)
        Image.fromarray(np.full((24, 32), 100, np.uint8)).save(root / "JPEGImages" / sub / "x.png")
        x1, y1, x2, y2 = box
        (root / "Annotations" / sub / "x.xml").write_text(
            XML.format(
                name="x.png",
                objects=OBJECT.format(name="pit", difficult=0, x1=x1, y1=y1, x2=x2, y2=y2),
            )
        )
    table = read_all(detect_reader(root).open(root, ReadOptions()).batches)
    widths = [b[0]["width"] for b in table.column("boxes").to_pylist()]
    assert table.column(cols.ITEM_ID).to_pylist() == ["JPEGImages/a/x.png", "JPEGImages/b/x.png"]
    assert widths == [10.0, 4.0]
