"""Image properties: measured as named, and usable to find where errors cluster."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from assay.cli.main import main
from assay.datasets.images import image_properties
from tests.models import brightness_onnx, image_spec, write_spec


def test_properties_measure_brightness_contrast_sharpness_and_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, 80)).astype(np.uint8)
    Image.fromarray(noise, mode="L").save(tmp_path / "sharp.png")
    Image.fromarray(noise, mode="L").filter(ImageFilter.GaussianBlur(3)).save(
        tmp_path / "blurred.png"
    )
    Image.fromarray(np.full((30, 40), 200, np.uint8), mode="L").save(tmp_path / "flat.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    sharp = image_properties(str(tmp_path / "sharp.png"))
    blurred = image_properties(str(tmp_path / "blurred.png"))
    flat = image_properties(str(tmp_path / "flat.png"))
    assert sharp[:2] == (80.0, 60.0) and flat[:2] == (40.0, 30.0)
    assert (
        flat[2] == pytest.approx(200.0)
        and flat[3] == pytest.approx(0.0)
        and flat[4] == pytest.approx(0.0)
    )
    assert sharp[4] > 10 * blurred[4]  # the Laplacian's variance falls with blur
    assert sharp[3] > blurred[3]
    assert all(math.isnan(v) for v in image_properties(str(tmp_path / "bad.png")))


def test_errors_on_dark_images_are_found_through_brightness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    rows = ["path,label"]
    for i in range(400):
        # The model calls images brighter than 64 ok and darker ones defects; the experts
        # agree, except that glare (level 200 and up) hides defects: those are planted errors.
        level = int(rng.uniform(20, 235))
        label = "ok" if 64 < level < 200 else "defect"
        Image.fromarray(np.full((8, 8), level, np.uint8), mode="L").save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{label}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    spec = write_spec(tmp_path / "s.yaml", **image_spec(["defect", "ok"], (8, 8)))
    brightness_onnx(tmp_path / "b.onnx", (8, 8))
    home = str(tmp_path / "home")
    main(["dataset", "add", "imgs", str(tmp_path / "m.csv"), "--home", home])
    main(["model", "add", "b", str(tmp_path / "b.onnx"), "--spec", str(spec), "--home", home])
    main(
        [
            "validate",
            "--model",
            "b",
            "--dataset",
            "imgs",
            "--out",
            str(tmp_path / "run"),
            "--home",
            home,
        ]
    )
    capsys.readouterr()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert "image_brightness" in result["error_slice_search"]["columns"]
    first = result["error_slices"][0]
    assert [p["column"] for p in first["predicates"]] == ["image_brightness"]
    low = float(first["predicates"][0]["value"].strip("[").split(",")[0])
    assert low >= 150  # the brightest quantile bin, where the glare is
    assert first["error_rate"] > 0.5 > first["rest_error_rate"]


def test_images_are_decoded_whole_unless_the_spec_says_draft(tmp_path: Path) -> None:
    """A 200x200 JPEG fed at 32x32 was decoded at 50x50 by Pillow's draft mode (DCT scaling)
    and then resized: up to 3 grey levels from what a plain Pillow pipeline feeds, and 6 of 900
    NEU-DET classes changed. The default is now the plain pipeline; `input.decode: draft` asks
    for the fast decode, and a spec without it keeps its digest."""
    from PIL import Image

    from assay.core.spec import parse_model_spec
    from assay.datasets.images import decode_sized_image

    rng = np.random.default_rng(0)
    pixels = (rng.normal(128, 40, (200, 200)).clip(0, 255)).astype(np.uint8)
    path = tmp_path / "steel.jpg"
    Image.fromarray(pixels, "L").save(path, quality=90)
    with Image.open(path) as im:
        plain = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.BILINEAR))
    exact, stored = decode_sized_image(str(path), None, (32, 32), "grayscale")
    assert stored == (200, 200) and np.array_equal(exact[..., 0], plain)
    fast, _ = decode_sized_image(str(path), None, (32, 32), "grayscale", draft=True)
    assert not np.array_equal(fast[..., 0], plain)  # the option does what it says
    raw = {"labels": ["a", "b"], "input": {"kind": "image", "size": [32, 32]}}
    assert "decode" not in parse_model_spec(raw).to_dict()["input"]
    drafted = parse_model_spec({**raw, "input": {**raw["input"], "decode": "draft"}})
    assert drafted.input.decode == "draft" and drafted.to_dict()["input"]["decode"] == "draft"
