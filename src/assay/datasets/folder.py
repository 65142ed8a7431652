"""A folder of class folders of images: ``root/<label>/**/<image>``.

The item id is the image's path relative to ``root`` with POSIX separators. Files that are not
images (a stray CSV, a README) and hidden files are ignored, and the registration says how many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.images import is_image_file
from assay.datasets.registry import Reader, ReadOptions, inside_root, register_reader
from assay.datasets.source import DatasetSource

BATCH_ROWS = 4096


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> tuple[list[Path], int]:
    images, ignored = [], 0
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel_parts = p.relative_to(folder).parts
        try:
            str(p).encode("utf-8")
        except UnicodeEncodeError:
            shown = str(p).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(
                f"file name {shown!r} is not valid UTF-8: rename it (item ids are text)"
            ) from None
        if any(part.startswith(".") for part in rel_parts):
            ignored += 1
        elif is_image_file(p):
            images.append(p)
        else:
            ignored += 1
    return images, ignored


def _detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    return any(any(is_image_file(f) for f in d.rglob("*")) for d in _class_dirs(path))


def open_folder(path: Path, options: ReadOptions) -> DatasetSource:
    """Images labelled by the name of their top-level folder."""
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to a folder of class folders")
    root = path.resolve()
    items: list[tuple[str, str, str]] = []
    ignored = sum(1 for p in root.iterdir() if p.is_file())
    for class_dir in _class_dirs(root):
        images, skipped = _images_under(class_dir)
        ignored += skipped
        items += [
            (
                p.relative_to(root).as_posix(),
                class_dir.name,
                str(inside_root(p, root, f"{p.relative_to(root)}", options.allow_outside)),
            )
            for p in images
        ]

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(items), BATCH_ROWS):
            chunk = items[start : start + BATCH_ROWS]
            yield pa.RecordBatch.from_arrays(
                [pa.array([c[i] for c in chunk], pa.string()) for i in range(3)],
                names=[cols.ITEM_ID, cols.LABEL, cols.PATH],
            )

    notes = [f"ignored {ignored} file(s) that are not images"] if ignored else []
    extra = {"allow_outside_paths": True} if options.allow_outside else {}
    return DatasetSource("image-folder", "image", root, [], batches, extra, notes)


register_reader(
    Reader(
        name="image-folder",
        description="folder of class folders of images; the folder name is the label",
        detect=_detect,
        open=open_folder,
        priority=70,
    )
)
