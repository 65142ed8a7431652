"""YOLO folders: detected, boxes converted to pixels, and wrong label lines refused with their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.cli.main import main
from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import ReadOptions, detect_reader
from tests.datasets.test_readers import make_image, read_all


def yolo(root: Path, line: str = "1 0.5 0.25 0.5 0.25") -> Path:
    (root / "labels" / "train").mkdir(parents=True)
    (root / "classes.txt").write_text("scratch\npit\n")
    make_image(root / "images" / "train" / "a.png", 10, size=(40, 80))  # 80 wide, 40 high
    make_image(root / "images" / "train" / "b.png", 10)
    make_image(root / "images" / "val" / "c.png", 10)
    (root / "labels" / "train" / "a.txt").write_text(f"{line}\n0 0.1 0.1 0.2 0.2\n\n")
    (root / "labels" / "train" / "b.txt").write_text("")
    (root / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return root


def test_boxes_in_pixels_and_images_without_labels_are_good(tmp_path: Path) -> None:
    root = yolo(tmp_path / "parts")
    reader = detect_reader(root)
    assert reader.name == "yolo"
    source = reader.open(root, ReadOptions())
    table = read_all(source.batches)
    assert table.column(cols.ITEM_ID).to_pylist() == [
        "images/train/a.png",
        "images/train/b.png",
        "images/val/c.png",
    ]
    assert table.column(cols.LABEL).to_pylist() == ["defect", "good", "good"]
    first = table.column("boxes").to_pylist()[0][0]
    # Centre (0.5, 0.25), size (0.5, 0.25) of an 80 x 40 image: x 20, y 5, 40 x 10 pixels.
    assert first == {
        "name": "pit",
        "x": 20.0,
        "y": 5.0,
        "width": 40.0,
        "height": 10.0,
        "area": 400.0,
        "iscrowd": False,
    }
    assert table.column("n_boxes").to_pylist() == [2, 0, 0]
    assert any("orphan" in note for note in source.notes)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1 0.5 0.5 0.5", "a box is '<class> <x> <y> <width> <height>'"),
        ("7 0.5 0.5 0.5 0.5", "class 7 is not among the 2 classes named"),
        ("0 0.5 0.5 1.5 0.5", "fractions of the image"),
        ("0 0.5 nan 0.5 0.5", "fractions of the image"),
        ("x 0.5 0.5 0.5 0.5", "not a number"),
    ],
)
def test_a_wrong_line_is_refused_with_its_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    root = yolo(tmp_path / "parts", line)
    with pytest.raises(InputError, match=message) as raised:
        read_all(detect_reader(root).open(root, ReadOptions()).batches)
    assert "a.txt:1" in str(raised.value)


def test_registered_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = yolo(tmp_path / "parts")
    assert main(["dataset", "add", "parts", str(root), "--home", str(tmp_path / "home")]) == 0
    assert "yolo, 3 items" in capsys.readouterr().out
    broken = yolo(tmp_path / "broken", "9 0.5 0.5 0.5 0.5")
    assert main(["dataset", "add", "broken", str(broken), "--home", str(tmp_path / "home")]) == 2


@pytest.mark.parametrize(
    "described",
    ["names: [scratch, pit]\n", "path: .\nnames:\n  0: scratch\n  1: pit\n", None],
)
def test_classes_named_by_a_data_yaml_or_by_nothing(tmp_path: Path, described: str | None) -> None:
    """Ultralytics names the classes in data.yaml (a list, or index: name); without any file
    naming them the folder was read as a folder of images whose classes were 'images' (a
    review). Now it is a YOLO folder that says what it lacks."""
    root = yolo(tmp_path / "parts")
    (root / "classes.txt").unlink()
    if described is not None:
        (root / "data.yaml").write_text(described)
    reader = detect_reader(root)
    assert reader.name == "yolo"
    if described is None:
        with pytest.raises(
            InputError, match=r"needs classes\.txt or data\.yaml naming its classes"
        ):
            reader.open(root, ReadOptions())
        return
    table = read_all(reader.open(root, ReadOptions()).batches)
    assert table.column("boxes").to_pylist()[0][0]["name"] == "pit"


def test_ultralytics_and_roboflow_layouts(tmp_path: Path) -> None:
    """From a review: a Roboflow export (data.yaml beside train/ valid/ test/, each with
    images/ and labels/) was read as a class folder of train, valid and test; one split was
    refused (its data.yaml is a folder up); a data.yaml splitting images/ into train and val
    made one validation set of the training images too."""
    export = tmp_path / "rf"
    for split in ("train", "valid"):
        yolo(export / split)
        (export / split / "classes.txt").unlink()
    (export / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\nnc: 2\nnames: [scratch, pit]\n"
    )
    assert detect_reader(export).name == "yolo"
    with pytest.raises(InputError, match="a YOLO export of 2 splits"):
        detect_reader(export).open(export, ReadOptions())
    valid = export / "valid"
    table = read_all(detect_reader(valid).open(valid, ReadOptions()).batches)
    assert table.column("boxes").to_pylist()[0][0]["name"] == "pit"

    split = yolo(tmp_path / "one")
    (split / "classes.txt").unlink()
    (split / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [a, b]\n"
    )
    with pytest.raises(InputError, match="hold the training images too"):
        detect_reader(split).open(split, ReadOptions())


@pytest.mark.parametrize(
    ("names", "message"), [("[yes, no]", "quoted where"), ("[a, a]", "a class name twice")]
)
def test_class_names_yaml_would_misread_are_refused(
    tmp_path: Path, names: str, message: str
) -> None:
    root = yolo(tmp_path / "parts")
    (root / "classes.txt").unlink()
    (root / "data.yaml").write_text(f"names: {names}\n")
    with pytest.raises(InputError, match=message):
        detect_reader(root).open(root, ReadOptions())


def test_a_class_folder_with_classes_called_images_and_labels_stays_a_class_folder(
    tmp_path: Path,
) -> None:
    """From a review: classes images, labels and ok (a README.txt in labels/) were refused as
    a YOLO folder without class names."""
    for label in ("images", "labels", "ok"):
        make_image(tmp_path / "cls" / label / "a.png", 10)
    (tmp_path / "cls" / "labels" / "README.txt").write_text("notes")
    assert detect_reader(tmp_path / "cls").name != "yolo"
