"""Writes ``data/tide_reference.json``: generated detection cases and what tidecv (the TIDE
authors' package, 1.0.1) says of them. Run it with an environment that has tidecv (it needs
OpenCV, which Assay does not):

    python -m venv /tmp/tide && /tmp/tide/bin/pip install tidecv numpy
    /tmp/tide/bin/python tests/core/tasks/make_tide_reference.py

Crowd regions are left out: tidecv 1.0.1 types detections inside them as errors but leaves them
out of the AP it starts from (fixed on its main branch), which Assay follows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def case(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    n_images, n_classes = int(rng.integers(1, 12)), int(rng.integers(1, 4))
    images = []
    for _ in range(n_images):
        n_gt = int(rng.integers(0, 6))
        gt = np.c_[rng.uniform(0, 80, (n_gt, 2)), rng.uniform(5, 40, (n_gt, 2))].round(1)
        gt_c = rng.integers(0, n_classes, n_gt)
        dets, det_c = [], []
        for box, c in zip(gt, gt_c, strict=True):
            for _ in range(int(rng.integers(0, 3))):  # found, twice, shifted, or as another class
                dets.append(box + rng.normal(0, rng.choice([1.0, 6.0, 14.0]), 4))
                det_c.append(int(c) if rng.random() < 0.8 else int(rng.integers(0, n_classes)))
        for _ in range(int(rng.integers(0, 4))):  # background
            dets.append(np.r_[rng.uniform(0, 80, 2), rng.uniform(5, 40, 2)])
            det_c.append(int(rng.integers(0, n_classes)))
        dt = np.array(dets).reshape(-1, 4)
        dt[:, 2:] = np.abs(dt[:, 2:]) + 1
        scores = rng.integers(1, 20, len(dt)) / 20  # coarse: ties happen
        images.append(
            {
                "gt": gt.tolist(),
                "gt_classes": gt_c.tolist(),
                "dt": dt.round(2).tolist(),
                "dt_classes": det_c,
                "dt_scores": scores.tolist(),
            }
        )
    return {"seed": seed, "images": images}


def tide(c: dict[str, object]) -> dict[str, object]:
    from tidecv import TIDE, Data

    gt, preds = Data("gt"), Data("preds")
    for i, image in enumerate(c["images"]):  # type: ignore[arg-type]
        gt.add_image(i, f"image {i}")
        preds.add_image(i, f"image {i}")
        for box, k in zip(image["gt"], image["gt_classes"], strict=True):
            gt.add_ground_truth(i, k, box)
        for box, k, s in zip(image["dt"], image["dt_classes"], image["dt_scores"], strict=True):
            preds.add_detection(i, k, s, box)
    t = TIDE()
    run = t.evaluate(gt, preds, mode=TIDE.BOX)
    main = t.get_main_errors()["preds"]
    counts = {e.short_name: v for e, v in run.count_errors().items()}
    return {"ap50": run.ap, "costs": main, "counts": counts}


if __name__ == "__main__":
    cases = []
    for seed in range(60):
        c = case(seed)
        try:
            c["tidecv"] = tide(c)
        except Exception as exc:  # tidecv cannot take every case (no detection at all)
            c["tidecv"] = {"error": repr(exc)}
        cases.append(c)
    out = Path(__file__).parent / "data" / "tide_reference.json"
    out.write_text(json.dumps(cases))
    print(f"{len(cases)} cases -> {out}")
